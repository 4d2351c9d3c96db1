/**
 * Stampede protection: however many callers miss a key at once, its fetch runs once. Three layers
 * coalesce, each where the one below cannot see:
 *
 * Layers. (1) The Promise facade shares the Promise of a running `getOrFetch` among its callers of
 * the same key (`promise.ts`): a caller joins without entering the Effect runtime at all, and the
 * shared call covers the store read before the fetch too, which a remote store (Redis, a cluster)
 * would otherwise answer once per caller. (2) `Coalescer` (below) shares one fetch among the
 * `getOrFetch` calls of this cache that found the key missing or stale, whichever API they came
 * through: it owns the fetch's fiber, its hold on the key, and every waiter's deadline. Where the
 * store must be asked (remote, or a near cache's miss), the read before it is shared too
 * (`Flights.reads`): callers that come while it runs take what it finds instead of reading. (3) The
 * store's `singleFlight` shares one fetch among processes (a Redis lease, a cluster key's owner); it
 * is entered by the one fetch (2) lets run, so a process sends one lease request per key, not one
 * per caller. In-process stores have the default single flight, which runs the fetch and writes.
 * Each layer answers its joiners with its leader's own outcome, so a failure reaches every caller
 * unchanged. Invariant: per key, at most one fetch per process runs under stampede protection, and
 * at most one per cluster where the store has a single flight.
 *
 * Concurrency: the first caller registers a flight under the key and starts the fetch in a fiber of
 * the cache's scope, so the fetch belongs to no caller: a caller interrupted while it waits leaves it
 * running for everybody else. That fiber starts inside the caller's step rather than queued behind
 * the fibers already scheduled, so in a burst of callers the fetch's I/O is under way while the
 * rest still join. Every caller, the first included, then waits on the flight with
 * `Effect.async`, which costs no fiber. Invariant: a key is in the map exactly while its fetch runs;
 * it leaves when the fetch ends, however it ends (success, failure, interruption at close).
 *
 * Failure: every waiter gets the fetch's own exit, so a failed fetch fails all of them with the
 * same error. A fetch holds its key for `holdMillis` at most: then it is interrupted, every caller
 * still waiting gets its timeout answer, and the next caller starts a fresh fetch, so a hung fetch
 * never blocks its key. `release` lets go of a key earlier (a `put` or `delete` of it); fetches run
 * without protection (`stampedeProtection: false`) hold `Leases` the same way. A fetch reads
 * `Lease.held` before it stores its value, so one let go of never writes.
 *
 * Waiting is bounded (`FetchTimeout`, or a fallback value such as a stale entry). Waiters with the
 * same timeout shorter than the hold have deadlines in the order they joined, so one timer fiber per
 * distinct timeout (in practice `softTimeout`) sleeps until the oldest deadline and answers waiters
 * from the front; the hold's own timer answers the rest. A fetch costs two fibers plus one per
 * shorter timeout; a waiter costs none.
 *
 * Follows the `singleflight` of Go's groupcache, with per-waiter deadlines as in Caffeine's
 * `AsyncCache` `orTimeout`, and bentocache's distributed locks for layer (3).
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"

/** A fetch's hold on its key. */
export interface Lease {
  /** `false` once the fetch was let go of (released, or past the hold): it must not store its value. */
  readonly held: boolean
}

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
    fetch: (lease: Lease) => Effect.Effect<A, E, R>,
    onJoin: () => void,
    wait: Wait<A, E2>
  ) => Effect.Effect<A, E | E2, R>
  /** Whether a fetch of `key` is running. */
  readonly running: (key: string) => boolean
  /** Lets go of `key`: its running fetch no longer stores its value, and the next caller fetches afresh. */
  readonly release: (key: string) => void
  /** `release` of every key. */
  readonly releaseAll: () => void
}

/** A coalescer whose fetches hold their key `holdMillis` at most. */
export const makeCoalescer = (scope: Scope.Scope, clock: Clock.Clock, holdMillis: number): Coalescer => {
  const flights = new Map<string, Flight>()
  const release = (key: string, flight = flights.get(key)) => {
    if (flight === undefined) return
    flight.held = false
    if (flights.get(key) === flight) flights.delete(key)
  }
  return {
    run: <A, E, R, E2>(
      key: string,
      fetch: (lease: Lease) => Effect.Effect<A, E, R>,
      onJoin: () => void,
      wait: Wait<A, E2>
    ) =>
      Effect.suspend((): Effect.Effect<A, E | E2, R> => {
        const current = flights.get(key)
        if (current !== undefined) {
          onJoin()
          return current.wait(wait) as Effect.Effect<A, E | E2>
        }
        const flight = new Flight(clock, scope, holdMillis)
        flights.set(key, flight)
        const settle = (exit: Exit.Exit<A, E>) =>
          Effect.sync(() => {
            release(key, flight)
            flight.settle(exit)
          })
        const fetching = Effect.onExit(fetch(flight), settle)
        // The fetch starts now, inside this step, not queued behind the callers already scheduled: in a
        // burst of callers its I/O is under way while they still join.
        return Effect.flatMap(Effect.runtime<R>(), (runtime) => {
          const fiber = Runtime.runFork(runtime, fetching, { scope })
          return Effect.zipRight(
            flight.hold(fiber, () => release(key, flight)),
            flight.wait(wait) as Effect.Effect<A, E | E2>
          )
        })
      }),
    running: (key) => flights.has(key),
    release: (key) => {
      if (flights.size > 0) release(key)
    },
    releaseAll: () => {
      for (const [key, flight] of flights) release(key, flight)
    }
  }
}

/** A read in flight: the callers waiting for it, each resumed with what it found. */
export interface PendingRead {
  readonly waiters: Array<(found: Effect.Effect<unknown, unknown>) => void>
}

/**
 * What a cache holds of its keys' fetches: the coalescer, the leases of fetches run without
 * protection, and the refreshes that failed (until when their stale value is served without
 * another try). A write or removal of a key wins over its fetches in flight: `drop` lets go of all
 * of it, so they no longer store their value and the next `getOrFetch` reads and fetches afresh.
 */
export interface Flights {
  readonly coalescer: Coalescer
  /**
   * The reads of a store that must be asked (remote, or a near cache's miss) running for
   * `getOrFetch`, each with the callers of its key that came while it ran and wait for what it finds.
   */
  readonly reads: Map<string, PendingRead>
  /** Runs a fetch of `key` without the coalescer, holding a lease a write of the key takes away. */
  readonly unshared: <A, E, R>(key: string, fetch: (lease: Lease) => Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Keys whose refresh failed, and until when their stale value is served without another try. */
  readonly backoff: Map<string, number>
  readonly drop: (key: string) => void
  /** `drop` of every key, for changes that do not name their keys (`flush`, `invalidateTag`). */
  readonly dropAll: () => void
}

export const makeFlights = (scope: Scope.Scope, clock: Clock.Clock, holdMillis: number): Flights => {
  const coalescer = makeCoalescer(scope, clock, holdMillis)
  const reads = new Map<string, PendingRead>()
  const leases = new Map<string, Set<{ held: boolean }>>()
  const backoff = new Map<string, number>()
  return {
    coalescer,
    reads,
    unshared: (key, fetch) =>
      Effect.suspend(() => {
        const lease = { held: true }
        let held = leases.get(key)
        if (held === undefined) leases.set(key, held = new Set())
        held.add(lease)
        const done = Effect.sync(() => {
          held.delete(lease)
          if (held.size === 0 && leases.get(key) === held) leases.delete(key)
        })
        return Effect.ensuring(fetch(lease), done)
      }),
    backoff,
    // Most writes find no fetch, read, backoff or lease of their key: a size check spares each lookup.
    drop: (key) => {
      coalescer.release(key)
      if (reads.size > 0) reads.delete(key)
      if (backoff.size > 0) backoff.delete(key)
      const held = leases.size === 0 ? undefined : leases.get(key)
      if (held === undefined) return
      for (const lease of held) lease.held = false
      leases.delete(key)
    },
    dropAll: () => {
      coalescer.releaseAll()
      reads.clear()
      backoff.clear()
      for (const held of leases.values()) for (const lease of held) lease.held = false
      leases.clear()
    }
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
class Flight implements Lease {
  held = true
  #exit: Exit.Exit<unknown, unknown> | undefined
  #expired = false
  /** Waiters by timeout; those whose timeout is not shorter than the hold under `Infinity`, without a timer. */
  readonly #queues = new Map<number, Queue>()
  readonly #timers: Array<Fiber.RuntimeFiber<unknown>> = []

  constructor(readonly clock: Clock.Clock, readonly scope: Scope.Scope, readonly holdMillis: number) {}

  wait<A, E>(wait: Wait<A, E>): Effect.Effect<unknown, unknown> {
    return Effect.suspend(() => {
      // A caller that does not wait (softTimeout 0) takes its fallback even from a fetch that has ended,
      // as it would had the fetch not started at once.
      if (wait.timeoutMillis <= 0 || this.#expired) return wait.onTimeout()
      if (this.#exit !== undefined) return this.#exit
      const timeout = wait.timeoutMillis < this.holdMillis ? wait.timeoutMillis : Infinity
      const existing = this.#queues.get(timeout)
      const queue = existing ?? { waiters: [], first: 0 }
      const waiting = Effect.async<unknown, unknown>((resume) => {
        if (this.#exit !== undefined) return resume(this.#exit)
        const deadline = this.clock.unsafeCurrentTimeMillis() + wait.timeoutMillis
        const waiter: Waiter = { deadline, onTimeout: wait.onTimeout, resume }
        queue.waiters.push(waiter)
        return Effect.sync(() => waiter.resume = undefined)
      })
      if (existing !== undefined) return waiting
      this.#queues.set(timeout, queue)
      if (timeout === Infinity) return waiting
      const timer = Effect.tap(
        Effect.forkIn(this.#timer(queue, timeout), this.scope),
        (fiber) => this.#timers.push(fiber)
      )
      return Effect.zipRight(timer, waiting)
    })
  }

  /**
   * Ends the hold after `holdMillis`: `letGo`, answer every waiter with its timeout answer, and
   * interrupt `fetch`, whose exit then reaches nobody.
   */
  hold(fetch: Fiber.RuntimeFiber<unknown, unknown>, letGo: () => void): Effect.Effect<void> {
    if (this.#exit !== undefined) return Effect.void
    const expire = Effect.sync(() => {
      if (this.#exit !== undefined) return
      this.#expired = true
      letGo()
      this.#answerAll((waiter) => waiter.onTimeout())
      fetch.unsafeInterruptAsFork(FiberId.none)
    })
    return Effect.asVoid(Effect.tap(
      Effect.forkIn(Effect.zipRight(this.clock.sleep(Duration.millis(this.holdMillis)), expire), this.scope),
      (fiber) => this.#timers.push(fiber)
    ))
  }

  settle(exit: Exit.Exit<unknown, unknown>): void {
    this.#exit = exit
    this.#answerAll(() => exit)
  }

  #answerAll(answerOf: (waiter: Waiter) => Effect.Effect<unknown, unknown>): void {
    for (const queue of this.#queues.values()) {
      for (let i = queue.first; i < queue.waiters.length; i++) answer(queue.waiters[i], answerOf(queue.waiters[i]))
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
