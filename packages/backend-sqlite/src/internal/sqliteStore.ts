/**
 * One cache's namespace in a database file: a `Store` whose reads are synchronous prepared
 * statements and whose writes go through the database's `Writer`.
 *
 * Expiry: every read compares `expires_at` with the cache's clock, so an expired row is never
 * returned, whether or not the sweeper has run; `size` subtracts the expired rows it finds through
 * the `(namespace, expires_at)` index from the namespace's row count, and `invalidateTag` counts
 * only live rows. The sweeper deletes expired rows in batches of `sweepBatchSize`, each its own
 * short transaction, yielding to the event loop between them, so readers and writers never wait
 * on one long delete.
 *
 * Eviction: with a finite `maxSize`, a write of a new key first removes expired rows, then, if the
 * namespace is still full, the victim of its policy, in the same transaction as the write.
 * `lru` ranks by `used` (a sequence number set by every read and write), `lfu` by `uses` then
 * `used`, `ttl-only` by `expires_at` (no expiry last) then `written`. Reads record their use in
 * memory, and the next write transaction applies it, so a read never waits for a commit.
 * Sequence numbers start above the file's highest at each write, so several processes on one file
 * rank close to their real order; within one process the order is exact.
 *
 * Invariant: a namespace holds at most `maxSize` rows after every committed write.
 */
import type { BackendError, Codec, CodecError } from "@vela/core"
import { Backend } from "@vela/core"
import { Effect, Either, Option, Stream } from "effect"
import type { Row, Statements } from "./database.js"
import type { Writer } from "./writer.js"

type Store = Backend.Store
type Entry = Backend.Entry
type OpenOptions = Backend.OpenOptions

const noTags: ReadonlyArray<string> = []

/** Reads' uses not yet written, per namespace and key: the highest sequence and how many reads. */
export class Touches {
  #pending = new Map<string, Map<string, { used: number; uses: number }>>()
  #count = 0

  get count(): number {
    return this.#count
  }

  add(namespace: string, key: string, used: number): void {
    let keys = this.#pending.get(namespace)
    if (keys === undefined) this.#pending.set(namespace, keys = new Map())
    const touch = keys.get(key)
    if (touch === undefined) {
      keys.set(key, { used, uses: 1 })
      this.#count++
    } else {
      touch.used = used
      touch.uses++
    }
  }

  /** Applies and forgets every pending use. */
  apply(statements: Statements): void {
    if (this.#count === 0) return
    const pending = this.#pending
    this.#pending = new Map()
    this.#count = 0
    for (const [namespace, keys] of pending) {
      for (const [key, touch] of keys) statements.touch.run(touch.used, touch.uses, namespace, key)
    }
  }
}

export interface Shared {
  readonly statements: Statements
  readonly writer: Writer
  readonly touches: Touches
  readonly sweepBatchSize: number
  readonly fail: (operation: string, cause: unknown) => BackendError
}

/** Opens `options.namespace`; must run in a write transaction (it registers the namespace). */
export const makeStore = (shared: Shared, options: OpenOptions): Store => {
  const { fail, statements: s, touches, writer } = shared
  const { clock, maxSize, namespace } = options
  const codec: Codec.Codec<unknown> = options.codec
  const bounded = maxSize !== Infinity
  const tracksReads = bounded && options.evictionPolicy !== "ttl-only"
  const evictOne = options.evictionPolicy === "lru"
    ? () => s.evictLru.run(namespace).changes
    : options.evictionPolicy === "lfu"
    ? () => s.evictLfu.run(namespace).changes
    : () => s.evictSoonest.run(namespace).changes || s.evictOldest.run(namespace).changes
  let seq = s.maxUsed.get(namespace) ?? 0

  /** The next sequence number, above anything another process wrote when it matters. */
  const nextSeq = () => {
    if (bounded) {
      const highest = s.maxUsed.get(namespace) ?? 0
      if (highest > seq) seq = highest
    }
    return ++seq
  }

  const now = () => clock.unsafeCurrentTimeMillis()
  const isLive = (expiresAt: number | null, at: number) => expiresAt === null || expiresAt > at

  /** The live row for `key`, its use recorded when `use` and the policy ranks by reads. */
  const readRow = (key: string, use: boolean): Row | undefined => {
    const row = s.get.get(namespace, key)
    if (row === undefined || !isLive(row.expires_at, now())) return undefined
    if (use && tracksReads) {
      touches.add(namespace, key, ++seq)
      if (touches.count >= 10_000) writer.nudge()
    }
    return row
  }

  const toEntry = (key: string, row: Row): Either.Either<Entry, CodecError> =>
    Either.map(codec.decode(key, row.value), (value) => ({
      value,
      expiresAt: row.expires_at,
      tags: row.tags === null ? noTags : JSON.parse(row.tags) as ReadonlyArray<string>,
      version: row.version
    }))

  const get = (key: string): Effect.Effect<Option.Option<Entry>, BackendError | CodecError> =>
    Effect.suspend((): Effect.Effect<Option.Option<Entry>, BackendError | CodecError> => {
      let row: Row | undefined
      try {
        row = readRow(key, true)
      } catch (cause) {
        return Effect.fail(fail("get", cause))
      }
      if (row === undefined) return Effect.succeed(Option.none())
      const entry = toEntry(key, row)
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

  /** Writes one entry inside a batch; returns how many rows expired and were evicted to make room. */
  const write = (key: string, text: string, entry: Entry, tagsText: string | null) => {
    const at = now()
    const found = s.find.get(namespace, key)
    const used = nextSeq()
    let expired = 0
    let evicted = 0
    let id: number
    if (found !== undefined) {
      const live = isLive(found.expires_at, at)
      if (!live) expired++
      id = found.id
      s.update.run(text, entry.expiresAt, entry.version, tagsText, used, used, live ? 0 : 1, id)
      if (found.tags === tagsText) return { expired, evicted }
      if (found.tags !== null) s.untag.run(id)
    } else {
      if (bounded) {
        const rows = s.rows.get(namespace) ?? 0
        if (rows >= maxSize) {
          // Expired rows are the cheapest room, and removing them is not an eviction.
          const need = rows - maxSize + 1
          expired += s.sweep.run(namespace, at, need).changes
          while (expired + evicted < need && evictOne() > 0) evicted++
        }
      }
      id = Number(
        s.insert.run(namespace, key, text, entry.expiresAt, entry.version, tagsText, used, used)
          .lastInsertRowid
      )
    }
    for (const tag of entry.tags) s.tag.run(namespace, tag, id)
    return { expired, evicted }
  }

  /** Writes `entries` in one submission to the writer, so in one transaction. */
  const setMany = (
    entries: ReadonlyArray<readonly [string, Entry]>
  ): Effect.Effect<void, BackendError | CodecError> =>
    Effect.suspend((): Effect.Effect<void, BackendError | CodecError> => {
      const rows: Array<readonly [string, string, Entry, string | null]> = []
      for (const [key, entry] of entries) {
        const encoded = codec.encode(key, entry.value)
        if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
        rows.push([key, encoded.right, entry, entry.tags.length === 0 ? null : JSON.stringify(entry.tags)])
      }
      const operation = rows.length === 1 ? "put" : "putMany"
      return Effect.map(
        writer.submit(operation, () => rows.map(([key, text, entry, tagsText]) => write(key, text, entry, tagsText))),
        (results) => {
          let expired = 0
          let evicted = 0
          for (const result of results) {
            expired += result.expired
            evicted += result.evicted
          }
          if (expired > 0) options.onExpire(expired)
          if (evicted > 0) options.onEvict(evicted)
        }
      )
    })

  const set = (key: string, entry: Entry): Effect.Effect<void, BackendError | CodecError> => setMany([[key, entry]])

  /** Deletes `keys` in one submission; returns how many live rows went. */
  const deleteMany = (keys: ReadonlyArray<string>): Effect.Effect<number, BackendError> =>
    Effect.map(
      writer.submit(keys.length === 1 ? "delete" : "deleteMany", () => {
        let live = 0
        let expired = 0
        const at = now()
        for (const key of keys) {
          const found = s.find.get(namespace, key)
          if (found === undefined) continue
          s.delete.run(found.id)
          if (isLive(found.expires_at, at)) live++
          else expired++
        }
        return { live, expired }
      }),
      ({ expired, live }) => {
        if (expired > 0) options.onExpire(expired)
        return live
      }
    )

  const remove = (key: string): Effect.Effect<boolean, BackendError> =>
    Effect.map(deleteMany([key]), (removed) => removed > 0)

  /** Every key's entry from one synchronous pass over the prepared statement. */
  const getMany = (
    keys: ReadonlyArray<string>
  ): Effect.Effect<ReadonlyArray<Option.Option<Entry>>, BackendError | CodecError> =>
    Effect.suspend((): Effect.Effect<ReadonlyArray<Option.Option<Entry>>, BackendError | CodecError> => {
      const entries: Array<Option.Option<Entry>> = []
      try {
        for (const key of keys) {
          const row = readRow(key, true)
          if (row === undefined) {
            entries.push(Option.none())
            continue
          }
          const entry = toEntry(key, row)
          if (Either.isLeft(entry)) return Effect.fail(entry.left)
          entries.push(Option.some(entry.right))
        }
      } catch (cause) {
        return Effect.fail(fail("getMany", cause))
      }
      return Effect.succeed(entries)
    })

  const invalidateTag = (tag: string): Effect.Effect<number, BackendError> =>
    Effect.map(
      writer.submit("invalidateTag", () => {
        const counts = s.countTag.get(now(), namespace, tag)!
        if (counts.total > 0) s.deleteTag.run(namespace, tag)
        return counts
      }),
      ({ expired, total }) => {
        if (expired > 0) options.onExpire(expired)
        return total - expired
      }
    )

  const clear: Effect.Effect<void, BackendError> = writer.submit("flush", () => {
    s.clear.run(namespace)
  })

  const size: Effect.Effect<number, BackendError> = Effect.suspend(() => {
    try {
      return Effect.succeed(s.size.get({ namespace, now: now() })!)
    } catch (cause) {
      return Effect.fail(fail("size", cause))
    }
  })

  const sweepBatch = writer.submit("sweep", () => s.sweep.run(namespace, now(), shared.sweepBatchSize).changes)
  const sweep: Effect.Effect<void, BackendError> = Effect.suspend(() => {
    let pending: boolean
    try {
      pending = s.hasExpired.get(namespace, now()) === 1
    } catch (cause) {
      return Effect.fail(fail("sweep", cause))
    }
    if (!pending) return Effect.void
    return Effect.flatMap(sweepBatch, (removed) => {
      if (removed > 0) options.onExpire(removed)
      return removed < shared.sweepBatchSize ? Effect.void : Effect.zipRight(Backend.yieldToEventLoop, sweep)
    })
  })

  return Backend.makeStore({
    get,
    has,
    set,
    delete: remove,
    invalidateTag,
    clear,
    size,
    sweep,
    invalidations: Stream.empty,
    getMany,
    setMany,
    deleteMany,
    // Hits are served without the runtime; anything else (a miss, an error, data that no longer
    // decodes) falls through to `get`, which reports it.
    sync: {
      get: (key) => {
        try {
          const row = readRow(key, true)
          if (row === undefined) return undefined
          const entry = toEntry(key, row)
          return Either.isRight(entry) ? entry.right : undefined
        } catch {
          return undefined
        }
      },
      authoritative: false
    }
  })
}
