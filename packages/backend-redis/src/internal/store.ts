/**
 * One cache's namespace on Redis (a single server or a cluster): the `Store` a `Backend.open` gives,
 * put together from its parts: `reads`, `writes`, `tags`, `atomic` (compare-and-set, take, touch,
 * increment), `scans` (clear, size), `leases` (single flight) and `invalidations` (the bus).
 *
 * Expiry: Redis removes an entry by itself (`PX`, relative, so every process sees the same expiry
 * and a test clock at epoch 0 is no problem); every read also checks the stored `expiresAt` against
 * the cache's clock, so an entry is never returned after `expiresAt` even if Redis still holds it.
 *
 * Failure: every command is bounded by the client's `commandTimeout`, and commands fail at once
 * while the connection is down (no offline queue), so an outage is a prompt `BackendError`.
 */
import type { BackendError } from "@vela/core"
import { Backend, ConfigError } from "@vela/core"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Atomic from "./atomic.js"
import type { Connection } from "./connection.js"
import * as Invalidations from "./invalidations.js"
import * as Leases from "./leases.js"
import * as Namespace from "./namespace.js"
import * as Reads from "./reads.js"
import * as Scans from "./scans.js"
import * as Tags from "./tags.js"
import * as Writes from "./writes.js"

export const open = (
  connection: Connection,
  options: Backend.OpenOptions
): Effect.Effect<Backend.Store, BackendError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    if (options.maxSize !== Infinity) {
      return yield* new ConfigError({
        field: "maxSize",
        reason: "Redis bounds memory itself: set maxmemory and maxmemory-policy on the server, not maxSize"
      })
    }
    const ns = Namespace.make(connection, options)
    const reads = Reads.make(ns)
    const writes = Writes.make(ns)
    const leases = Leases.make(ns, reads, writes)
    const invalidations = yield* Invalidations.listen(ns, leases)
    return Backend.makeStore({
      get: reads.get,
      getCallback: reads.getCallback,
      getMany: reads.getMany,
      has: reads.has,
      set: writes.set,
      setCallback: writes.setCallback,
      setMany: writes.setMany,
      delete: writes.delete,
      deleteMany: writes.deleteMany,
      invalidateTag: (tag) => Tags.invalidateTag(ns, tag),
      ...Atomic.make(ns),
      sweep: Tags.sweep(ns),
      clear: Scans.clear(ns),
      size: Scans.size(ns),
      invalidations,
      singleFlight: connection.singleFlight ? leases.singleFlight : undefined
    })
  })
