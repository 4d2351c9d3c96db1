/**
 * Writes: each goes through the database's `Writer`, so the writes of one tick share a transaction;
 * a batch (`setMany`, `deleteMany`) is one submission, so one transaction. `set` and `delete` are
 * batches of one.
 *
 * Eviction: with a finite `maxSize`, a write of a new key first removes expired rows, then, if the
 * namespace is still full, the victim of its policy, in the same transaction as the write.
 * `lru` ranks by `used` (a sequence number set by every read and write), `lfu` by `uses` then
 * `used`, `ttl-only` by `expires_at` (no expiry last) then `written`.
 *
 * Invariant: a namespace holds at most `maxSize` rows after every committed write.
 */
import type { Backend, BackendError, CodecError } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { Namespace } from "./namespace.js"
import { isLive } from "./namespace.js"

type Entry = Backend.Entry

export interface Writes {
  readonly set: (key: string, entry: Entry) => Effect.Effect<void, BackendError | CodecError>
  readonly setMany: (entries: ReadonlyArray<readonly [string, Entry]>) => Effect.Effect<void, BackendError | CodecError>
  /** `true` when a live row went. */
  readonly delete: (key: string) => Effect.Effect<boolean, BackendError>
  /** Returns how many live rows went. */
  readonly deleteMany: (keys: ReadonlyArray<string>) => Effect.Effect<number, BackendError>
  /** Counts only live rows. */
  readonly invalidateTag: (tag: string) => Effect.Effect<number, BackendError>
  readonly clear: Effect.Effect<void, BackendError>
  /**
   * Writes one entry from inside a write transaction, as a put does (eviction, tags); returns how
   * many rows expired and were evicted to make room.
   */
  readonly writeRow: (key: string, text: string, entry: Entry) => Counts
  /** Tells the cache what a committed transaction expired and evicted. */
  readonly report: (counts: Counts) => void
}

/** Rows a transaction removed because they expired, or to make room. */
export interface Counts {
  readonly expired: number
  readonly evicted: number
}

/** The `tags` column of an entry's tags. */
const tagsText = (tags: ReadonlyArray<string>): string | null => tags.length === 0 ? null : JSON.stringify(tags)

export const make = (ns: Namespace): Writes => {
  const { codec, namespace, now, options, statements: s, writer } = ns
  const { maxSize } = options
  const evictOne = options.evictionPolicy === "lru"
    ? () => s.evictLru.run(namespace).changes
    : options.evictionPolicy === "lfu"
    ? () => s.evictLfu.run(namespace).changes
    : () => s.evictSoonest.run(namespace).changes || s.evictOldest.run(namespace).changes

  /** Writes one entry inside a batch; returns how many rows expired and were evicted to make room. */
  const write = (key: string, text: string, entry: Entry): Counts => {
    const tags = tagsText(entry.tags)
    const at = now()
    const found = s.find.get(namespace, key)
    const used = ns.nextWrite()
    let expired = 0
    let evicted = 0
    let id: number
    if (found !== undefined) {
      const live = isLive(found.expires_at, at)
      if (!live) expired++
      id = found.id
      s.update.run(text, entry.expiresAt, entry.version, tags, used, used, live ? 0 : 1, id)
      if (found.tags === tags) return { expired, evicted }
      if (found.tags !== null) s.untag.run(id)
    } else {
      if (ns.bounded) {
        const rows = s.rows.get(namespace) ?? 0
        if (rows >= maxSize) {
          // Expired rows are the cheapest room, and removing them is not an eviction.
          const need = rows - maxSize + 1
          expired += s.sweep.run(namespace, at, need).changes
          while (expired + evicted < need && evictOne() > 0) evicted++
        }
      }
      id = Number(
        s.insert.run(namespace, key, text, entry.expiresAt, entry.version, tags, used, used)
          .lastInsertRowid
      )
    }
    for (const tag of entry.tags) s.tag.run(namespace, tag, id)
    return { expired, evicted }
  }

  const report = ({ evicted, expired }: Counts) => {
    if (expired > 0) options.onExpire(expired)
    if (evicted > 0) options.onEvict(evicted)
  }

  const setMany = (
    entries: ReadonlyArray<readonly [string, Entry]>
  ): Effect.Effect<void, BackendError | CodecError> =>
    Effect.suspend((): Effect.Effect<void, BackendError | CodecError> => {
      const rows: Array<readonly [string, string, Entry]> = []
      for (const [key, entry] of entries) {
        const encoded = codec.encode(key, entry.value)
        if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
        rows.push([key, encoded.right, entry])
      }
      const operation = rows.length === 1 ? "put" : "putMany"
      return Effect.map(
        writer.submit(operation, () => rows.map(([key, text, entry]) => write(key, text, entry))),
        (results) => {
          let expired = 0
          let evicted = 0
          for (const result of results) {
            expired += result.expired
            evicted += result.evicted
          }
          report({ expired, evicted })
        }
      )
    })

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

  return {
    set: (key, entry) => setMany([[key, entry]]),
    setMany,
    delete: (key) => Effect.map(deleteMany([key]), (removed) => removed > 0),
    deleteMany,
    invalidateTag,
    clear: writer.submit("flush", () => {
      s.clear.run(namespace)
    }),
    writeRow: write,
    report
  }
}
