/**
 * The batch operations: every key and option checked before the store is touched, then one batch
 * on the store (one `MGET`, one SQL statement, one RPC per node), counted and reported per key as
 * the single-key operations of `read.ts` and `write.ts` are.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { Entry } from "../../Backend.js"
import type { CacheError } from "../../Errors.js"
import { CodecError, ConfigError } from "../../Errors.js"
import * as Check from "../config.js"
import { noStart } from "../observe.js"
import type { PutOptions } from "./config.js"
import { putFields } from "./config.js"
import type { Core } from "./core.js"
import type { Reads } from "./read.js"
import { Miss, Unknown } from "./read.js"

export const make = <V>(core: Core, reads: Reads<V>) => {
  const { clock, counters, store } = core
  const { drop } = core.flights
  const { emit, start } = core.observer

  const checkAll = (keys: ReadonlyArray<string>): CacheError | undefined => {
    const closed = core.closed()
    if (closed !== undefined) return closed
    if (!Array.isArray(keys)) return new ConfigError({ field: "keys", reason: "expected an array of keys" })
    for (const key of keys) {
      const invalid = Check.checkKey(key)
      if (invalid !== undefined) return invalid
    }
    return undefined
  }

  const getMany = (keys: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<Option.Option<V>>, CacheError> =>
    Effect.suspend(() => {
      const invalid = checkAll(keys)
      if (invalid !== undefined) return Effect.fail(invalid)
      if (store.sync?.authoritative === true) {
        return Effect.succeed(keys.map((key) => {
          const found = reads.now(key)
          if (found === Miss) return Option.none()
          if (found !== Unknown) return Option.some(found)
          // An authoritative store answers `Unknown` only for a stale entry: a miss for plain reads.
          counters.misses.add(1)
          emit?.("get", noStart, { key, result: "miss" })
          return Option.none()
        }))
      }
      const started = start()
      // One continuation answering every key straight from its entry (no `Lookup` per key).
      return Effect.matchEffect(store.getMany(keys), {
        onFailure: (failure) => {
          reads.failed(failure)
          return Effect.fail(failure)
        },
        onSuccess: (entries) => {
          const values = new Array<Option.Option<V>>(entries.length)
          for (let i = 0; i < entries.length; i++) {
            const value = reads.freshValue(keys[i], entries[i], started)
            values[i] = value === Miss ? Option.none() : Option.some(value)
          }
          return Effect.succeed(values)
        }
      })
    })

  const putMany = (
    entries: ReadonlyArray<readonly [key: string, value: V, options?: PutOptions]>,
    options?: PutOptions
  ): Effect.Effect<void, CacheError> =>
    Effect.suspend(() => {
      if (!Array.isArray(entries) || !entries.every((entry) => Array.isArray(entry) && entry.length <= 3)) {
        return Effect.fail(
          new ConfigError({ field: "entries", reason: "expected an array of [key, value, options?] tuples" })
        )
      }
      const malformed = Check.options("options", options, putFields) ??
        entries.reduce<ConfigError | undefined>(
          (found, [, , own]) => found ?? Check.options("options", own, putFields),
          undefined
        )
      if (malformed !== undefined) return Effect.fail(malformed)
      const invalid = checkAll(entries.map(([key]) => key))
      if (invalid !== undefined) return Effect.fail(invalid)
      const now = clock.unsafeCurrentTimeMillis()
      const batch: Array<readonly [string, Entry]> = []
      for (const [key, value, own] of entries) {
        if (value === undefined) {
          return Effect.fail(new CodecError({ key, direction: "encode", cause: "undefined cannot be stored" }))
        }
        const parsed = core.options.entry(own === undefined ? options : { ...options, ...own })
        if (Either.isLeft(parsed)) return Effect.fail(parsed.left)
        const { tags, ttl } = parsed.right
        batch.push([key, { value, expiresAt: ttl === Infinity ? null : now + ttl, tags, version: 0 }])
      }
      for (const [key] of batch) drop(key)
      const started = start()
      return Effect.map(store.setMany(batch), () => {
        counters.writes.add(batch.length)
        for (const [key, entry] of batch) {
          emit?.("put", started, { key, ttl: entry.expiresAt === null ? "infinity" : entry.expiresAt - now })
        }
      })
    })

  const deleteMany = (keys: ReadonlyArray<string>): Effect.Effect<number, CacheError> =>
    Effect.suspend(() => {
      const invalid = checkAll(keys)
      if (invalid !== undefined) return Effect.fail(invalid)
      for (const key of keys) drop(key)
      return Effect.tap(store.deleteMany(keys), (removed) => counters.deletes.add(removed))
    })

  return { getMany, putMany, deleteMany }
}
