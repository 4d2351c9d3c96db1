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
 * same error. Waiting is bounded (`FetchTimeout`, or a fallback value such as a stale entry); the
 * fetch itself goes on and still fills the cache when it succeeds. Waiters with the same timeout
 * have deadlines in the order they joined, so one timer fiber per distinct timeout (in practice one
 * or two: `stampedeTimeout`, `softTimeout`) sleeps until the oldest deadline and answers waiters
 * from the front. A fetch costs one fiber plus one per timeout; a waiter costs none.
 *
 * Follows the `singleflight` of Go's groupcache, with per-waiter deadlines as in Caffeine's
 * `AsyncCache` `orTimeout`.
 */
import type { Clock, Fiber, Scope } from "effect"
import { Duration, Effect, type Exit, FiberId } from "effect"

/** How long a caller waits, and what it gets when it stops waiting. */
export interface Wait<A, E> {
  readonly timeoutMillis: number
  readonly onTimeout: () => Effect.Effect<A, E>
}

export interface Coalescer {
  /**
   * Runs `fetch` for `key` unless a fetch of `key` is already running, in which case it calls
   * `onJoin` and waits for that one instead; either way the caller waits as `wait` says.
   */
  readonly run: <A, E, R, E2>(
    key: string,
    fetch: Effect.Effect<A, E, R>,
    onJoin: () => void,
    wait: Wait<A, E2>
  ) => Effect.Effect<A, E | E2, R>
  /** Whether a fetch of `key` is running. */
  readonly running: (key: string) => boolean
}

export const make = (scope: Scope.Scope, clock: Clock.Clock): Coalescer => {
  const flights = new Map<string, Flight>()
  return {
    run: <A, E, R, E2>(key: string, fetch: Effect.Effect<A, E, R>, onJoin: () => void, wait: Wait<A, E2>) =>
      Effect.suspend((): Effect.Effect<A, E | E2, R> => {
        const current = flights.get(key)
        if (current !== undefined) {
          onJoin()
          return current.wait(wait) as Effect.Effect<A, E | E2>
        }
        const flight = new Flight(clock, scope)
        flights.set(key, flight)
        const settle = (exit: Exit.Exit<A, E>) =>
          Effect.sync(() => {
            flights.delete(key)
            flight.settle(exit)
          })
        return Effect.zipRight(
          Effect.forkIn(Effect.onExit(fetch, settle), scope),
          flight.wait(wait) as Effect.Effect<A, E | E2>
        )
      }),
    running: (key) => flights.has(key)
  }
}

// internal

interface Waiter {
  readonly deadline: number
  readonly onTimeout: () => Effect.Effect<unknown, unknown>
  resume: ((effect: Effect.Effect<unknown, unknown>) => void) | undefined
}

/** Waiters that share one timeout, so their deadlines are in the order they joined. */
interface Queue {
  readonly waiters: Array<Waiter>
  /** Waiters before this index were answered. */
  first: number
}

/** One running fetch and the callers waiting for it. */
class Flight {
  #exit: Exit.Exit<unknown, unknown> | undefined
  readonly #queues = new Map<number, Queue>()
  readonly #timers: Array<Fiber.RuntimeFiber<void>> = []

  constructor(readonly clock: Clock.Clock, readonly scope: Scope.Scope) {}

  wait<A, E>(wait: Wait<A, E>): Effect.Effect<unknown, unknown> {
    return Effect.suspend(() => {
      if (this.#exit !== undefined) return this.#exit
      if (wait.timeoutMillis <= 0) return wait.onTimeout()
      const existing = this.#queues.get(wait.timeoutMillis)
      const queue = existing ?? { waiters: [], first: 0 }
      const waiting = Effect.async<unknown, unknown>((resume) => {
        if (this.#exit !== undefined) return resume(this.#exit)
        const deadline = this.clock.unsafeCurrentTimeMillis() + wait.timeoutMillis
        const waiter: Waiter = { deadline, onTimeout: wait.onTimeout, resume }
        queue.waiters.push(waiter)
        return Effect.sync(() => waiter.resume = undefined)
      })
      if (existing !== undefined) return waiting
      this.#queues.set(wait.timeoutMillis, queue)
      const timer = Effect.tap(
        Effect.forkIn(this.#timer(queue, wait.timeoutMillis), this.scope),
        (fiber) => this.#timers.push(fiber)
      )
      return Effect.zipRight(timer, waiting)
    })
  }

  settle(exit: Exit.Exit<unknown, unknown>): void {
    this.#exit = exit
    for (const queue of this.#queues.values()) {
      for (let i = queue.first; i < queue.waiters.length; i++) answer(queue.waiters[i], exit)
    }
    this.#queues.clear()
    for (const timer of this.#timers) timer.unsafeInterruptAsFork(FiberId.none)
  }

  /** Sleeps until the oldest waiter's deadline and answers every waiter due, until the fetch ends. */
  #timer(queue: Queue, timeoutMillis: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.#exit !== undefined) return Effect.void
      const now = this.clock.unsafeCurrentTimeMillis()
      while (queue.first < queue.waiters.length && queue.waiters[queue.first].deadline <= now) {
        const waiter = queue.waiters[queue.first++]
        answer(waiter, waiter.onTimeout())
      }
      const next = queue.waiters[queue.first]?.deadline ?? now + timeoutMillis
      return Effect.zipRight(this.clock.sleep(Duration.millis(next - now)), this.#timer(queue, timeoutMillis))
    })
  }
}

const answer = (waiter: Waiter, effect: Effect.Effect<unknown, unknown>): void => {
  const resume = waiter.resume
  waiter.resume = undefined
  resume?.(effect)
}
