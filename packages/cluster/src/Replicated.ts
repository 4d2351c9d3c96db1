/**
 * The replicated topology: every node holds every entry. Reads are local (the backend store's
 * synchronous path, as fast as `Local`); writes apply locally, then go to every live peer.
 *
 * Concurrency: every write carries a stamp from a hybrid logical clock (wall time, counter, node
 * id), and every node applies the merge rule of `internal/replica.ts`: a key shows its newest
 * write; deletes, tag invalidations and flushes are versioned tombstones and floors, so a late,
 * older put never resurrects what they removed. Writes to one peer in one event-loop turn share one
 * `Batch` RPC.
 * Invariant: nodes that received the same writes show the same entries, whatever the order.
 *
 * Join: a node with seeds waits (at most `joinTimeout`) for a peer, then copies its state before the
 * layer is built, so it serves no read before it has the cluster's data. The copy compares per-bucket
 * digests and pulls the buckets that differ, a few hundred entries per RPC; writes that arrive
 * meanwhile are applied as they come (the versions order them with the copy).
 *
 * Failure: a write is acknowledged once every live peer answered; a peer that failed or timed out
 * is left to catch up. Anti-entropy does that: every `antiEntropyInterval` a node compares digests
 * with one random peer and pulls what differs (and with every peer when it was alone before), so
 * a node back from a crash or a partition converges. A node left alone emits `Disconnected` to its
 * near caches, and `Connected` when a peer returns.
 *
 * Expiry is by the absolute `expiresAt` every node keeps, so nodes whose clocks agree expire an
 * entry at the same moment.
 *
 * Atomic operations: no node orders a key's writes (each node takes writes, the newest stamp
 * wins), so a read-modify-write could silently lose a concurrent write made elsewhere: `take`,
 * `increment`, `update` and `readForUpdate`/`compareAndSet` fail with the typed `Unsupported`
 * (store "Replicated"). `touch` is exact: it puts the value of the write it saw again, with the new
 * expiry, at a stamp right after that write's (the same version, its origin extended by a separator
 * no node id holds, then this node's clock and id), which sorts before every other later write of
 * the key. So a touch never replaces a write it did not see (that write wins wherever they meet),
 * a later delete, tag invalidation or flush removes it, and concurrent touches of one write all
 * carry its value (the last by stamp sets the expiry).
 */
import { Backend, ConfigError, Topology } from "@vela/core"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as ClusterNode from "./ClusterNode.js"
import * as Batcher from "./internal/batcher.js"
import { live } from "./internal/live.js"
import * as Check from "./internal/options.js"
import { Hlc } from "./internal/replica.js"
import * as Pull from "./internal/replicated/pull.js"
import type { Replication } from "./internal/replicated/replication.js"
import * as Serve from "./internal/replicated/serve.js"
import { makeSpaces } from "./internal/replicated/space.js"
import * as Store from "./internal/replicated/store.js"

/**
 * How a Replicated topology copies state between nodes.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReplicatedOptions {
  /** How often a node compares its state with a random peer and pulls what differs. Default 5 s. */
  readonly antiEntropyInterval?: Duration.DurationInput | undefined
  /** How long a node with seeds waits for a peer to copy from before it starts alone. Default 5 s. */
  readonly joinTimeout?: Duration.DurationInput | undefined
  /** How long tombstones (deletes, tag invalidations, expiries) are kept. Default 10 minutes. */
  readonly tombstoneTtl?: Duration.DurationInput | undefined
  /** Entries per RPC when a node copies state from a peer. Default 500. */
  readonly chunkSize?: number | undefined
}

/**
 * Every node holds every entry:
 *
 * ```ts
 * Vela.layer(Sessions, {}).pipe(
 *   Layer.provide(Replicated.layer()),
 *   Layer.provide(ClusterNode.layer({ host, port, seeds, secret })),
 *   Layer.provide(Memory.layer())
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: ReplicatedOptions = {}
): Layer.Layer<Topology.Topology, ConfigError, Backend.Backend | ClusterNode.ClusterNode> =>
  Layer.scoped(Topology.Topology, make(options))

/**
 * The topology on the `ClusterNode` and `Backend` in context, serving peers while the scope is open.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: ReplicatedOptions = {}
): Effect.Effect<Topology.Topology["Type"], ConfigError, Backend.Backend | ClusterNode.ClusterNode | Scope.Scope> =>
  Effect.gen(function*() {
    const antiEntropy = yield* Check.millis("antiEntropyInterval", options.antiEntropyInterval ?? "5 seconds")
    const joinTimeout = yield* Check.millis("joinTimeout", options.joinTimeout ?? "5 seconds")
    const tombstoneTtl = yield* Check.millis("tombstoneTtl", options.tombstoneTtl ?? "10 minutes")
    const chunkSize = yield* Check.count("chunkSize", options.chunkSize ?? 500)
    if (chunkSize < 1) return yield* new ConfigError({ field: "chunkSize", reason: "expected at least 1" })
    const node = yield* ClusterNode.ClusterNode
    const r: Replication = {
      self: node.id,
      node,
      batcher: Batcher.make(node),
      spaces: makeSpaces(yield* Backend.Backend, yield* Effect.scope),
      hlc: new Hlc(() => live.unsafeCurrentTimeMillis()),
      tombstoneTtl,
      chunkSize
    }
    yield* Serve.serve(r)
    if (node.seeded) yield* Pull.join(r, joinTimeout)
    yield* Pull.start(r, antiEntropy)
    return Topology.Topology.of({
      name: "replicated",
      open: (open) =>
        Effect.gen(function*() {
          const space = yield* r.spaces.open(open.namespace, open)
          return Store.make(r, space, open, yield* node.shareStats(open.namespace, open.stats))
        })
    })
  })
