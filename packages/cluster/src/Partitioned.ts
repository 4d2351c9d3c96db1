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
 * Counting: `size` asks every member for the live keys it owns by the requester's ring, and
 * `invalidateTag` for the live keys it removed, which are counted once across replicas.
 *
 * Order: every write and delete carries a stamp (a version strictly increasing per process, then
 * the writer's node id), and each holder applies a key's writes in stamp order whatever order they
 * arrive in (an older write is dropped; a delete leaves a tombstone for `handoffGrace`).
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
 * Near caches: a holder remembers which nodes read a key for a near cache and tells them when the
 * key changes; tag invalidations and flushes reach every node; a node that loses every peer emits
 * `Disconnected`, so a near cache over it stops serving what it cannot verify.
 */
import type { CacheError, Codec, Stats } from "@vela/core"
import { Backend, BackendError, CodecError, ConfigError, FetchTimeout, NodeUnavailable, Topology } from "@vela/core"
import type { Duration } from "effect"
import {
  Cause,
  Deferred,
  Effect,
  Either,
  Exit,
  FiberId,
  Layer,
  Option,
  PubSub,
  Runtime,
  Schedule,
  Scope,
  Stream
} from "effect"
import * as ClusterNode from "./ClusterNode.js"
import * as HashRing from "./HashRing.js"
import * as Batcher from "./internal/batcher.js"
import { KeyIndex } from "./internal/keyIndex.js"
import { live } from "./internal/live.js"
import * as Check from "./internal/options.js"
import type { Change, LeaseOutcome, Op, OpResult, WireEntry } from "./internal/protocol.js"
import { RemoteFailure } from "./internal/protocol.js"
import type { Stamp } from "./internal/replica.js"
import { compare } from "./internal/replica.js"
import { RequestClock } from "./internal/requestClock.js"
import * as Spaces from "./internal/spaces.js"
import { decodeHeld, describe, encodeForWire, fromWire, heldOf, toWire } from "./internal/wire.js"

export interface PartitionedOptions {
  /** Copies of each key beyond its owner (default 1). */
  readonly replicas?: number | undefined
  /** Points per member on the hash ring (default 128). */
  readonly virtualNodes?: number | undefined
  /** How long after a membership change a read that misses on the owner asks the other members. Default 10 s. */
  readonly handoffGrace?: Duration.DurationInput | undefined
}

export const layer = (
  options: PartitionedOptions = {}
): Layer.Layer<Topology.Topology, ConfigError, Backend.Backend | ClusterNode.ClusterNode> =>
  Layer.scoped(Topology.Topology, make(options))

/** The topology on the `ClusterNode` and `Backend` in context, serving peers while the scope is open. */
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
    const scope = yield* Effect.scope
    const runtime = yield* Effect.withClock(Effect.runtime<never>(), live)
    const runFork = Runtime.runFork(runtime)
    const batcher = Batcher.make(node)
    const self = node.id
    const copies = 1 + replicas

    // Ring

    // The ring follows the node's membership synchronously, so every operation routes by the
    // members the node sees at that moment; `settled` is the ring the rebalancer last handled.
    let source = node.currentMembers()
    let ring = HashRing.make(source, { virtualNodes })
    let settled = ring
    let changedAt = 0
    const currentRing = () => {
      const members = node.currentMembers()
      if (members !== source) {
        source = members
        const next = HashRing.withMembers(ring, members)
        if (next !== ring) {
          ring = next
          changedAt = live.unsafeCurrentTimeMillis()
        }
      }
      return ring
    }
    const ownerOf = (key: string): string => HashRing.owner(currentRing(), key) ?? self
    const rings = new Map<string, HashRing.HashRing>()
    const ringOf = (members: ReadonlyArray<string>) => {
      const key = members.join("\n")
      let found = rings.get(key)
      if (found === undefined) {
        if (rings.size > 16) rings.clear()
        rings.set(key, found = HashRing.make(members, { virtualNodes }))
      }
      return found
    }

    // Namespaces held on this node

    interface Space {
      readonly name: string
      readonly store: Backend.Store
      readonly clock: RequestClock
      readonly index: KeyIndex
      readonly leases: Map<string, Deferred.Deferred<void>>
      /** Nodes that read a key into a near cache. */
      readonly readers: Map<string, Set<string>>
      /** Keys deleted or expired within `handoffGrace`: the stamp a later write must beat, and until when. */
      readonly tombstones: Map<string, Stamp & { readonly until: number }>
      /** Writes of keys go through it on the `Effect` way, so no other write comes between a check and its write. */
      readonly writes: Effect.Semaphore
      /** Writes on the `Effect` way in progress; while there are any, every write takes that way. */
      writing: number
      readonly changes: PubSub.PubSub<Backend.Invalidation>
      /** A near cache on this node reads this namespace's invalidations. */
      watched: boolean
    }
    const spaces = Spaces.make({
      backend,
      scope,
      clock: (open) => new RequestClock(open?.clock.unsafeCurrentTimeMillis() ?? live.unsafeCurrentTimeMillis(), live),
      build: (name, store, clock) =>
        Effect.map(PubSub.unbounded<Backend.Invalidation>(), (changes): Space => ({
          name,
          store,
          clock,
          index: new KeyIndex(),
          leases: new Map(),
          readers: new Map(),
          tombstones: new Map(),
          writes: Effect.unsafeMakeSemaphore(1),
          writing: 0,
          changes,
          watched: false
        }))
    })

    const failure = (operation: string, cause: unknown) =>
      new RemoteFailure({ message: `${operation} failed on ${self}: ${describe(cause)}`, cause })

    // Holders apply the writes and deletes of a key in the order of their stamps (version, then the
    // node that made it), whatever order they arrive in: every holder ends with the same one.

    /** The stamp `key` shows here: its stored write, or a recent delete. */
    const stampHere = (space: Space, key: string): Stamp | undefined => {
      const indexed = space.index.get(key)
      if (indexed !== undefined) return indexed
      const tombstone = space.tombstones.get(key)
      if (tombstone === undefined) return undefined
      if (tombstone.until > live.unsafeCurrentTimeMillis()) return tombstone
      space.tombstones.delete(key)
      return undefined
    }

    /** Whether a write of `key` at `stamp` comes after what the key shows here. */
    const isNewer = (space: Space, key: string, stamp: Stamp): boolean => {
      const here = stampHere(space, key)
      return here === undefined || compare(stamp, here) > 0
    }

    const bury = (space: Space, key: string, stamp: Stamp) => {
      space.tombstones.set(key, {
        version: stamp.version,
        origin: stamp.origin,
        until: live.unsafeCurrentTimeMillis() + grace
      })
    }

    /** A `Set` now in the store: index it and tell who must know. */
    const stored = (space: Space, from: string, op: SetOp) => {
      const { entry } = op
      space.index.set(op.key, {
        expiresAt: entry.expiresAt,
        tags: entry.tags,
        version: entry.version,
        origin: op.origin
      })
      space.tombstones.delete(op.key)
      changed(space, from, op.key)
      if (op.watch && from !== self) addReader(space, op.key, from)
      // A fetch holding the key's lease no longer decides its value; its waiters read this one.
      dropLease(space, op.key)
    }

    /** A write that a newer one had already replaced: its writer's near cache must not keep its value. */
    const lost = (space: Space, from: string, key: string) => {
      if (from !== self) tell(from, space.name, key)
      else if (space.watched) runFork(PubSub.publish(space.changes, { _tag: "Keys", keys: [key] }))
    }

    /**
     * `apply` without the runtime, for the reads and writes of an authoritative in-memory store
     * (what holders use): one batch of such operations is served in a plain loop. `undefined`:
     * this operation takes the `Effect` way.
     */
    const applySync = (space: Space, from: string, now: number, op: Op): OpResult | undefined => {
      const sync = space.store.sync
      if (sync === undefined || !sync.authoritative) return undefined
      try {
        switch (op._tag) {
          case "Get": {
            space.clock.now = now
            const entry = sync.get(op.key)
            if (entry === undefined) return missing
            if (op.watch && from !== self) addReader(space, op.key, from)
            return { _tag: "Found", entry: toWire(entry) }
          }
          case "Set": {
            if (sync.set === undefined || space.writing > 0) return undefined
            space.clock.now = now
            if (isNewer(space, op.key, stampOf(op))) {
              sync.set(op.key, fromWire(op.entry))
              stored(space, from, op)
            } else if (op.watch) {
              lost(space, from, op.key)
            }
            return done
          }
          default:
            return undefined
        }
      } catch (error) {
        return { _tag: "Failed", message: describe(error) }
      }
    }

    /** `write` with no other write of the space between the check it makes and its write. */
    const serialized = <A>(space: Space, write: () => Effect.Effect<A>): Effect.Effect<A> =>
      space.writes.withPermits(1)(Effect.suspend(() => {
        space.writing++
        return Effect.ensuring(
          write(),
          Effect.sync(() => {
            space.writing--
          })
        )
      }))

    /** Applies one key operation to this node's store, at the requester's time. */
    const apply = (space: Space, from: string, now: number, op: Op): Effect.Effect<OpResult> => {
      const fast = applySync(space, from, now, op)
      if (fast !== undefined) return Effect.succeed(fast)
      const { clock, store } = space
      clock.now = now
      const settle = <A>(self: Effect.Effect<A, CacheError>, f: (a: A) => OpResult) =>
        Effect.catchAll(
          Effect.map(self, f),
          (error) => Effect.succeed<OpResult>({ _tag: "Failed", message: describe(error) })
        )
      switch (op._tag) {
        case "Get":
          return settle(store.get(op.key), (entry) => {
            if (Option.isNone(entry)) return missing
            if (op.watch && from !== self) addReader(space, op.key, from)
            return { _tag: "Found", entry: toWire(entry.value) }
          })
        case "Has":
          return settle(store.has(op.key), (value) => ({ _tag: "Bool", value }))
        case "Set":
          return serialized(space, () => {
            clock.now = now
            if (isNewer(space, op.key, stampOf(op))) {
              return settle(store.set(op.key, fromWire(op.entry)), () => {
                stored(space, from, op)
                return done
              })
            }
            if (op.watch) lost(space, from, op.key)
            return Effect.succeed(done)
          })
        case "Delete":
          return serialized(space, () => {
            clock.now = now
            const stamp: Stamp = { version: op.version, origin: op.origin }
            if (!isNewer(space, op.key, stamp)) return Effect.succeed(no)
            return settle(store.delete(op.key), (removed) => {
              bury(space, op.key, stamp)
              space.index.delete(op.key)
              changed(space, from, op.key)
              dropLease(space, op.key)
              return removed ? done : no
            })
          })
        default:
          return Effect.succeed({ _tag: "Failed", message: `${op._tag} is not a Partitioned operation` })
      }
    }

    /** Drops what the sweep leaves behind: expired keys from the index (kept as tombstones), lapsed tombstones. */
    const prune = (space: Space) => {
      for (const [key, expired] of space.index.prune(space.clock.now)) bury(space, key, expired)
      const now = live.unsafeCurrentTimeMillis()
      for (const [key, tombstone] of space.tombstones) if (tombstone.until <= now) space.tombstones.delete(key)
    }

    // Near caches

    const addReader = (space: Space, key: string, reader: string) => {
      let readers = space.readers.get(key)
      if (readers === undefined) space.readers.set(key, readers = new Set())
      readers.add(reader)
    }

    const pendingInvalidations = new Map<string, Map<string, Set<string>>>()
    /** A key changed on this node: tell its local near caches and the nodes that read it. */
    const changed = (space: Space, from: string, key: string) => {
      if (from !== self && space.watched) runFork(PubSub.publish(space.changes, { _tag: "Keys", keys: [key] }))
      const readers = space.readers.get(key)
      if (readers === undefined) return
      space.readers.delete(key)
      for (const reader of readers) {
        if (reader !== from && reader !== self) tell(reader, space.name, key)
      }
    }
    /** Queues an invalidation of `key` for the near caches of `reader`, sent with the others of this turn. */
    const tell = (reader: string, ns: string, key: string) => {
      let byNs = pendingInvalidations.get(reader)
      if (byNs === undefined) {
        pendingInvalidations.set(reader, byNs = new Map())
        setImmediate(flushInvalidations, reader)
      }
      let keys = byNs.get(ns)
      if (keys === undefined) byNs.set(ns, keys = new Set())
      keys.add(key)
    }
    const flushInvalidations = (reader: string) => {
      const byNs = pendingInvalidations.get(reader)
      pendingInvalidations.delete(reader)
      if (byNs === undefined) return
      for (const [ns, keys] of byNs) {
        runFork(
          Effect.ignore(
            node.call(reader, (client) => client.Invalidate({ ns, change: { _tag: "Keys", keys: Array.from(keys) } }))
          )
        )
      }
    }

    const notify = (ns: string, from: string, change: Change) =>
      Effect.suspend(() => {
        if (from === self) return Effect.void
        return Effect.flatMap(spaces.find(ns), (space) =>
          Option.isSome(space) && space.value.watched ? PubSub.publish(space.value.changes, change) : Effect.void)
      }).pipe(Effect.ignore)

    // What this node serves

    const invalidateTagHere = (space: Space, now: number, tag: string) =>
      Effect.gen(function*() {
        space.clock.now = now
        const live: Array<string> = []
        for (const key of space.index.tagged(tag)) {
          if (yield* space.store.has(key)) live.push(key)
          space.index.delete(key)
        }
        yield* space.store.invalidateTag(tag)
        return live
      })

    const sizeHere = (space: Space, now: number, view: HashRing.HashRing) =>
      Effect.gen(function*() {
        space.clock.now = now
        let count = 0
        for (const key of space.index.live(now)) {
          if (HashRing.owner(view, key) !== self) continue
          if (yield* space.store.has(key)) count++
          else space.index.delete(key)
        }
        return count
      })

    const clearHere = (space: Space) =>
      Effect.tap(space.store.clear, () => {
        space.index.clear()
        space.readers.clear()
      })

    const leaseHere = (space: Space, key: string, timeout: number): Effect.Effect<LeaseOutcome> =>
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
    const dropLease = (space: Space, key: string, lease?: Deferred.Deferred<void>) => {
      const running = space.leases.get(key)
      if (running === undefined || (lease !== undefined && running !== lease)) return
      space.leases.delete(key)
      Deferred.unsafeDone(running, Exit.void)
    }
    const releaseHere = (space: Space, key: string, lease?: Deferred.Deferred<void>) =>
      Effect.sync(() => dropLease(space, key, lease))

    const remote = <A>(operation: string, self: Effect.Effect<A, CacheError | BackendError | ConfigError>) =>
      Effect.mapError(self, (cause) => failure(operation, cause))

    yield* node.serve({
      batch: (from, now, ops) =>
        Effect.suspend(() => {
          // A plain loop over the operations an open in-memory space serves synchronously; the
          // rest (a space still opening, a delete, another backend) one at a time, in order.
          const results = new Array<OpResult>(ops.length)
          let i = 0
          const slow = (op: Op): Effect.Effect<OpResult> => {
            const space = spaces.ready.get(op.ns)
            return space !== undefined
              ? apply(space, from, now, op)
              : Effect.flatMap(Effect.either(spaces.open(op.ns)), (found) =>
                Either.isRight(found)
                  ? apply(found.right, from, now, op)
                  : Effect.succeed<OpResult>({ _tag: "Failed", message: describe(found.left) }))
          }
          const loop = (): Effect.Effect<ReadonlyArray<OpResult>> => {
            while (i < ops.length) {
              const op = ops[i]
              const space = spaces.ready.get(op.ns)
              const fast = space === undefined ? undefined : applySync(space, from, now, op)
              if (fast === undefined) {
                return Effect.flatMap(slow(op), (result) => {
                  results[i++] = result
                  return loop()
                })
              }
              results[i++] = fast
            }
            return Effect.succeed(results)
          }
          return loop()
        }),
      invalidateTag: (from, now, ns, tag) =>
        remote(
          "invalidateTag",
          Effect.flatMap(spaces.open(ns), (space) => invalidateTagHere(space, now, tag))
        ).pipe(Effect.tap(() => notify(ns, from, { _tag: "Tag", tag }))),
      clear: (from, ns) =>
        remote("clear", Effect.flatMap(spaces.open(ns), clearHere)).pipe(
          Effect.tap(() => notify(ns, from, { _tag: "Flush" }))
        ),
      size: (now, ns, members) =>
        remote("size", Effect.flatMap(spaces.open(ns), (space) => sizeHere(space, now, ringOf(members)))),
      lease: (ns, key, timeout) =>
        remote("lease", Effect.flatMap(spaces.open(ns), (space) => leaseHere(space, key, timeout))),
      release: (ns, key) => remote("release", Effect.flatMap(spaces.open(ns), (space) => releaseHere(space, key))),
      invalidate: (from, ns, change) => notify(ns, from, change)
    })

    // Membership changes

    const rebalance = (before: HashRing.HashRing, after: HashRing.HashRing) =>
      Effect.flatMap(
        spaces.opened,
        (all) => Effect.forEach(all, (space) => handoff(space, before, after), { discard: true })
      )

    const handoff = (space: Space, before: HashRing.HashRing, after: HashRing.HashRing) =>
      Effect.forEach(space.index.live(space.clock.now), (key) => {
        const was = HashRing.holders(before, key, copies)
        const now = HashRing.holders(after, key, copies)
        const targets = now.filter((m) => m !== self && !was.includes(m))
        const keep = now.includes(self)
        return targets.length === 0 && keep ? Effect.void : handOver(space, key, targets, keep)
      }, { concurrency: 64, discard: true })

    /** Sends `key` to its new holders `targets`, then drops it here unless `keep`. */
    const handOver = (
      space: Space,
      key: string,
      targets: ReadonlyArray<string>,
      keep: boolean
    ): Effect.Effect<void> =>
      Effect.gen(function*() {
        const entry = yield* Effect.either(space.store.get(key))
        const indexed = space.index.get(key)
        if (Either.isLeft(entry) || Option.isNone(entry.right) || indexed === undefined) {
          space.index.delete(key)
          return
        }
        const op: SetOp = {
          _tag: "Set",
          ns: space.name,
          key,
          entry: { ...toWire(entry.right.value), version: indexed.version },
          origin: indexed.origin,
          watch: false
        }
        const sent = yield* Effect.either(
          batcher.submit(targets, space.clock.now, op, true) as Effect.Effect<ReadonlyArray<OpResult>, NodeUnavailable>
        )
        if (keep || Either.isLeft(sent) || sent.right.some((r) => r._tag === "Failed")) return
        // Dropped only if no newer write arrived meanwhile; a newer one is handed over in its turn.
        const newer = yield* serialized(space, () => {
          if (space.index.get(key) !== indexed) return Effect.succeed(true)
          space.index.delete(key)
          return Effect.as(Effect.ignore(space.store.delete(key)), false)
        })
        if (newer) yield* handOver(space, key, targets, keep)
      })

    yield* node.members.changes.pipe(
      Stream.runForEach((members) =>
        Effect.suspend(() => {
          const next = HashRing.withMembers(settled, members)
          if (next === settled) return Effect.void
          const before = settled
          settled = next
          changedAt = live.unsafeCurrentTimeMillis()
          const alone = members.length === 1
          const wasAlone = before.members.length === 1
          const connection: Backend.Invalidation | undefined = alone && !wasAlone
            ? { _tag: "Disconnected" }
            : !alone && wasAlone
            ? { _tag: "Connected" }
            : undefined
          return Effect.zipRight(
            connection === undefined ?
              Effect.void :
              Effect.flatMap(spaces.opened, (all) =>
                Effect.forEach(all, (space) => PubSub.publish(space.changes, connection), { discard: true })),
            rebalance(before, next)
          )
        })
      ),
      Effect.withClock(live),
      Effect.forkScoped
    )

    // A graceful leave hands every key this node holds to its holders in the ring without it, so
    // even `replicas: 0` loses nothing when a node is stopped. Bounded: a leave never hangs.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const current = currentRing()
        const others = current.members.filter((m) => m !== self)
        if (others.length === 0) return Effect.void
        return rebalance(current, HashRing.withMembers(current, others)).pipe(
          Effect.timeout("5 seconds"),
          Effect.ignore,
          Effect.withClock(live)
        )
      })
    )

    // Spaces opened only for peers have no cache sweeping them.
    yield* Effect.flatMap(spaces.opened, (all) =>
      Effect.forEach(
        all,
        (space) => Effect.ignore(Effect.zipRight(space.store.sweep, Effect.sync(() => prune(space)))),
        { discard: true }
      )).pipe(
        Effect.repeat(Schedule.spaced("30 seconds")),
        Effect.withClock(live),
        Effect.interruptible,
        Effect.forkScoped
      )

    // The stores caches use

    const open = (options: Backend.OpenOptions) =>
      Effect.gen(function*() {
        const space = yield* spaces.open(options.namespace, options)
        return makeStore(space, options, yield* node.shareStats(options.namespace, options.stats))
      })

    const makeStore = (
      space: Space,
      options: Backend.OpenOptions,
      stats: Effect.Effect<Stats.Stats>
    ): Backend.Store => {
      const ns = space.name
      const codec: Codec.Codec = options.codec
      const clock = options.clock
      const nowOf = () => clock.unsafeCurrentTimeMillis()

      const exec = (peer: string, now: number, op: Op): Effect.Effect<OpResult, NodeUnavailable> =>
        peer === self ? apply(space, self, now, op) : batcher.run(peer, now, op)

      const failed = (peer: string, operation: string, result: OpResult & { _tag: "Failed" }) =>
        new BackendError({ backend: `cluster ${peer}`, operation, cause: result.message })

      /** Asks the holders in order until one answers; `NodeUnavailable` when none can. */
      const read = (key: string, op: Op, operation: string): Effect.Effect<OpResult, CacheError> => {
        const now = nowOf()
        const current = currentRing()
        const owner = HashRing.owner(current, key) ?? self
        // The replicas are only ranked when the owner cannot answer.
        let holders: ReadonlyArray<string> | undefined
        const attempt = (i: number, last: unknown): Effect.Effect<OpResult, CacheError> => {
          if (i > 0) holders ??= HashRing.holders(current, key, copies)
          const peer = i === 0 ? owner : holders![i]
          return peer === undefined
            ? Effect.fail(new NodeUnavailable({ node: owner, cause: last }))
            : Effect.matchEffect(exec(peer, now, op), {
              onFailure: (error) => attempt(i + 1, error),
              onSuccess: (result): Effect.Effect<OpResult, CacheError> =>
                result._tag === "Failed"
                  ? Effect.fail(failed(peer, operation, result))
                  : Effect.succeed(result)
            })
        }
        const first = attempt(0, undefined)
        // While entries move after a membership change, a miss may only mean "not here yet": ask
        // every other member before calling it a miss.
        if (live.unsafeCurrentTimeMillis() - changedAt >= grace) return first
        const others = current.members.filter((m) => m !== owner)
        if (others.length === 0) return first
        return Effect.flatMap(first, (result) => {
          if (!(result._tag === "Missing" || (result._tag === "Bool" && !result.value))) return Effect.succeed(result)
          const quiet: Op = op._tag === "Get" ? { ...op, watch: false } : op
          return Effect.firstSuccessOf(
            others.map((peer) =>
              Effect.filterOrFail(
                exec(peer, now, quiet),
                (other) => other._tag === "Found" || (other._tag === "Bool" && other.value)
              )
            )
          ).pipe(Effect.orElseSucceed(() => result))
        })
      }

      /**
       * Applies `op` on every holder; fails unless all of them applied it. The copies for other
       * nodes are enqueued first (one waiter for all of them), then this node's copy is applied
       * while they are on the wire.
       */
      const writeAll = (key: string, op: Op, operation: string): Effect.Effect<ReadonlyArray<OpResult>, CacheError> =>
        Effect.suspend(() => {
          const now = nowOf()
          const holders = HashRing.holders(currentRing(), key, copies)
          const here = holders.includes(self)
          const others = here ? holders.filter((peer) => peer !== self) : holders
          const sent = others.length === 0
            ? undefined
            : (batcher.submit(others, now, op, true) as Effect.Effect<ReadonlyArray<OpResult>, NodeUnavailable>)
          const collect = (local: OpResult | undefined): Effect.Effect<ReadonlyArray<OpResult>, CacheError> => {
            if (local !== undefined && local._tag === "Failed") return Effect.fail(failed(self, operation, local))
            if (sent === undefined) return Effect.succeed(local === undefined ? [] : [local])
            return Effect.flatMap(sent, (results) => {
              for (let i = 0; i < results.length; i++) {
                const result = results[i]
                if (result._tag === "Failed") return Effect.fail(failed(others[i], operation, result))
              }
              return Effect.succeed(local === undefined ? results : [local, ...results])
            })
          }
          return here ? Effect.flatMap(apply(space, self, now, op), collect) : collect(undefined)
        })

      /** Runs `local` here and `call` on every other member; fails if any member cannot answer. */
      const fanOut = <A>(
        local: Effect.Effect<A, CacheError | BackendError | ConfigError>,
        call: (peer: string) => Effect.Effect<A, NodeUnavailable | RemoteFailure>
      ): Effect.Effect<ReadonlyArray<A>, CacheError> =>
        Effect.forEach(currentRing().members, (peer) =>
          peer === self
            ? local
            : Effect.mapError(call(peer), (error) =>
              error._tag === "RemoteFailure"
                ? new BackendError({ backend: `cluster ${peer}`, operation: "fan-out", cause: error.message })
                : error), { concurrency: "unbounded" })

      /** The write of `entry`, or why it cannot be made: its value does not encode, or no frame holds it. */
      const setOp = (key: string, entry: Backend.Entry, version = nextVersion()): SetOp | CodecError | BackendError => {
        const wire = encodeForWire(codec, ns, key, entry, version, node.maxFrameBytes)
        return "value" in wire ? { _tag: "Set", ns, key, entry: wire, origin: self, watch: watching() } : wire
      }

      /** Writes `entry` at `version` on every holder; a holder that has seen a newer write keeps it. */
      const setAt = (key: string, entry: Backend.Entry, version: number): Effect.Effect<void, CacheError> =>
        Effect.suspend(() => {
          const op = setOp(key, entry, version)
          return op._tag === "Set" ? Effect.asVoid(writeAll(key, op, "set")) : Effect.fail(op)
        })

      const decode = (key: string, wire: WireEntry): Effect.Effect<Backend.Entry, CodecError> => {
        const value = codec.decode(key, wire.value)
        return Either.isLeft(value)
          ? Effect.fail(value.left)
          : Effect.succeed({ value: value.right, expiresAt: wire.expiresAt, tags: wire.tags, version: wire.version })
      }

      const watching = () => space.watched
      const invalidations = Stream.fromPubSub(space.changes)

      const localSync = space.store.sync
      const sync: Backend.SyncStore | undefined = localSync === undefined ? undefined : {
        // Keys this node owns are read in place, without entering the runtime; anything else (and
        // any doubt) goes the asynchronous way, so `authoritative` is false.
        authoritative: false,
        get: (key) => {
          space.clock.now = nowOf()
          const held = localSync.get(key)
          if (held === undefined) return undefined
          // Whether this node owns the key, kept with the held value while the ring stays the same:
          // a ring lookup costs about a quarter of a local read.
          const value = heldOf(held)
          const ring = currentRing()
          let owned = value.owned
          if (owned === undefined || owned.ring !== ring) {
            value.owned = owned = { ring, here: HashRing.owner(ring, key) === self }
          }
          if (!owned.here) return undefined
          const entry = decodeHeld(codec, key, held)
          return entry instanceof CodecError ? undefined : entry
        }
      }

      /** `store.get`'s answer through a callback, for the reads `getCallback` leaves to it. */
      const getThroughRuntime = (
        key: string,
        done: (entry: Backend.Entry | undefined, failure?: CacheError) => void
      ) => {
        runFork(store.get(key), { immediate: true }).addObserver((exit) => {
          if (Exit.isSuccess(exit)) return done(Option.getOrUndefined(exit.value))
          const failure = Cause.failureOption(exit.cause)
          done(
            undefined,
            Option.isSome(failure)
              ? failure.value
              : new BackendError({ backend: "cluster", operation: "get", cause: Cause.squash(exit.cause) })
          )
        })
      }

      const store: Backend.Store = {
        sync,
        stats,
        // The common remote read without the runtime: the owner answers. Anything else (the owner
        // cannot be reached, this node owns the key, a miss while entries may be moving) takes `get`.
        getCallback: (key, done) => {
          const owner = ownerOf(key)
          if (owner === self) return getThroughRuntime(key, done)
          batcher.send(owner, nowOf(), { _tag: "Get", ns, key, watch: watching() }, (result) => {
            if (result instanceof NodeUnavailable) return getThroughRuntime(key, done)
            if (result._tag === "Failed") return done(undefined, failed(owner, "get", result))
            if (result._tag !== "Found") {
              return live.unsafeCurrentTimeMillis() - changedAt < grace ? getThroughRuntime(key, done) : done(undefined)
            }
            const value = codec.decode(key, result.entry.value)
            if (Either.isLeft(value)) return done(undefined, value.left)
            const { expiresAt, tags, version } = result.entry
            done({ value: value.right, expiresAt, tags, version })
          })
        },
        get: (key) =>
          Effect.flatMap(
            read(key, { _tag: "Get", ns, key, watch: watching() }, "get"),
            (result) =>
              result._tag === "Found"
                ? Effect.map(decode(key, result.entry), Option.some)
                : Effect.succeed(Option.none())
          ),
        has: (key) =>
          Effect.map(read(key, { _tag: "Has", ns, key }, "has"), (result) => result._tag === "Bool" && result.value),
        set: (key, entry) => setAt(key, entry, nextVersion()),
        delete: (key) =>
          Effect.map(
            writeAll(key, { _tag: "Delete", ns, key, version: nextVersion(), origin: self }, "delete"),
            (results) => results.some((r) => r._tag === "Bool" && r.value)
          ),
        invalidateTag: (tag) =>
          Effect.suspend(() => {
            const now = nowOf()
            return Effect.map(
              fanOut(
                invalidateTagHere(space, now, tag),
                (peer) => node.call(peer, (client) => client.InvalidateTag({ now, ns, tag }))
              ),
              (removed) => new Set(removed.flat()).size
            )
          }),
        clear: Effect.asVoid(
          fanOut(clearHere(space), (peer) => node.call(peer, (client) => client.Clear({ ns })))
        ),
        size: Effect.suspend(() => {
          const now = nowOf()
          const view = currentRing()
          return Effect.map(
            fanOut(
              sizeHere(space, now, view),
              (peer) => node.call(peer, (client) => client.Size({ now, ns, members: view.members }))
            ),
            (counts) => counts.reduce((a, b) => a + b, 0)
          )
        }),
        sweep: Effect.suspend(() => {
          space.clock.now = nowOf()
          return Effect.tap(space.store.sweep, () => prune(space))
        }),
        // All keys at once: the batcher turns them into one RPC per peer.
        getMany: (keys) => Effect.forEach(keys, (key) => store.get(key), { concurrency: "unbounded" }),
        // Every entry is checked before any is written: one that cannot be sent fails them all at once.
        setMany: (entries) =>
          Effect.suspend(() => {
            const ops: Array<SetOp> = []
            for (const [key, entry] of entries) {
              const op = setOp(key, entry)
              if (op._tag !== "Set") return Effect.fail(op)
              ops.push(op)
            }
            return Effect.forEach(ops, (op) => writeAll(op.key, op, "set"), { concurrency: "unbounded", discard: true })
          }),
        deleteMany: (keys) =>
          Effect.map(
            Effect.forEach(keys, (key) => store.delete(key), { concurrency: "unbounded" }),
            (removed) => removed.filter(Boolean).length
          ),
        // Whoever asks for the invalidations keeps values nearby (a near cache): from then on this
        // node registers as a reader of what it reads and writes, so holders tell it of changes.
        // Set on access, not on subscription, which may start after the first write.
        get invalidations() {
          space.watched = true
          return invalidations
        },
        singleFlight: <A, E, R>(
          key: string,
          fetch: (write: (entry: Backend.Entry) => Effect.Effect<boolean, CacheError>) => Effect.Effect<A, E, R>,
          timeoutMillis: number
        ) => {
          const owner = ownerOf(key)
          const acquire: Effect.Effect<LeaseOutcome, NodeUnavailable | RemoteFailure> = owner === self
            ? leaseHere(space, key, timeoutMillis)
            : node.call(owner, (client) => client.Lease({ ns, key, timeout: timeoutMillis }))
          const release = owner === self
            ? releaseHere(space, key)
            : Effect.ignore(node.call(owner, (client) => client.Release({ ns, key })))
          const deadline = live.unsafeCurrentTimeMillis() + timeoutMillis
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
                return Effect.ensuring(
                  Effect.flatMap(
                    store.get(key),
                    Option.match({ onNone: () => lead, onSome: (entry) => Effect.succeed(entry.value as A) })
                  ),
                  release
                )
              }
              if (outcome === "timeout" || live.unsafeCurrentTimeMillis() >= deadline) {
                return Effect.fail(new FetchTimeout({ key, timeout: timeoutMillis }))
              }
              // The winner finished: its value is in the cache, unless its fetch failed.
              return Effect.flatMap(
                store.get(key),
                Option.match({ onNone: () => loop, onSome: (entry) => Effect.succeed(entry.value as A) })
              )
            }
          )
          return loop
        }
      }
      return store
    }

    return Topology.Topology.of({ name: `partitioned (replicas ${replicas})`, open })
  })

// internal

let lastVersion = 0
/**
 * The version of a write's stamp: wall-clock microseconds, made strictly increasing in this
 * process; the writer's node id breaks ties between processes.
 */
const nextVersion = (): number => {
  const candidate = live.unsafeCurrentTimeMillis() * 1000
  lastVersion = candidate > lastVersion ? candidate : lastVersion + 1
  return lastVersion
}

type SetOp = Extract<Op, { readonly _tag: "Set" }>

const stampOf = (op: SetOp): Stamp => ({ version: op.entry.version, origin: op.origin })

const missing: OpResult = { _tag: "Missing" }
const done: OpResult = { _tag: "Bool", value: true }
const no: OpResult = { _tag: "Bool", value: false }
