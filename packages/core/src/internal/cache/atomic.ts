/**
 * The atomic operations of a cache: `ttl`, `touch`, `take`, `increment` and `update`, each one step
 * of the store (`update` an optimistic loop of `readForUpdate` and `compareAndSet`), so that they
 * are exact however many callers, processes or nodes race on a key.
 *
 * An entry fetched with grace (stale-while-revalidate) is seen as plain reads see it: fresh until
 * its fetch's TTL ends, then missing. So `ttl` is the time left until it turns stale, `take`
 * removes it and returns its value only while it is fresh, and `update` rewrites it only while it
 * is fresh (keeping its grace unless `options` give a new TTL). `touch` sets when the store drops
 * it (the end of its grace) and never makes a stale value fresh again: freshness comes only from a
 * fetch. `increment` of one is `WrongType` (a counter is not fetched with grace).
 *
 * Stats: `take` and `update` read, so each counts a hit or a miss; `take` that removed an entry
 * counts a delete, `update` that wrote and `increment` count a write. `ttl` and `touch` count
 * nothing, as `exists` does not.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { Entry, Snapshot } from "../../Backend.js"
import type { CacheError } from "../../Errors.js"
import { CodecError, ConfigError } from "../../Errors.js"
import type * as Vela from "../../Vela.js"
import * as Check from "../config.js"
import { conflictBackoff } from "../conflictBackoff.js"
import * as Grace from "../grace.js"
import { Graced } from "../grace.js"
import type { PutOptions } from "./config.js"
import { putFields } from "./config.js"
import type { Core } from "./core.js"
import { Miss } from "./read.js"
import type { Writes } from "./write.js"

/** The atomic operations, as `Vela.Cache` declares them. */
export type Atomics<V> = Pick<Vela.Cache<V>, "ttl" | "touch" | "take" | "increment" | "update">

export const make = <V>(core: Core, writes: Writes<V>): Atomics<V> => {
  const { check, clock, counters, store } = core
  const { drop } = core.flights
  const { emit, start } = core.observer

  /** The value of `entry` as a plain read sees it: `undefined` when it is stale. */
  const freshValue = (entry: Entry): { readonly value: V } | undefined => {
    const value = Grace.fresh(entry.value, clock, Miss)
    return value === Miss ? undefined : { value: value as V }
  }

  const read = (key: string, hit: boolean, started: bigint, op: string) => {
    if (hit) counters.hits.add(1)
    else counters.misses.add(1)
    emit?.(op, started, { key, result: hit ? "hit" : "miss" })
  }

  const ttl = (key: string): Effect.Effect<Option.Option<Duration.Duration>, CacheError> =>
    Effect.suspend(() => {
      const invalid = check(key)
      if (invalid !== undefined) return Effect.fail(invalid)
      // `readForUpdate` reaches the store that owns the key (a near cache's L1 caps expiries);
      // a store without it reads in place, so `get` there is exact.
      const entry = store.readForUpdate(key).pipe(
        Effect.map(Option.map((snapshot) => snapshot.entry)),
        Effect.catchTag("Unsupported", () => store.get(key))
      )
      return Effect.map(entry, Option.flatMap(remaining))
    })

  const remaining = (entry: Entry): Option.Option<Duration.Duration> => {
    const value = entry.value
    const until = value instanceof Graced
      ? entry.expiresAt === null ? value.freshUntil : Math.min(value.freshUntil, entry.expiresAt)
      : entry.expiresAt
    if (until === null) return Option.some(Duration.infinity)
    const left = until - clock.unsafeCurrentTimeMillis()
    return left > 0 ? Option.some(Duration.millis(left)) : Option.none()
  }

  const touch = (key: string, ttl?: Duration.DurationInput | "infinity"): Effect.Effect<boolean, CacheError> =>
    Effect.suspend(() => {
      const invalid = check(key)
      if (invalid !== undefined) return Effect.fail(invalid)
      const millis = ttl === undefined ? Either.right(core.config.defaultTtl) : Check.ttl("ttl", ttl)
      if (Either.isLeft(millis)) return Effect.fail(millis.left)
      const started = start()
      return Effect.tap(store.touch(key, writes.expiresAt(millis.right)), (touched) => {
        emit?.("touch", started, { key, touched })
      })
    })

  const take = (key: string): Effect.Effect<Option.Option<V>, CacheError> =>
    Effect.suspend(() => {
      const invalid = check(key)
      if (invalid !== undefined) return Effect.fail(invalid)
      // A fetch in flight would store the value taken away: the take wins over it, as a delete does.
      drop(key)
      const started = start()
      return Effect.map(store.take(key), (taken) => {
        if (Option.isNone(taken)) {
          read(key, false, started, "take")
          return Option.none()
        }
        counters.deletes.add(1)
        const found = freshValue(taken.value)
        read(key, found !== undefined, started, "take")
        return found === undefined ? Option.none() : Option.some(found.value)
      })
    })

  const increment = (key: string, by = 1, options?: PutOptions): Effect.Effect<number, CacheError> =>
    Effect.suspend(() => {
      const invalid = check(key)
      if (invalid !== undefined) return Effect.fail(invalid)
      if (typeof by !== "number" || !Number.isFinite(by)) {
        return Effect.fail(new ConfigError({ field: "by", reason: `expected a finite number, got ${String(by)}` }))
      }
      const created = writes.placement(options)
      if (Either.isLeft(created)) return Effect.fail(created.left)
      drop(key)
      const started = start()
      return Effect.tap(store.increment(key, by, created.right), (value) => {
        counters.writes.add(1)
        emit?.("increment", started, { key }, { by, value })
      })
    })

  /** The expiry and tags `update` gives the new entry: those of `options` where given, else the entry's own. */
  const replacing = (
    options: PutOptions | undefined
  ): Either.Either<(seen: Entry) => Pick<Entry, "expiresAt" | "tags">, CacheError> => {
    const malformed = Check.options("options", options, putFields)
    if (malformed !== undefined) return Either.left(malformed)
    const ttl = options?.ttl === undefined ? Either.right(undefined) : Check.ttl("ttl", options.ttl)
    if (Either.isLeft(ttl)) return Either.left(ttl.left)
    const tags = options?.tags === undefined ? Either.right(undefined) : Check.tags(options.tags)
    if (Either.isLeft(tags)) return Either.left(tags.left)
    return Either.right((seen) => ({
      expiresAt: ttl.right === undefined ? seen.expiresAt : writes.expiresAt(ttl.right),
      tags: tags.right ?? seen.tags
    }))
  }

  const update = <E, R>(
    key: string,
    f: (value: V) => V | Effect.Effect<V, E, R>,
    options?: PutOptions
  ): Effect.Effect<Option.Option<V>, CacheError | E, R> =>
    Effect.suspend(() => {
      const invalid = check(key)
      if (invalid !== undefined) return Effect.fail(invalid)
      if (typeof f !== "function") {
        return Effect.fail(new ConfigError({ field: "f", reason: "expected a function of the value" }))
      }
      const place = replacing(options)
      if (Either.isLeft(place)) return Effect.fail(place.left)
      const started = start()
      const miss = Effect.sync(() => {
        read(key, false, started, "update")
        return Option.none<V>()
      })
      const apply = (value: V): Effect.Effect<V, E, R> =>
        Effect.suspend(() => {
          const next = f(value)
          return Effect.isEffect(next) ? next : Effect.succeed(next)
        })
      const write = (seen: Snapshot, next: V): Entry => {
        const placed = place.right(seen.entry)
        const graced = seen.entry.value
        // Rewritten with its own TTL, a value fetched with grace stays fresh as long and keeps its grace.
        const value = graced instanceof Graced && options?.ttl === undefined
          ? new Graced(next, graced.freshUntil)
          : next
        return { value, ...placed, version: seen.entry.version }
      }
      const wrote = (next: V) =>
        Effect.sync(() => {
          drop(key)
          counters.writes.add(1)
          read(key, true, started, "update")
          return Option.some(next)
        })
      const attempt = (conflicts: number): Effect.Effect<Option.Option<V>, CacheError | E, R> =>
        Effect.flatMap(
          store.readForUpdate(key),
          (current) => {
            if (Option.isNone(current)) return miss
            const seen = current.value
            const found = freshValue(seen.entry)
            if (found === undefined) return miss
            return Effect.flatMap(apply(found.value), (next) => {
              if (next === undefined) {
                return Effect.fail(new CodecError({ key, direction: "encode", cause: "undefined cannot be stored" }))
              }
              return Effect.flatMap(
                store.compareAndSet(key, seen, write(seen, next)),
                (landed) => landed ? wrote(next) : Effect.zipRight(conflictBackoff(conflicts), attempt(conflicts + 1))
              )
            })
          }
        )
      return attempt(0)
    })

  return { ttl, touch, take, increment, update }
}
