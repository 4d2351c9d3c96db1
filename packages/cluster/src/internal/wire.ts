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

/** A failure's message, for error replies. */
export const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : String(cause)
