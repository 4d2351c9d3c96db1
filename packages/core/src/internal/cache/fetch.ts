/**
 * The fetches of `getOrFetch`: on a miss the fetch, coalesced as `stampede.ts` describes, and on a
 * stale value within its grace a refresh in the background (stale-while-revalidate). A fetched
 * value is stored only while its fetch still holds the key.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type { Entry } from "../../Backend.js"
import type { CacheError } from "../../Errors.js"
import { ConfigError, FetchTimeout } from "../../Errors.js"
import * as Check from "../config.js"
import { Graced } from "../grace.js"
import { noStart } from "../observe.js"
import type { FetchPlan } from "./config.js"
import type { Core } from "./core.js"
import type { Lease } from "./stampede.js"
import type { Writes } from "./write.js"

/** A fetch of a key: what `getOrFetch` is given. */
export type Fetch<V, E, R> = (key: string) => Effect.Effect<V, E, R>

/** What an option given as a function of the fetched value says; a throw is a `ConfigError` naming the option. */
const adaptive = <V>(field: string, of: (value: V) => unknown, value: V): Either.Either<unknown, ConfigError> => {
  try {
    return Either.right(of(value))
  } catch (cause) {
    return Either.left(
      new ConfigError({ field, reason: `the function of the fetched value threw: ${describe(cause)}` })
    )
  }
}

const describe = (cause: unknown) => cause instanceof Error ? cause.message : String(cause)

/** Stores a fetched entry, or leaves it out when the fetch no longer holds its key. */
type Save = (entry: Entry) => Effect.Effect<void, CacheError>

export interface Fetches<V> {
  /** The fetch of a key known to be missing; `unread`: the caller did not read, which counts as a miss. */
  readonly onMiss: <E, R>(
    key: string,
    fetch: Fetch<V, E, R>,
    plan: FetchPlan<V>,
    unread?: boolean
  ) => Effect.Effect<V, E | FetchTimeout | CacheError, R>
  /** A stale value within its grace: the refreshed value, or the stale one. */
  readonly onStale: <E, R>(
    key: string,
    stale: V,
    fetch: Fetch<V, E, R>,
    plan: FetchPlan<V>,
    unread?: boolean
  ) => Effect.Effect<V, never, R>
  /** Counts and reports a caller that waits on another caller's fetch; `unread`: its read as a miss too. */
  readonly joined: (key: string, unread: boolean) => void
  readonly refreshingValue: (key: string) => { readonly value: V } | undefined
}

export const make = <V>(core: Core, writes: Writes<V>): Fetches<V> => {
  const { clock, config, counters, store } = core
  const { backoff, coalescer } = core.flights
  const { emit, start } = core.observer

  /** The entry of a fetched value; with grace, kept `grace` past its TTL with its freshness inside. */
  const fetchedEntry = (value: V, ttl: number, tags: ReadonlyArray<string>, grace: number): Entry => {
    const now = clock.unsafeCurrentTimeMillis()
    if (ttl === Infinity) return { value, expiresAt: null, tags, version: 0 }
    if (grace === 0) return { value, expiresAt: now + ttl, tags, version: 0 }
    // A grace that reaches past the longest TTL keeps the stale value with no expiry.
    const kept = ttl + grace > Check.maxTtlMillis ? null : now + ttl + grace
    return { value: new Graced(value, now + ttl), expiresAt: kept, tags, version: 0 }
  }

  /**
   * Stores a fetched value through `save` as `cacheIf` decides (a duration it gives wins over
   * `ttl`), with the ttl and tags the options give it; `undefined` is never cached.
   */
  const storeFetched = (value: V, plan: FetchPlan<V>, save: Save): Effect.Effect<void, CacheError> => {
    if (value === undefined) return Effect.void
    const decision = plan.cacheIf === undefined ? true : plan.cacheIf(value)
    if (decision === false) return Effect.void
    const ttl = decision !== true
      ? Check.ttl("cacheIf", decision)
      : plan.ttlOf === undefined
      ? Either.right(plan.ttl)
      : Either.flatMap(adaptive("ttl", plan.ttlOf, value), (ttl) => Check.ttl("ttl", ttl))
    if (Either.isLeft(ttl)) return Effect.fail(ttl.left)
    const tags = plan.tagsOf === undefined
      ? Either.right(plan.tags)
      : Either.flatMap(adaptive("tags", plan.tagsOf, value), Check.tags)
    if (Either.isLeft(tags)) return Effect.fail(tags.left)
    return save(fetchedEntry(value, ttl.right, tags.right, plan.grace))
  }

  /** Writes a fetched entry while `lease` holds the key: a `put` or `delete` since then wins. */
  const saveHeld = (key: string, lease: Lease): Save => (entry) => lease.held ? writes.write(key, entry) : Effect.void

  /** `saveHeld` through a store's single flight, whose `write` also checks the lease beyond this process. */
  const saveLeased = (
    key: string,
    lease: Lease,
    leased: (entry: Entry) => Effect.Effect<boolean, CacheError>
  ): Save =>
  (entry) => {
    if (!lease.held) return Effect.void
    const started = start()
    return Effect.map(leased(entry), (stored) => {
      if (stored) writes.wrote(key, entry, started)
    })
  }

  const fetchAndStore = <E, R>(
    key: string,
    fetch: Fetch<V, E, R>,
    plan: FetchPlan<V>,
    refresh: boolean,
    save: Save
  ): Effect.Effect<V, E | FetchTimeout | CacheError, R> =>
    Effect.suspend(() => {
      const started = start()
      counters.fetches.add(1)
      if (refresh) counters.refreshes.add(1)
      const bounded = plan.hardTimeout === Infinity ? fetch(key) : Effect.timeoutFail(fetch(key), {
        duration: plan.hardTimeout,
        onTimeout: () => new FetchTimeout({ key, timeout: plan.hardTimeout })
      })
      return bounded.pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            if (Exit.isFailure(exit)) counters.fetchErrors.add(1)
            emit?.("fetch", started, { key, result: Exit.isSuccess(exit) ? "ok" : "error" })
          })
        ),
        Effect.tap((value) => storeFetched(value, plan, save))
      )
    })

  const joined = (key: string, unread: boolean) => {
    if (unread) {
      counters.misses.add(1)
      emit?.("get", noStart, { key, result: "miss" })
    }
    counters.coalesced.add(1)
    emit?.("fetch", start(), { key, result: "coalesced" })
  }

  /** The fetch of a key known to be missing: coalesced in this process, and beyond by the store's single flight. */
  const onMiss = <E, R>(
    key: string,
    fetch: Fetch<V, E, R>,
    plan: FetchPlan<V>,
    unread = false
  ): Effect.Effect<V, E | FetchTimeout | CacheError, R> => {
    if (!config.stampedeProtection) {
      return core.flights.unshared(key, (lease) => fetchAndStore(key, fetch, plan, false, saveHeld(key, lease)))
    }
    const timeout = config.stampedeTimeout
    return coalescer.run(
      key,
      (lease) =>
        // A waiter gets what the winner stored, which carries its freshness when fetched with grace.
        Effect.map(
          store.singleFlight(
            key,
            (leased) => fetchAndStore(key, fetch, plan, false, saveLeased(key, lease, leased)),
            timeout
          ),
          (value) => value instanceof Graced ? value.value as V : value
        ),
      () => joined(key, unread),
      {
        timeoutMillis: timeout,
        onTimeout: () => Effect.fail(new FetchTimeout({ key, timeout }))
      }
    )
  }

  /** The stale value of each key being refreshed, for callers that join the refresh. */
  const refreshing = new Map<string, { readonly value: V }>()

  /**
   * A stale value within its grace: refresh it (once, however many callers), wait up to
   * `softTimeout` for the fresh value, and otherwise, or when the refresh fails, serve the stale one.
   */
  const onStale = <E, R>(
    key: string,
    stale: V,
    fetch: Fetch<V, E, R>,
    plan: FetchPlan<V>,
    unread = false
  ): Effect.Effect<V, never, R> => {
    const serveStale = () =>
      Effect.sync(() => {
        counters.staleHits.add(1)
        emit?.("fetch", noStart, { key, result: "stale" })
        return stale
      })
    const now = clock.unsafeCurrentTimeMillis()
    if ((backoff.get(key) ?? 0) > now) return serveStale()
    backoff.delete(key)
    const mine = { value: stale }
    const refresh = (lease: Lease) =>
      fetchAndStore(key, fetch, plan, true, saveHeld(key, lease)).pipe(
        Effect.tapError(() =>
          Effect.sync(() => {
            counters.refreshErrors.add(1)
            // A refresh let go of (its key written, removed or flushed) leaves no backoff behind.
            if (lease.held) backoff.set(key, clock.unsafeCurrentTimeMillis() + config.refreshBackoff)
          })
        ),
        Effect.ensuring(Effect.sync(() => {
          if (refreshing.get(key) === mine) refreshing.delete(key)
        }))
      )
    if (!coalescer.running(key)) refreshing.set(key, mine)
    return coalescer.run(key, refresh, () => joined(key, unread), {
      timeoutMillis: plan.softTimeout,
      onTimeout: serveStale
    }).pipe(Effect.catchAll(serveStale))
  }

  /** The stale value of `key` while a refresh of it runs, for callers that join the refresh. */
  const refreshingValue = (key: string) => refreshing.get(key)

  return { onMiss, onStale, joined, refreshingValue }
}
