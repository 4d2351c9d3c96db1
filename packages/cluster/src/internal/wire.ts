/** How holders keep entries that crossed the wire: as the text the writer's codec produced. */
import type { Backend, Codec } from "@vela/core"
import { BackendError, CodecError } from "@vela/core"
import * as Either from "effect/Either"
import type { OpResult, WireEntry } from "./protocol.js"

/**
 * A value as a holder keeps it: the text the writer's codec produced, one object per write. Once a
 * cache on this node reads it, the decoded entry stays with it, and so does whether this node owned
 * the key on the ring of that read: an in-memory holder hands out the same value until the key is
 * written again, so a local read decodes once per write and looks the ring up once per change of
 * membership (reads of owned keys then cost about what a `Local` read costs).
 */
export class Held {
  decoded: { readonly codec: Codec.Codec; readonly entry: Backend.Entry } | undefined = undefined
  owned: { readonly ring: unknown; readonly here: boolean } | undefined = undefined
  constructor(readonly text: string) {}
}

/** The codec of a holder's backend: the text the writer encoded is what is stored. */
export const text: Codec.Codec = {
  encode: (key, value) =>
    value instanceof Held
      ? Either.right(value.text)
      : Either.left(new CodecError({ key, direction: "encode", cause: "the cluster stores encoded text only" })),
  decode: (_key, encoded) => Either.right(new Held(encoded))
}

/** The `Held` value of an entry a holder's store returned. */
export const heldOf = (entry: Backend.Entry): Held => entry.value as Held

export const toWire = (entry: Backend.Entry): WireEntry => ({
  value: heldOf(entry).text,
  expiresAt: entry.expiresAt,
  tags: entry.tags,
  version: entry.version
})

export const fromWire = (entry: WireEntry): Backend.Entry => ({
  value: new Held(entry.value),
  expiresAt: entry.expiresAt,
  tags: entry.tags,
  version: entry.version
})

/** `held` (as a holder keeps it) with its value decoded by `codec`, decoded once per write. */
export const decodeHeld = (codec: Codec.Codec, key: string, held: Backend.Entry): Backend.Entry | CodecError => {
  const value = heldOf(held)
  const decoded = value.decoded
  if (decoded !== undefined && decoded.codec === codec) return decoded.entry
  const result = codec.decode(key, value.text)
  if (Either.isLeft(result)) return result.left
  const entry = { value: result.right, expiresAt: held.expiresAt, tags: held.tags, version: held.version }
  value.decoded = { codec, entry }
  return entry
}

/** Room a frame keeps for what surrounds one entry: the batch, the operation, their field names. */
const FRAME_OVERHEAD = 1024

/** About how many bytes `entry` of `key` in `ns` takes in a frame, as MessagePack writes it (UTF-8). */
export const wireBytes = (ns: string, key: string, entry: WireEntry): number => {
  let bytes = Buffer.byteLength(ns) + Buffer.byteLength(key) + Buffer.byteLength(entry.value) + 32
  for (const tag of entry.tags) bytes += Buffer.byteLength(tag) + 8
  return bytes
}

/**
 * `entry` of `key` encoded by `codec` for the wire at `version`, or why it cannot cross it: its
 * value does not encode, or no frame holds it. A write is checked before anything is written, so an
 * entry that no peer could accept is refused at once, on every topology, rather than written on
 * some holders and closing the connection to the others.
 */
export const encodeForWire = (
  codec: Codec.Codec,
  ns: string,
  key: string,
  entry: Backend.Entry,
  version: number,
  maxFrameBytes: number
): WireEntry | CodecError | BackendError => {
  const encoded = codec.encode(key, entry.value)
  if (Either.isLeft(encoded)) return encoded.left
  const wire: WireEntry = { value: encoded.right, expiresAt: entry.expiresAt, tags: entry.tags, version }
  return oversize(ns, key, wire, maxFrameBytes) ?? wire
}

/**
 * About how many bytes `result` adds to a reply, never less than it takes: a reply stops growing
 * before a frame cannot hold it (the results left out are answered `Later`).
 */
export const replyWeight = (result: OpResult): number => {
  if (result._tag !== "Found" && result._tag !== "Stamped") return 16
  let units = result.entry.value.length + (result._tag === "Stamped" ? result.origin.length : 0)
  for (const tag of result.entry.tags) units += tag.length + 3
  return 32 + 3 * units
}

/** How many bytes of entries one frame carries, besides the request around them. */
export const frameBudget = (maxFrameBytes: number): number => maxFrameBytes - FRAME_OVERHEAD

/** Why `entry` of `key` does not fit in a frame of `maxFrameBytes` with the request around it, if it does not. */
const oversize = (
  ns: string,
  key: string,
  entry: WireEntry,
  maxFrameBytes: number
): BackendError | undefined => {
  const bound = frameBudget(maxFrameBytes)
  let units = ns.length + key.length + entry.value.length
  for (const tag of entry.tags) units += tag.length
  // UTF-8 takes at most 3 bytes per UTF-16 unit: only an entry near the bound is measured.
  if (units * 3 + 32 + entry.tags.length * 8 <= bound) return undefined
  const bytes = wireBytes(ns, key, entry)
  if (bytes <= bound) return undefined
  return new BackendError({
    backend: "cluster",
    operation: "put",
    cause: `the entry of key ${JSON.stringify(key)} takes ${bytes} bytes on the wire, more than a frame holds ` +
      `(maxFrameBytes ${maxFrameBytes}, less ${FRAME_OVERHEAD} for the request around it); nothing was written`
  })
}

/** A failure's message, for error replies. */
export const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : String(cause)
