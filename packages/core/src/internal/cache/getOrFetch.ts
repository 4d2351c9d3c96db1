/**
 * `getOrFetch`: the read of `read.ts`, then on a miss or a stale value the fetches of `fetch.ts`.
 * A fetch of the key already running here is joined before any read of a remote store.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { CacheError, FetchTimeout } from "../../Errors.js"
import { ConfigError } from "../../Errors.js"
import type { FetchOptions } from "./config.js"
import type { Core } from "./core.js"
import type { Fetch, Fetches } from "./fetch.js"
import type { Reads } from "./read.js"
import { Miss, missing, Unknown } from "./read.js"

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
  const { check, config } = core
  const { coalescer } = core.flights
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
      return reads.lookup(key).pipe(
        // Data that no longer decodes is counted (by the read) and fetched again, never a crash.
        Effect.catchTag("CodecError", (error) =>
          Effect.as(
            Effect.annotateLogs(Effect.logDebug(`${error.message}; fetching it again`), {
              cache: core.name,
              key,
              operation: "getOrFetch"
            }),
            missing
          )),
        Effect.flatMap((current): Effect.Effect<V, E | FetchTimeout | CacheError, R> => {
          switch (current._tag) {
            case "Fresh":
              return Effect.succeed(current.value)
            case "Stale":
              return fetches.onStale(key, current.value, fetch, plan.right)
            case "Missing":
              return fetches.onMiss(key, fetch, plan.right)
          }
        })
      )
    })
}
