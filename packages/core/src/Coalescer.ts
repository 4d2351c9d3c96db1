/**
 * Stampede protection: concurrent `getOrFetch` misses of one key share one fetch.
 *
 * Concurrency: the first caller registers a flight under the key and forks the fetch into the
 * cache's scope, so the fetch belongs to no caller: a caller interrupted while it waits leaves it
 * running for everybody else. Every caller, the first included, then waits on the flight with
 * `Effect.async`, which costs no fiber. Invariant: a key is in the map exactly while its fetch runs;
 * it leaves when the fetch ends, however it ends (success, failure, interruption at close).
 *
 * Failure: every waiter gets the fetch's own exit, so a failed fetch fails all of them with the
 * same error, and nothing is cached. Waiting is bounded by `timeout` (`FetchTimeout`); the fetch
 * itself goes on and still fills the cache when it succeeds. All waiters of a flight share the same
 * timeout, so their deadlines come in the order they joined: one timer fiber per flight sleeps until
 * the oldest deadline and releases waiters from the front. Two fibers per fetch, none per waiter.
 *
 * Follows the `singleflight` of Go's groupcache, with per-waiter deadlines as in Caffeine's
 * `AsyncCache` `orTimeout`.
 */
import type { Clock, Scope } from "effect"
import { Duration, Effect, type Exit, FiberId } from "effect"
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

export const make = (scope: Scope.Scope, clock: Clock.Clock, timeoutMillis: number): Coalescer => {
  const flights = new Map<string, Flight>()
  return {
    run: <A, E, R>(key: string, fetch: Effect.Effect<A, E, R>, onJoin: () => void) =>
      Effect.suspend((): Effect.Effect<A, E | FetchTimeout, R> => {
        const current = flights.get(key)
        if (current !== undefined) {
          onJoin()
          return current.wait() as Effect.Effect<A, E | FetchTimeout>
        }
        const flight = new Flight(key, clock, timeoutMillis)
        flights.set(key, flight)
        return Effect.forkIn(flight.timer, scope).pipe(
          Effect.flatMap((timer) =>
            Effect.forkIn(
              Effect.onExit(fetch, (exit) =>
                Effect.sync(() => {
                  flights.delete(key)
                  flight.settle(exit)
                  timer.unsafeInterruptAsFork(FiberId.none)
                })),
              scope
            )
          ),
          Effect.zipRight(flight.wait() as Effect.Effect<A, E | FetchTimeout>)
        )
      }),
    inflight: () => flights.size
  }
}

// internal

interface Waiter {
  readonly deadline: number
  resume: ((effect: Effect.Effect<unknown, unknown>) => void) | undefined
}

/** One running fetch and the callers waiting for it, oldest first. */
class Flight {
  #exit: Exit.Exit<unknown, unknown> | undefined
  readonly #waiters: Array<Waiter> = []
  /** Waiters before this index were answered. */
  #first = 0

  constructor(readonly key: string, readonly clock: Clock.Clock, readonly timeoutMillis: number) {}

  wait(): Effect.Effect<unknown, unknown> {
    return Effect.async((resume) => {
      if (this.#exit !== undefined) return resume(this.#exit)
      const waiter: Waiter = { deadline: this.clock.unsafeCurrentTimeMillis() + this.timeoutMillis, resume }
      this.#waiters.push(waiter)
      return Effect.sync(() => waiter.resume = undefined)
    })
  }

  settle(exit: Exit.Exit<unknown, unknown>): void {
    this.#exit = exit
    for (let i = this.#first; i < this.#waiters.length; i++) this.#answer(this.#waiters[i], exit)
    this.#waiters.length = 0
  }

  /** Sleeps until the oldest waiter's deadline, times out every waiter due, until the fetch ends. */
  get timer(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.#exit !== undefined) return Effect.void
      const now = this.clock.unsafeCurrentTimeMillis()
      while (this.#first < this.#waiters.length && this.#waiters[this.#first].deadline <= now) {
        this.#answer(
          this.#waiters[this.#first++],
          Effect.fail(new FetchTimeout({ key: this.key, timeout: this.timeoutMillis }))
        )
      }
      const next = this.#waiters[this.#first]?.deadline ?? now + this.timeoutMillis
      return Effect.zipRight(this.clock.sleep(Duration.millis(next - now)), this.timer)
    })
  }

  #answer(waiter: Waiter, effect: Effect.Effect<unknown, unknown>): void {
    const resume = waiter.resume
    waiter.resume = undefined
    resume?.(effect)
  }
}
