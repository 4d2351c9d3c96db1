/**
 * The one write path of a cache, served to the Effect API and the Promise facade alike: `prepare`
 * checks a `put` and builds its entry, `drop` lets go of the key's fetches in flight (a write wins
 * over them), and the entry goes to the store through `sync.set` where the store has it (an
 * authoritative in-memory store: no runtime, no allocation), otherwise through `store.set` for the
 * Effect API and `store.setCallback` for callers without the runtime. `wrote` counts and reports it.
 * Removals (`delete`, `flush`, `invalidateTag`) live here too.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { Entry } from "../../Backend.js"
import type { CacheError } from "../../Errors.js"
import { CodecError, ConfigError } from "../../Errors.js"
import * as Check from "../config.js"
import type { PutOptions } from "./config.js"
import { putFields } from "./config.js"
import type { Core } from "./core.js"

const noTags: ReadonlyArray<string> = []

/** What `prepare` gave: an entry (every `CacheError` has a `_tag`, no entry has). */
const isEntry = (prepared: Entry | CacheError): prepared is Entry => !("_tag" in prepared)

/** Where a new entry goes: its expiry and its tags. */
export interface Placement {
  readonly expiresAt: number | null
  readonly tags: ReadonlyArray<string>
}

export interface Writes<V> {
  /** The expiry and tags of a write with `options` (a `put`'s, checked as `put` checks them). */
  readonly placement: (options: PutOptions | undefined) => Either.Either<Placement, CacheError>
  /** The expiry of an entry written now with a TTL of `ttl` milliseconds (`Infinity`: none). */
  readonly expiresAt: (ttl: number) => number | null
  /**
   * Writes a prepared entry, counted and reported: on an in-memory store at once, when called (so
   * call it when the write is due), otherwise when the returned Effect runs. `now`: the clock as read
   * to make the entry, if it was just read.
   */
  readonly write: (key: string, entry: Entry, now?: number) => Effect.Effect<void, CacheError>
  /** `write` for callers without the runtime: `done` is called once, synchronously on an in-memory store. */
  readonly writeCallback: (key: string, entry: Entry, done: (failure?: CacheError) => void) => void
  /** Counts and reports a write the store made. */
  readonly wrote: (key: string, entry: Entry, started: bigint) => void
  readonly put: (key: string, value: V, options?: PutOptions) => Effect.Effect<void, CacheError>
  /**
   * `put` at once, for callers without the runtime, where the store writes synchronously (else
   * `undefined`): the failure, or `undefined` once written.
   */
  readonly putNow: ((key: string, value: V, options: PutOptions | undefined) => CacheError | undefined) | undefined
  /** `put` for callers without the runtime, as `writeCallback`. */
  readonly putCallback: (
    key: string,
    value: V,
    options: PutOptions | undefined,
    done: (failure?: CacheError) => void
  ) => void
  readonly remove: (key: string) => Effect.Effect<void, CacheError>
  readonly exists: (key: string) => Effect.Effect<boolean, CacheError>
  readonly flush: Effect.Effect<void, CacheError>
  readonly size: Effect.Effect<number, CacheError>
  readonly invalidateTag: (tag: string) => Effect.Effect<number, CacheError>
}

export const make = <V>(core: Core): Writes<V> => {
  const { check, clock, counters, store } = core
  const { drop, dropAll } = core.flights
  const { emit, start, watching } = core.observer
  const syncSet = store.sync?.set
  /**
   * The clock as `placement` read it (undefined: it did not), for a put to hand to its synchronous
   * write right after its `prepare`: a put with a TTL reads the clock once, not twice.
   */
  let placedAt: number | undefined

  /**
   * The entry a `put` writes, or why it cannot be written (a `CacheError`, told apart by `isEntry`).
   * Allocates the entry alone: a put runs it on every call.
   */
  const prepare = (key: string, value: V, options: PutOptions | undefined): Entry | CacheError => {
    const invalid = check(key)
    if (invalid !== undefined) return invalid
    if (value === undefined) return new CodecError({ key, direction: "encode", cause: "undefined cannot be stored" })
    return entryOf(value, options)
  }

  /** The entry of `value` placed as `options` say (its expiry and tags), or why they are malformed. */
  const entryOf = (value: unknown, options: PutOptions | undefined): Entry | CacheError => {
    const malformed = Check.options("options", options, putFields)
    if (malformed !== undefined) return malformed
    // The common case, a TTL in milliseconds and no tags, without parsing a duration.
    const ttl = options?.ttl
    if (typeof ttl === "number" && ttl > 0 && ttl <= Check.maxTtlMillis && options!.tags === undefined) {
      return { value, expiresAt: expiresAt(ttl), tags: noTags, version: 0 }
    }
    const parsed = core.options.entry(options)
    return Either.isLeft(parsed)
      ? parsed.left
      : { value, expiresAt: expiresAt(parsed.right.ttl), tags: parsed.right.tags, version: 0 }
  }

  const placement = (options: PutOptions | undefined): Either.Either<Placement, CacheError> => {
    const placed = entryOf(undefined, options)
    return isEntry(placed) ? Either.right({ expiresAt: placed.expiresAt, tags: placed.tags }) : Either.left(placed)
  }

  const expiresAt = (ttl: number): number | null =>
    ttl === Infinity ? null : (placedAt = clock.unsafeCurrentTimeMillis()) + ttl

  const wrote = (key: string, entry: Entry, started: bigint) => {
    counters.writes.add(1)
    if (!watching()) return
    emit?.("put", started, {
      key,
      ttl: entry.expiresAt === null ? "infinity" : entry.expiresAt - clock.unsafeCurrentTimeMillis()
    })
  }

  const write = (key: string, entry: Entry, now?: number): Effect.Effect<void, CacheError> => {
    const started = start()
    if (syncSet !== undefined) {
      syncSet(key, entry, now)
      wrote(key, entry, started)
      return Effect.void
    }
    return Effect.map(store.set(key, entry), () => wrote(key, entry, started))
  }

  const writeCallback = (key: string, entry: Entry, done: (failure?: CacheError) => void) => {
    const started = start()
    if (syncSet !== undefined) {
      syncSet(key, entry)
      wrote(key, entry, started)
      return done()
    }
    store.setCallback(key, entry, (failure) => {
      if (failure === undefined) wrote(key, entry, started)
      done(failure)
    })
  }

  const put = (key: string, value: V, options?: PutOptions): Effect.Effect<void, CacheError> =>
    Effect.suspend(() => {
      placedAt = undefined
      const prepared = prepare(key, value, options)
      if (!isEntry(prepared)) return Effect.fail(prepared)
      const now = placedAt
      drop(key)
      return write(key, prepared, now)
    })

  const putCallback = (
    key: string,
    value: V,
    options: PutOptions | undefined,
    done: (failure?: CacheError) => void
  ) => {
    const prepared = prepare(key, value, options)
    if (!isEntry(prepared)) return done(prepared)
    drop(key)
    writeCallback(key, prepared, done)
  }

  const putNow = syncSet === undefined ? undefined : (key: string, value: V, options: PutOptions | undefined) => {
    placedAt = undefined
    const prepared = prepare(key, value, options)
    if (!isEntry(prepared)) return prepared
    const now = placedAt
    drop(key)
    const started = start()
    syncSet(key, prepared, now)
    wrote(key, prepared, started)
    return undefined
  }

  const remove = (key: string): Effect.Effect<void, CacheError> =>
    Effect.suspend(() => {
      const invalid = check(key)
      if (invalid !== undefined) return Effect.fail(invalid)
      drop(key)
      const started = start()
      return Effect.map(store.delete(key), (removed) => {
        if (removed) counters.deletes.add(1)
        emit?.("delete", started, { key, removed })
      })
    })

  const exists = (key: string): Effect.Effect<boolean, CacheError> =>
    Effect.suspend(() => {
      const invalid = check(key)
      return invalid === undefined ? store.has(key) : Effect.fail(invalid)
    })

  const whenOpen = <A>(self: Effect.Effect<A, CacheError>): Effect.Effect<A, CacheError> =>
    Effect.suspend(() => {
      const closed = core.closed()
      return closed === undefined ? self : Effect.fail(closed)
    })

  const flush = Effect.suspend(() => {
    const started = start()
    return Effect.tap(
      whenOpen(Effect.zipRight(Effect.sync(dropAll), store.clear)),
      () => emit?.("flush", started, {})
    )
  })

  const invalidateTag = (tag: string): Effect.Effect<number, CacheError> =>
    whenOpen(Effect.suspend(() => {
      if (typeof tag !== "string" || tag.length === 0) {
        return Effect.fail(new ConfigError({ field: "tag", reason: "expected a non-empty string" }))
      }
      dropAll()
      const started = start()
      return Effect.map(store.invalidateTag(tag), (count) => {
        counters.deletes.add(count)
        emit?.("invalidate_tag", started, { tag }, { count })
        return count
      })
    }))

  return {
    placement,
    expiresAt,
    write,
    writeCallback,
    wrote,
    put,
    putNow,
    putCallback,
    remove,
    exists,
    flush,
    size: whenOpen(store.size),
    invalidateTag
  }
}
