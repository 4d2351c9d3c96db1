/**
 * The partitioned topology: each key lives on its owner by the `HashRing` of live members, plus
 * `replicas` copies on the next distinct members. Reads go to the owner, then to a replica;
 * writes are acknowledged once the owner and every replica applied them.
 *
 * Wire: values cross the wire as text encoded with the cache's codec, and holders keep that text
 * in their `Backend` (opened with a text codec), so a node can hold a namespace no cache of its own
 * has opened. The requester decodes what it reads. Every request carries the requester's time;
 * holders decide expiry by it (see `RequestClock`), so all holders agree with the writer.
 *
 * Counting: `size` asks every member for the live keys it owns by the requester's ring (see
 * `SizeRequest`: members that cannot be reached are skipped, keys moving to a new member are listed
 * and counted as a union), and `invalidateTag` for the live keys it removed, counted once across
 * replicas. With up to `replicas` members unreachable these fan-outs answer from the others.
 *
 * Order: every write and delete carries a stamp (a version strictly increasing per process, then
 * the writer's node id), and each holder applies a key's writes in stamp order whatever order they
 * arrive in (an older write is dropped; a delete leaves a tombstone for `handoffGrace`). Tag
 * invalidations and flushes are stamped as well and remove only what was written before them; for
 * `handoffGrace` they keep out such writes arriving late.
 * Invariant: once writes stop, all holders of a key hold the same value, or none.
 *
 * Concurrency: operations to one peer in one event-loop turn share one `Batch` RPC. Stampede
 * protection is cluster-wide: `singleFlight` takes a lease for the key on its owner, so one node
 * in the cluster fetches and the others wait for its value.
 *
 * Failure: a holder that cannot be reached is skipped by reads and fails writes with
 * `NodeUnavailable` until failure detection drops it from the ring; then its first replica is the
 * owner (the ring keeps the order of the remaining holders), so with `replicas: n` losing n nodes
 * loses no acknowledged write.
 *
 * Membership changes: when the ring changes, every node sends the keys it holds to their new
 * holders (a copy with its write's stamp, so it never replaces a newer write) and drops the keys it
 * no longer holds; a node stopping gracefully hands all its keys over first. For `handoffGrace` after a change, a read that
 * misses on the owner also asks the other members, so reads stay correct while entries move.
 * Invariant: in a settled ring, every live key is held by exactly its `1 + replicas` holders.
 *
 * Atomic operations (`take`, `touch`, `increment`, `readForUpdate`/`compareAndSet`, and `update`
 * built on the last two): the key's owner applies each, in order with the key's other writes, and
 * sends the write or delete it made to the replicas with a fresh stamp, as a put or delete is sent;
 * the operation returns once they all applied it. The token of `readForUpdate` is the owner's stamp
 * of the key's write. `increment` is added up on the owner when the cache's codec keeps numbers
 * as their JSON text (`Codec.numbersAsJson`: the default does); with any other codec, only the
 * cache can read the value, so it is a compare-and-set loop from the requester, the increments of one key on a node combined into one
 * write per round. An owner refuses (nothing applied, `NodeUnavailable`) what reaches it from a
 * requester that sees other members, or before it met its seeds' cluster; for `handoffGrace` after
 * a change it first takes a newer copy of the key from the other members, if one has it. A write
 * that a replica did not acknowledge fails with `NodeUnavailable` although the owner applied it, as
 * a put's does.
 *
 * Near caches: a holder remembers which nodes read a key for a near cache and tells them when the
 * key changes; tag invalidations and flushes reach every node; a node that loses every peer emits
 * `Disconnected`, so a near cache over it stops serving what it cannot verify.
 */
import { Backend, ConfigError, Topology } from "@vela/core"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as ClusterNode from "./ClusterNode.js"
import * as Batcher from "./internal/batcher.js"
import { live } from "./internal/live.js"
import * as Check from "./internal/options.js"
import * as Apply from "./internal/partitioned/apply.js"
import * as Atomic from "./internal/partitioned/atomic.js"
import * as Handoff from "./internal/partitioned/handoff.js"
import * as Near from "./internal/partitioned/near.js"
import type { Partition } from "./internal/partitioned/partition.js"
import { Ring } from "./internal/partitioned/ring.js"
import * as Serve from "./internal/partitioned/serve.js"
import { makeSpaces } from "./internal/partitioned/space.js"
import * as Store from "./internal/partitioned/store.js"

/**
 * How a Partitioned topology places and moves keys.
 *
 * @since 0.1.0
 * @category models
 */
export interface PartitionedOptions {
  /** Copies of each key beyond its owner (default 1). */
  readonly replicas?: number | undefined
  /** Points per member on the hash ring (default 128). */
  readonly virtualNodes?: number | undefined
  /** How long after a membership change a read that misses on the owner asks the other members. Default 10 s. */
  readonly handoffGrace?: Duration.DurationInput | undefined
}

/**
 * The Partitioned topology as a layer, on the `ClusterNode` and `Backend` it is given.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: PartitionedOptions = {}
): Layer.Layer<Topology.Topology, ConfigError, Backend.Backend | ClusterNode.ClusterNode> =>
  Layer.scoped(Topology.Topology, make(options))

/**
 * The topology on the `ClusterNode` and `Backend` in context, serving peers while the scope is open.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: PartitionedOptions = {}
): Effect.Effect<Topology.Topology["Type"], ConfigError, Backend.Backend | ClusterNode.ClusterNode | Scope.Scope> =>
  Effect.gen(function*() {
    const replicas = yield* Check.count("replicas", options.replicas ?? 1)
    const virtualNodes = yield* Check.count("virtualNodes", options.virtualNodes ?? 128)
    if (virtualNodes < 1) return yield* new ConfigError({ field: "virtualNodes", reason: "expected at least 1" })
    const grace = yield* Check.millis("handoffGrace", options.handoffGrace ?? "10 seconds")
    const backend = yield* Backend.Backend
    const node = yield* ClusterNode.ClusterNode
    const runtime = yield* Effect.withClock(Effect.runtime<never>(), live)
    const copies = 1 + replicas
    const p: Partition = {
      self: node.id,
      node,
      batcher: Batcher.make(node),
      leaf: Batcher.make(node),
      ring: new Ring(node.id, node.currentMembers, copies, virtualNodes, grace),
      spaces: makeSpaces(backend, yield* Effect.scope, grace),
      replicas,
      copies,
      grace,
      runFork: Runtime.runFork(runtime)
    }
    const near = Near.make(p)
    const apply = Apply.make(p, near)
    const atomic = Atomic.make(p, apply)
    const here = Serve.makeHere(p, apply)
    yield* Serve.serve(p, apply, atomic, here, near)
    yield* Handoff.start(p)
    return Topology.Topology.of({
      name: `partitioned (replicas ${replicas})`,
      open: (open) =>
        Effect.gen(function*() {
          const space = yield* p.spaces.open(open.namespace, open)
          return Store.make(
            p,
            apply,
            atomic,
            here,
            near,
            space,
            open,
            yield* node.shareStats(open.namespace, open.stats)
          )
        })
    })
  })
