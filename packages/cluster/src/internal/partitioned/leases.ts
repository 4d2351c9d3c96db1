/**
 * Stampede protection across the cluster: `singleFlight` takes a lease for the key on its owner,
 * so one node in the cluster fetches and the others wait for its value. A lease ends when its
 * winner releases it, when the key is written or deleted (the fetch no longer decides its value),
 * or after the fetch's timeout (a winner that dies never releases).
 */
import type { Backend, CacheError, NodeUnavailable } from "@vela/core"
import { FetchTimeout } from "@vela/core"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type * as Option from "effect/Option"
import { live } from "../live.js"
import type { LeaseOutcome, RemoteFailure } from "../protocol.js"
import type { Partition } from "./partition.js"
import type { Space } from "./space.js"
import { nextVersion } from "./space.js"

/** Takes the lease of `key` on this node: `won`, or once the running one ends `done` (`timeout` after `timeout` ms). */
export const leaseHere = (
  { runFork }: Partition,
  space: Space,
  key: string,
  timeout: number
): Effect.Effect<LeaseOutcome> =>
  Effect.suspend(() => {
    const running = space.leases.get(key)
    if (running !== undefined) {
      return Deferred.await(running).pipe(
        Effect.as("done" as const),
        Effect.timeoutTo({ duration: timeout, onTimeout: () => "timeout" as const, onSuccess: (a) => a }),
        Effect.withClock(live)
      )
    }
    const lease = Deferred.unsafeMake<void>(FiberId.none)
    space.leases.set(key, lease)
    // A winner that dies never releases: the lease lapses after the timeout.
    runFork(Effect.delay(releaseHere(space, key, lease), timeout))
    return Effect.succeed("won" as const)
  })

/** Ends the lease of `key` (only `lease`, when given) and wakes its waiters; a put or delete of the key too. */
export const dropLease = (space: Space, key: string, lease?: Deferred.Deferred<void>) => {
  const running = space.leases.get(key)
  if (running === undefined || (lease !== undefined && running !== lease)) return
  space.leases.delete(key)
  Deferred.unsafeDone(running, Exit.void)
}

export const releaseHere = (space: Space, key: string, lease?: Deferred.Deferred<void>) =>
  Effect.sync(() => dropLease(space, key, lease))

/** The store's `singleFlight`: a lease on the key's owner, reading the key through `get`, writing through `setAt`. */
export const singleFlight = (
  p: Partition,
  space: Space,
  get: (key: string) => Effect.Effect<Option.Option<Backend.Entry>, CacheError>,
  setAt: (key: string, entry: Backend.Entry, version: number) => Effect.Effect<void, CacheError>
): Backend.SingleFlight =>
<A, E, R>(
  key: string,
  fetch: (write: (entry: Backend.Entry) => Effect.Effect<boolean, CacheError>) => Effect.Effect<A, E, R>,
  timeoutMillis: number
) => {
  const ns = space.name
  const owner = p.ring.ownerOf(key)
  const acquire: Effect.Effect<LeaseOutcome, NodeUnavailable | RemoteFailure> = owner === p.self
    ? leaseHere(p, space, key, timeoutMillis)
    : p.node.call(owner, (client) => client.Lease({ ns, key, timeout: timeoutMillis }))
  const release = owner === p.self
    ? releaseHere(space, key)
    : Effect.ignore(p.node.call(owner, (client) => client.Release({ ns, key })))
  const deadline = live.unsafeCurrentTimeMillis() + timeoutMillis
  const valueOr = (otherwise: Effect.Effect<A, E | CacheError | FetchTimeout, R>) =>
    Effect.flatMap(get(key), (entry) => entry._tag === "Some" ? Effect.succeed(entry.value.value as A) : otherwise)
  const loop: Effect.Effect<A, E | CacheError | FetchTimeout, R> = Effect.flatMap(
    // An owner that cannot be reached cannot coordinate: fetch here rather than fail.
    Effect.orElseSucceed(acquire, () => "won" as const),
    (outcome): Effect.Effect<A, E | CacheError | FetchTimeout, R> => {
      if (outcome === "won") {
        // The fetched value carries the version of when the lease was won: a put or delete of
        // the key since then is newer, and every holder keeps it over the fetched value.
        const version = nextVersion()
        const lead = fetch((entry) => Effect.as(setAt(key, entry, version), true))
        // A lease won late may follow another node's whole fetch: read before fetching again.
        return Effect.ensuring(valueOr(lead), release)
      }
      if (outcome === "timeout" || live.unsafeCurrentTimeMillis() >= deadline) {
        return Effect.fail(new FetchTimeout({ key, timeout: timeoutMillis }))
      }
      // The winner finished: its value is in the cache, unless its fetch failed.
      return valueOr(loop)
    }
  )
  return loop
}
