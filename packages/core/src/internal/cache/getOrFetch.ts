/**
 * `getOrFetch`: the read of `read.ts`, then on a miss or a stale value the fetches of `fetch.ts`.
 * A fetch of the key already running here is joined before any read of a remote store, and so is a
 * read of it already running here: a burst of callers of a key a remote store must answer sends that
 * store one read.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type { CacheError, FetchTimeout } from "../../Errors.js"
import { ConfigError } from "../../Errors.js"
import { noStart } from "../observe.js"
import type { FetchOptions, FetchPlan } from "./config.js"
import type { Core } from "./core.js"
import type { Fetch, Fetches } from "./fetch.js"
import type { Lookup, Reads } from "./read.js"
import { Miss, missing, Unknown } from "./read.js"
import type { PendingRead } from "./stampede.js"

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

/** What waiters of a read get when its reader was interrupted: read again. */
const Retry: unique symbol = Symbol("@vela/core/Retry")
const retry = Effect.succeed(Retry)

export const make = <V>(core: Core, reads: Reads<V>, fetches: Fetches<V>): GetOrFetch<V> => {
  const { check, config, counters } = core
  const { coalescer, reads: pendingReads } = core.flights
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

  /** A caller that took another's read counts as that read found: a hit, or a miss (then it fetches or joins). */
  const countJoined = (key: string, found: Lookup<V>) => {
    const hit = found._tag === "Fresh"
    if (hit) counters.hits.add(1)
    else counters.misses.add(1)
    emit?.("get", noStart, { key, result: hit ? "hit" : "miss" })
  }

  /**
   * The first caller reads in its own fiber (a hit costs no more than an unshared read); callers that
   * come while it does wait for what it finds and go on from there each (a fresh value, or the fetch
   * the first one started). Should the first be interrupted, they try again.
   */
  const sharedRead = <E, R>(
    key: string,
    fetch: Fetch<V, E, R>,
    plan: FetchPlan<V>
  ): Effect.Effect<V, E | FetchTimeout | CacheError, R> => {
    const pending = pendingReads.get(key)
    if (pending !== undefined) {
      return Effect.flatMap(
        Effect.async<Lookup<V> | typeof Retry, CacheError>((resume) => {
          pending.waiters.push(resume as PendingRead["waiters"][number])
        }),
        (found) => {
          if (found === Retry) return sharedRead(key, fetch, plan)
          countJoined(key, found)
          return answer(key, found, fetch, plan)
        }
      )
    }
    const mine: PendingRead = { waiters: [] }
    pendingReads.set(key, mine)
    return lookup(key).pipe(
      Effect.onExit((exit) =>
        Effect.sync(() => {
          if (pendingReads.get(key) === mine) pendingReads.delete(key)
          const found = Exit.isInterrupted(exit) ? retry : exit
          for (const resume of mine.waiters) resume(found)
        })
      ),
      Effect.flatMap((current) => answer(key, current, fetch, plan))
    )
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
