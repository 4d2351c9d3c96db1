/** How holders keep entries that crossed the wire: as the text the writer's codec produced. */
import type { Backend, Codec } from "@vela/core"
import { CodecError } from "@vela/core"
import { Either } from "effect"
import type { WireEntry } from "./protocol.js"

/** The codec of a holder's backend: the text the writer encoded is stored as it is. */
export const text: Codec.Codec = {
  encode: (key, value) =>
    typeof value === "string"
      ? Either.right(value)
      : Either.left(new CodecError({ key, direction: "encode", cause: "the cluster stores encoded text only" })),
  decode: (_key, encoded) => Either.right(encoded)
}

export const toWire = (entry: Backend.Entry): WireEntry => ({
  value: entry.value as string,
  expiresAt: entry.expiresAt,
  tags: entry.tags,
  version: entry.version
})

export const fromWire = (entry: WireEntry): Backend.Entry => ({
  value: entry.value,
  expiresAt: entry.expiresAt,
  tags: entry.tags,
  version: entry.version
})

/**
 * Decoded entries by the held entry they came from. An in-memory holder hands out the same entry
 * object for a key until it changes, so a local read decodes a value once per write rather than
 * once per read (reads of owned keys then cost about what a `Local` read costs). The memo is
 * checked against the held text, version, expiry and the reader's codec (a held entry may be
 * updated in place); it goes with the held entry.
 */
const decodedByHeld = new WeakMap<Backend.Entry, {
  readonly codec: Codec.Codec
  readonly text: string
  readonly version: number
  readonly entry: Backend.Entry
}>()

/** `held` (encoded text, as holders keep it) with its value decoded by `codec`. */
export const decodeHeld = (
  codec: Codec.Codec,
  key: string,
  held: Backend.Entry
): Either.Either<Backend.Entry, CodecError> => {
  const text = held.value as string
  const memo = decodedByHeld.get(held)
  if (
    memo !== undefined && memo.codec === codec && memo.version === held.version && memo.text === text &&
    memo.entry.expiresAt === held.expiresAt
  ) {
    return Either.right(memo.entry)
  }
  return Either.map(codec.decode(key, text), (value) => {
    const entry = { value, expiresAt: held.expiresAt, tags: held.tags, version: held.version }
    decodedByHeld.set(held, { codec, text, version: held.version, entry })
    return entry
  })
}

/** A failure's message, for error replies. */
export const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : String(cause)
