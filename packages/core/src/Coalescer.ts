/**
 * Stampede protection: concurrent `getOrFetch` misses of one key share one fetch.
 *
 * Concurrency: the first caller registers a `Deferred` under the key and forks the fetch into the
 * cache's scope, so the fetch belongs to no caller: a caller interrupted while it waits leaves it
 * running for everybody else. Later callers await the same `Deferred`. One fiber per fetch, none
 * per waiter. Invariant: a key is in the map exactly while its fetch runs; the entry is removed
 * when the fetch ends, however it ends (success, failure, interruption at close).
 *
 * Failure: every waiter gets the fetch's own exit, so a failed fetch fails all of them with the
 * same error, and nothing is cached. Waiting is bounded by `timeout` (`FetchTimeout`); the fetch
 * itself goes on and still fills the cache when it succeeds.
 *
 * Follows the `singleflight` of Go's groupcache, with Effect's `Deferred` as the shared result.
 */
import type { Scope } from "effect"
import { Deferred, Effect, Exit, FiberId } from "effect"
import { FetchTimeout } from "./Errors.js"

export interface Coalescer {
  /**
   * Runs `fetch` for `key` unless a fetch of `key` is already running, in which case it calls
   * `onJoin` and waits for that one instead.
   */
  readonly run: <A, E, R>(
    key: string,
    fetch: Effect.Effect<A, E, R>,
    onJoin: () => void
  ) => Effect.Effect<A, E | FetchTimeout, R>
  /** How many fetches are running. */
  readonly inflight: () => number
}

export const make = (scope: Scope.Scope, timeoutMillis: number): Coalescer => {
  const running = new Map<string, Deferred.Deferred<any, any>>()
  const wait = <A, E>(key: string, deferred: Deferred.Deferred<A, E>) =>
    Effect.timeoutFail(Deferred.await(deferred), {
      duration: timeoutMillis,
      onTimeout: () => new FetchTimeout({ key, timeout: timeoutMillis })
    })
  return {
    run: <A, E, R>(key: string, fetch: Effect.Effect<A, E, R>, onJoin: () => void) =>
      Effect.suspend((): Effect.Effect<A, E | FetchTimeout, R> => {
        const current = running.get(key) as Deferred.Deferred<A, E> | undefined
        if (current !== undefined) {
          onJoin()
          return wait(key, current)
        }
        const deferred = Deferred.unsafeMake<A, E>(FiberId.none)
        running.set(key, deferred)
        const settle = (exit: Exit.Exit<A, E>) =>
          Effect.sync(() => {
            running.delete(key)
            Deferred.unsafeDone(deferred, exit)
          })
        return Effect.zipRight(
          Effect.forkIn(Effect.onExit(fetch, settle), scope),
          wait(key, deferred)
        )
      }),
    inflight: () => running.size
  }
}
