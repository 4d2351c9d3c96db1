/**
 * `getOrFetch`: the read of `read.ts`, then on a miss or a stale value the fetches of `fetch.ts`.
 * A fetch of the key already running here is joined before any read of a remote store, and so is a
 * read of it already running here (with the fetch that follows it): a burst of callers of a key a
 * remote store must answer sends that store one read.
 */
import { Effect, Either } from "effect"
import type { CacheError } from "../../Errors.js"
import { ConfigError, FetchTimeout } from "../../Errors.js"
import { noStart } from "../observe.js"
import type { FetchOptions, FetchPlan } from "./config.js"
import type { Core } from "./core.js"
import type { Fetch, Fetches } from "./fetch.js"
import type { Lookup, Reads } from "./read.js"
import { Miss, missing, Unknown } from "./read.js"
import type { Lease } from "./stampede.js"

/**
 * The cached value, or the fetched one. `known`: the answer of `reads.now` the caller already got
 * (and that was counted), so that this call does not read again.
 */
export type GetOrFetch<V> = <E = never, R = never>(
  key: string,
  fetch: Fetch<V, E, R>,
  options?: FetchOptions<V>,
  known?: typeof Miss | typeof Unknown
) => Effect.Effect<V, E | FetchTimeout | CacheError, R>

export const make = <V>(core: Core, reads: Reads<V>, fetches: Fetches<V>): GetOrFetch<V> => {
  const { check, config, counters } = core
  const { coalescer, lookups } = core.flights
  const { emit } = core.observer
  // An authoritative in-process store answers a read at once: there is no read worth sharing.
  const shareReads = config.stampedeProtection && core.store.sync?.authoritative !== true

  const lookup = (key: string): Effect.Effect<Lookup<V>, CacheError> =>
    reads.lookup(key).pipe(
      // Data that no longer decodes is counted (by the read) and fetched again, never a crash.
      Effect.catchTag("CodecError", (error) =>
        Effect.as(
          Effect.annotateLogs(Effect.logDebug(`${error.message}; fetching it again`), {
            cache: core.name,
            key,
            operation: "getOrFetch"
          }),
          missing
        ))
    )

  const answer = <E, R>(
    key: string,
    current: Lookup<V>,
    fetch: Fetch<V, E, R>,
    plan: FetchPlan<V>
  ): Effect.Effect<V, E | FetchTimeout | CacheError, R> => {
    switch (current._tag) {
      case "Fresh":
        return Effect.succeed(current.value)
      case "Stale":
        return fetches.onStale(key, current.value, fetch, plan)
      case "Missing":
        return fetches.onMiss(key, fetch, plan)
    }
  }

  /**
   * The callers that joined each shared read: counted when the read answers, as the read each skipped
   * would have been (a hit, or a miss that joined the fetch), since a hit must not count as a miss.
   */
  const joiners = new WeakMap<Lease, { count: number; hit: boolean | undefined }>()

  const countJoined = (key: string, hit: boolean, count: number) => {
    for (let i = 0; i < count; i++) {
      if (!hit) fetches.joined(key, true)
      else {
        counters.hits.add(1)
        emit?.("get", noStart, { key, result: "hit" })
      }
    }
  }

  /** The first caller reads (and fetches) for every caller that comes while it does. */
  const sharedRead = <E, R>(
    key: string,
    fetch: Fetch<V, E, R>,
    plan: FetchPlan<V>
  ): Effect.Effect<V, E | FetchTimeout | CacheError, R> => {
    const read = (lease: Lease) => {
      const joined = { count: 0, hit: undefined as boolean | undefined }
      joiners.set(lease, joined)
      return Effect.flatMap(lookup(key), (current) => {
        joined.hit = current._tag === "Fresh"
        countJoined(key, joined.hit, joined.count)
        return answer(key, current, fetch, plan)
      })
    }
    const onJoin = (lease: Lease) => {
      const joined = joiners.get(lease)!
      if (joined.hit === undefined) joined.count++
      else countJoined(key, joined.hit, 1)
    }
    // Each caller waits for the read's own answer, which the fetch's or refresh's hold bounds: a
    // stale value the refresh falls back to must reach the joiners too, not a timeout of their own
    // (so `onTimeout` never runs: a wait without a deadline on a flight without a hold).
    return lookups.run(key, read, onJoin, {
      timeoutMillis: Infinity,
      onTimeout: () => Effect.fail(new FetchTimeout({ key, timeout: config.stampedeTimeout }))
    })
  }

  return <E, R>(
    key: string,
    fetch: Fetch<V, E, R>,
    options?: FetchOptions<V>,
    known?: typeof Miss | typeof Unknown
  ) =>
    Effect.suspend((): Effect.Effect<V, E | FetchTimeout | CacheError, R> => {
      let found: V | typeof Miss | typeof Unknown
      if (known === undefined) {
        const invalid = check(key)
        if (invalid !== undefined) return Effect.fail(invalid)
        if (typeof fetch !== "function") {
          return Effect.fail(new ConfigError({ field: "fetch", reason: "expected a function of the key" }))
        }
        found = reads.now(key)
        if (found !== Unknown && found !== Miss) return Effect.succeed(found)
      } else found = known
      const plan = core.options.plan(options)
      if (Either.isLeft(plan)) return Effect.fail(plan.left)
      if (found === Miss) return fetches.onMiss(key, fetch, plan.right)
      // A fetch of this key is already running here: join it rather than ask a remote store first
      // (the read it skips counts as a miss, as it would have been one).
      if (config.stampedeProtection && coalescer.running(key)) {
        const stale = fetches.refreshingValue(key)
        return stale === undefined
          ? fetches.onMiss(key, fetch, plan.right, true)
          : fetches.onStale(key, stale.value, fetch, plan.right, true)
      }
      if (shareReads) return sharedRead(key, fetch, plan.right)
      return Effect.flatMap(lookup(key), (current) => answer(key, current, fetch, plan.right))
    })
}
