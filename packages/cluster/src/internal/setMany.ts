/**
 * The `setMany` of the cluster topologies: every entry is made into its write (encoded, checked to
 * fit in a frame) before any is written, so one that cannot be sent fails them all at once and
 * nothing is written; then the writes go all at once, and the batcher sends them to each peer in
 * one RPC.
 */
import type { Backend, CacheError } from "@vela/core"
import { BackendError, CodecError } from "@vela/core"
import * as Effect from "effect/Effect"

export const setMany = <W>(
  entries: ReadonlyArray<readonly [string, Backend.Entry]>,
  prepare: (key: string, entry: Backend.Entry) => W | CodecError | BackendError,
  write: (prepared: W) => Effect.Effect<unknown, CacheError>
): Effect.Effect<void, CacheError> =>
  Effect.suspend(() => {
    const writes: Array<W> = []
    for (const [key, entry] of entries) {
      const prepared = prepare(key, entry)
      if (prepared instanceof CodecError || prepared instanceof BackendError) return Effect.fail(prepared)
      writes.push(prepared as W)
    }
    return Effect.forEach(writes, write, { concurrency: "unbounded", discard: true })
  })
