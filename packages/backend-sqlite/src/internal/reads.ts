/**
 * Reads: synchronous prepared statements, answered at once. Every read compares `expires_at` with
 * the cache's clock, so an expired row is never returned, whether or not the sweeper has run; a
 * read's use is recorded in memory (`Touches`) and written by the next write transaction.
 */
import type { Backend, BackendError, Codec, CodecError } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { Row } from "./database.js"
import type { Namespace } from "./namespace.js"
import { isLive } from "./namespace.js"

type Entry = Backend.Entry

const noTags: ReadonlyArray<string> = []

/** Pending uses past which the writer is asked to run a transaction soon. */
const maxPendingUses = 10_000

export interface Reads {
  readonly get: (key: string) => Effect.Effect<Option.Option<Entry>, BackendError | CodecError>
  /** Reads only `expires_at`, and records no use. */
  readonly has: (key: string) => Effect.Effect<boolean, BackendError>
  /** Every key's entry from one synchronous pass over the prepared statement. */
  readonly getMany: (
    keys: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<Option.Option<Entry>>, BackendError | CodecError>
  /**
   * Hits are served without the runtime; anything else (a miss, an error, data that no longer
   * decodes) falls through to `get`, which reports it.
   */
  readonly sync: Backend.SyncStore
}

/** The entry a row holds. */
export const toEntry = (codec: Codec.Codec<unknown>, key: string, row: Row): Either.Either<Entry, CodecError> =>
  Either.map(codec.decode(key, row.value), (value) => ({
    value,
    expiresAt: row.expires_at,
    tags: tagsOf(row.tags),
    version: row.version
  }))

/** The tags of a row's `tags` column. */
export const tagsOf = (text: string | null): ReadonlyArray<string> =>
  text === null ? noTags : JSON.parse(text) as ReadonlyArray<string>

export const make = (ns: Namespace): Reads => {
  const { codec, fail, namespace, now, statements: s, touches, writer } = ns

  /** The live row for `key`, its use recorded when the policy ranks by reads. */
  const readRow = (key: string): Row | undefined => {
    const row = s.get.get(namespace, key)
    if (row === undefined || !isLive(row.expires_at, now())) return undefined
    if (ns.tracksReads) {
      touches.add(namespace, key, ns.nextRead())
      if (touches.count >= maxPendingUses) writer.nudge()
    }
    return row
  }

  const get = (key: string): Effect.Effect<Option.Option<Entry>, BackendError | CodecError> =>
    Effect.suspend((): Effect.Effect<Option.Option<Entry>, BackendError | CodecError> => {
      let row: Row | undefined
      try {
        row = readRow(key)
      } catch (cause) {
        return Effect.fail(fail("get", cause))
      }
      if (row === undefined) return Effect.succeed(Option.none())
      const entry = toEntry(codec, key, row)
      return Either.isRight(entry) ? Effect.succeed(Option.some(entry.right)) : Effect.fail(entry.left)
    })

  const has = (key: string): Effect.Effect<boolean, BackendError> =>
    Effect.suspend(() => {
      try {
        const expiresAt = s.expiresAt.get(namespace, key)
        return Effect.succeed(expiresAt !== undefined && isLive(expiresAt, now()))
      } catch (cause) {
        return Effect.fail(fail("has", cause))
      }
    })

  const getMany = (
    keys: ReadonlyArray<string>
  ): Effect.Effect<ReadonlyArray<Option.Option<Entry>>, BackendError | CodecError> =>
    Effect.suspend((): Effect.Effect<ReadonlyArray<Option.Option<Entry>>, BackendError | CodecError> => {
      const entries: Array<Option.Option<Entry>> = []
      try {
        for (const key of keys) {
          const row = readRow(key)
          if (row === undefined) {
            entries.push(Option.none())
            continue
          }
          const entry = toEntry(codec, key, row)
          if (Either.isLeft(entry)) return Effect.fail(entry.left)
          entries.push(Option.some(entry.right))
        }
      } catch (cause) {
        return Effect.fail(fail("getMany", cause))
      }
      return Effect.succeed(entries)
    })

  const sync: Backend.SyncStore = {
    get: (key) => {
      try {
        const row = readRow(key)
        if (row === undefined) return undefined
        const entry = toEntry(codec, key, row)
        return Either.isRight(entry) ? entry.right : undefined
      } catch {
        return undefined
      }
    },
    authoritative: false
  }

  return { get, has, getMany, sync }
}
