/**
 * Single flight across processes: on a `getOrFetch` miss one process takes a short lease on the key
 * (`SET NX PX`) and fetches; the others wait for its value, woken by the bus when the winner writes
 * or releases, and otherwise looking again every `pollMillis`.
 *
 * Concurrency: the winner's write stores only while the lease is still its own (a `put` or `delete`
 * of the key drops the lease), so a fetch never writes over a newer value. Whoever holds the lease,
 * even won at once, reads before fetching: another process may have fetched, stored and released
 * the key since this one missed it.
 *
 * Failure: a waiter gives up with `FetchTimeout` at the deadline; the lease expires by itself after
 * `timeoutMillis` if its holder dies.
 */
import type { Backend, BackendError, CacheError, CodecError } from "@vela/core"
import { FetchTimeout } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { randomBytes } from "node:crypto"
import type { Namespace } from "./namespace.js"
import { attempt, waitingOn } from "./namespace.js"
import type { Reads } from "./reads.js"
import * as Scripts from "./scripts.js"
import type { Writes } from "./writes.js"

/** How often a waiter of a single flight looks again when no bus message woke it. */
const pollMillis = 100

export interface Leases {
  readonly singleFlight: Backend.SingleFlight
  /** Wakes the waiters of `key` (a bus message says it changed or its lease was released). */
  readonly wake: (key: string) => void
  readonly wakeAll: () => void
}

export const make = (ns: Namespace, reads: Reads, writes: Writes): Leases => {
  const waiters = new Map<string, Set<() => void>>()

  /** Resumes after `millis`, or sooner when `key` is woken. */
  const waitFor = (key: string, millis: number) =>
    Effect.async<void>((resume) => {
      let set = waiters.get(key)
      if (set === undefined) {
        set = new Set()
        waiters.set(key, set)
      }
      let resumed = false
      const done = () => {
        if (resumed) return
        resumed = true
        resume(Effect.void)
      }
      set.add(done)
      const timer = setTimeout(done, millis)
      return Effect.sync(() => {
        clearTimeout(timer)
        set.delete(done)
        if (set.size === 0) waiters.delete(key)
      })
    })

  /** The write a fetch holding the lease `token` is given. */
  const writeLeased = (key: string, token: string) => (entry: Backend.Entry) =>
    Effect.async<boolean, BackendError | CodecError>(
      (resume) =>
        writes.setCallback(
          key,
          entry,
          (failure, stored) => resume(failure === undefined ? Effect.succeed(stored === true) : Effect.fail(failure)),
          token
        ),
      waitingOn()
    )

  /** The entry, with data that no longer decodes read as a miss (the fetch replaces it). */
  const current = (key: string) => Effect.catchTag(reads.get(key), "CodecError", () => Effect.succeed(Option.none()))

  const singleFlight = <A, E, R>(
    key: string,
    fetch: (write: (entry: Backend.Entry) => Effect.Effect<boolean, CacheError>) => Effect.Effect<A, E, R>,
    timeoutMillis: number
  ): Effect.Effect<A, E | CacheError | FetchTimeout, R> =>
    Effect.suspend(() => {
      const bucket = ns.keys.bucketOf(key)
      const lease = ns.keys.lease(key, bucket)
      const token = randomBytes(8).toString("hex")
      const deadline = Date.now() + timeoutMillis
      const released = ns.channel === "" ? "" : JSON.stringify({ p: ns.id, b: bucket, r: key })
      const release = Effect.ignore(
        attempt(
          ns,
          "singleFlight",
          () => Scripts.run(ns.client, Scripts.release, [lease], [token, ns.channel, released])
        )
      )
      const lead = Effect.ensuring(fetch(writeLeased(key, token)), release)
      const acquire = attempt(ns, "singleFlight", () => ns.client.set(lease, token, "PX", timeoutMillis, "NX"))
      const wait: Effect.Effect<A, E | CacheError | FetchTimeout, R> = Effect.flatMap(current(key), (entry) => {
        if (Option.isSome(entry)) return Effect.succeed(entry.value.value as A)
        const left = deadline - Date.now()
        if (left <= 0) return Effect.fail(new FetchTimeout({ key, timeout: timeoutMillis }))
        return Effect.zipRight(waitFor(key, Math.min(left, pollMillis)), retry)
      })
      const retry: Effect.Effect<A, E | CacheError | FetchTimeout, R> = Effect.flatMap(
        acquire,
        (won) =>
          won === "OK"
            ? Effect.flatMap(
              current(key),
              (entry) => Option.isSome(entry) ? Effect.as(release, entry.value.value as A) : lead
            )
            : wait
      )
      return retry
    })

  return {
    singleFlight,
    wake: (key) => {
      const set = waiters.get(key)
      if (set !== undefined) { for (const resume of set) resume() }
    },
    wakeAll: () => {
      for (const set of waiters.values()) for (const resume of set) resume()
    }
  }
}
