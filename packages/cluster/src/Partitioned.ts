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
 * Near caches: a holder remembers which nodes read a key for a near cache and tells them when the
 * key changes; tag invalidations and flushes reach every node; a node that loses every peer emits
 * `Disconnected`, so a near cache over it stops serving what it cannot verify.
 */
import type { CacheError, Codec, Stats } from "@vela/core"
import { Backend, BackendError, CodecError, ConfigError, FetchTimeout, NodeUnavailable, Topology } from "@vela/core"
import type { Duration, Scope } from "effect"
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
  Stream
} from "effect"
import * as ClusterNode from "./ClusterNode.js"
import * as HashRing from "./HashRing.js"
import * as Batcher from "./internal/batcher.js"
import { KeyIndex } from "./internal/keyIndex.js"
import { live } from "./internal/live.js"
import * as Check from "./internal/options.js"
import type {
  Change,
  ClearRequest,
  InvalidateTagRequest,
  LeaseOutcome,
  Op,
  OpResult,
  SizeRequest,
  WireEntry
} from "./internal/protocol.js"
import { RemoteFailure } from "./internal/protocol.js"
import type { Stamp } from "./internal/replica.js"
import { compare } from "./internal/replica.js"
import { RequestClock } from "./internal/requestClock.js"
import * as Spaces from "./internal/spaces.js"
import {
  decodeHeld,
  describe,
  encodeForWire,
  frameBudget,
  fromWire,
  heldOf,
  replyWeight,
  toWire
} from "./internal/wire.js"

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
    /** A key may be held here that the ring gives to others only: a handoff failed, or a write came by an old ring. */
    let strays = false
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
      /** Tag invalidations within `handoffGrace`: a write of a key carrying the tag must be newer. */
      readonly tagFloors: Map<string, Stamp & { readonly until: number }>
      /** The last flush, while within `handoffGrace`: every write must be newer. */
      flushFloor: (Stamp & { readonly until: number }) | undefined
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
          tagFloors: new Map(),
          flushFloor: undefined,
          writes: Effect.unsafeMakeSemaphore(1),
          writing: 0,
          changes,
          watched: false
        }))
    })

    const failure = (operation: string, cause: unknown) =>
      new RemoteFailure({ message: `${operation} failed on ${self}: ${describe(cause)}`, cause })
    const replyBudget = frameBudget(node.maxFrameBytes)

    // Holders apply the writes and deletes of a key in the order of their stamps (version, then the
    // node that made it), whatever order they arrive in: every holder ends with the same one. A tag
    // invalidation or a flush removes what was written before its stamp, and keeps such writes out.

    const fresh = <A extends { readonly until: number }>(floor: A | undefined): floor is A =>
      floor !== undefined && floor.until > live.unsafeCurrentTimeMillis()

    /** The stamp `key` shows here: its stored write, or a recent delete. */
    const stampHere = (space: Space, key: string): Stamp | undefined => {
      const indexed = space.index.get(key)
      if (indexed !== undefined) return indexed
      const tombstone = space.tombstones.get(key)
      return fresh(tombstone) ? tombstone : undefined
    }

    /** A miss of `key` here, with the stamp of its delete if it was deleted within `handoffGrace`. */
    const missingHere = (space: Space, key: string): OpResult => {
      const here = space.index.get(key) === undefined ? stampHere(space, key) : undefined
      return here === undefined ? missing : { _tag: "Missing", deleted: { version: here.version, origin: here.origin } }
    }

    /** Whether a write of `key` at `stamp` comes after what the key shows here. */
    const isNewer = (space: Space, key: string, stamp: Stamp): boolean => {
      const here = stampHere(space, key)
      return here === undefined || compare(stamp, here) > 0
    }

    /** Whether a write at `stamp` of an entry carrying `tags` was made before a flush or an invalidation of one of its tags. */
    const isRemoved = (space: Space, stamp: Stamp, tags: ReadonlyArray<string>): boolean => {
      if (fresh(space.flushFloor) && compare(stamp, space.flushFloor) <= 0) return true
      if (space.tagFloors.size === 0) return false
      for (const tag of tags) {
        const floor = space.tagFloors.get(tag)
        if (fresh(floor) && compare(stamp, floor) <= 0) return true
      }
      return false
    }

    const until = <A extends Stamp>(stamp: A) => ({
      version: stamp.version,
      origin: stamp.origin,
      until: live.unsafeCurrentTimeMillis() + grace
    })

    const bury = (space: Space, key: string, stamp: Stamp) => {
      space.tombstones.set(key, until(stamp))
    }

    /** Removes `key` and leaves a tombstone at `stamp`; whether a live entry was removed. */
    const remove = (space: Space, from: string, key: string, stamp: Stamp) =>
      Effect.map(space.store.delete(key), (removed) => {
        bury(space, key, stamp)
        space.index.delete(key)
        changed(space, from, key)
        dropLease(space, key)
        return removed
      })

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
      // This node's own writes follow its ring; a peer's may follow a ring that has since changed.
      if (from !== self && !HashRing.holders(currentRing(), op.key, copies).includes(self)) strays = true
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
            if (entry === undefined) return missingHere(space, op.key)
            if (op.watch && from !== self) addReader(space, op.key, from)
            return { _tag: "Found", entry: toWire(entry) }
          }
          case "Set": {
            if (sync.set === undefined || space.writing > 0) return undefined
            space.clock.now = now
            const stamp = stampOf(op)
            // A write that a tag invalidation or a flush removed deletes the older one: the `Effect` way.
            if (isRemoved(space, stamp, op.entry.tags) && isNewer(space, op.key, stamp)) return undefined
            if (isNewer(space, op.key, stamp)) {
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
    const serialized = <A, E>(space: Space, write: () => Effect.Effect<A, E>): Effect.Effect<A, E> =>
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
            if (Option.isNone(entry)) return missingHere(space, op.key)
            if (op.watch && from !== self) addReader(space, op.key, from)
            return { _tag: "Found", entry: toWire(entry.value) }
          })
        case "Has":
          return settle(store.has(op.key), (value) => ({ _tag: "Bool", value }))
        case "Set":
          return serialized(space, () => {
            clock.now = now
            const stamp = stampOf(op)
            if (!isNewer(space, op.key, stamp)) {
              if (op.watch) lost(space, from, op.key)
              return Effect.succeed(done)
            }
            // Written before an invalidation of one of its tags (or a flush) that arrived first: in
            // stamp order it replaced what the key shows, then was removed.
            if (isRemoved(space, stamp, op.entry.tags)) {
              if (op.watch) lost(space, from, op.key)
              return settle(remove(space, from, op.key, stamp), () => done)
            }
            return settle(store.set(op.key, fromWire(op.entry)), () => {
              stored(space, from, op)
              return done
            })
          })
        case "Delete":
          return serialized(space, () => {
            clock.now = now
            const stamp: Stamp = { version: op.version, origin: op.origin }
            if (!isNewer(space, op.key, stamp)) return Effect.succeed(no)
            return settle(remove(space, from, op.key, stamp), (removed) => removed ? done : no)
          })
        default:
          return Effect.succeed({ _tag: "Failed", message: `${op._tag} is not a Partitioned operation` })
      }
    }

    /** Drops what the sweep leaves behind: expired keys from the index (kept as tombstones), lapsed tombstones and floors. */
    const prune = (space: Space) => {
      for (const [key, expired] of space.index.prune(space.clock.now)) bury(space, key, expired)
      for (const [key, tombstone] of space.tombstones) if (!fresh(tombstone)) space.tombstones.delete(key)
      for (const [tag, floor] of space.tagFloors) if (!fresh(floor)) space.tagFloors.delete(tag)
      if (!fresh(space.flushFloor)) space.flushFloor = undefined
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

    /** Removes the entries tagged `tag` written before the invalidation; returns those that were live. */
    const invalidateTagHere = (space: Space, from: string, request: InvalidateTagRequest) =>
      serialized(space, () =>
        Effect.gen(function*() {
          space.clock.now = request.now
          const floor = space.tagFloors.get(request.tag)
          if (!fresh(floor) || compare(request, floor) > 0) space.tagFloors.set(request.tag, until(request))
          const removed: Array<string> = []
          for (const key of space.index.tagged(request.tag)) {
            const indexed = space.index.get(key)!
            if (compare(indexed, request) < 0 && (yield* remove(space, from, key, indexed))) removed.push(key)
          }
          return removed
        }))

    /** This node's part of a `size` (see `SizeRequest`): the keys it counts, and the moving keys it lists. */
    const sizeHere = (space: Space, request: SizeRequest) =>
      Effect.gen(function*() {
        const { now } = request
        space.clock.now = now
        const view = ringOf(request.members)
        const skip = new Set(request.skip)
        const fresh = new Set(request.fresh)
        const settled = skip.size === 0 && fresh.size === 0
        let count = 0
        const keys: Array<string> = []
        for (const key of space.index.live(now)) {
          let listed = false
          if (settled) {
            if (HashRing.owner(view, key) !== self) continue
          } else {
            const ranked = HashRing.holders(view, key, copies + skip.size + fresh.size).filter((m) => !skip.has(m))
            const first = ranked[0]
            if (first === undefined || (first !== self && !fresh.has(first))) continue
            if (fresh.has(first)) {
              // On its way to a newcomer: its new holders and its holders before the join list it (an
              // old holder drops it only once the new ones have it), and the requester counts the union.
              const holders = ranked.slice(0, copies)
              const before = ranked.filter((m) => !fresh.has(m)).slice(0, copies)
              if (!holders.includes(self) && !before.includes(self)) continue
              listed = true
            }
          }
          if (!(yield* space.store.has(key))) space.index.delete(key)
          else if (listed) keys.push(key)
          else count++
        }
        return { count, keys }
      })

    /** Removes every entry written before the flush. */
    const clearHere = (space: Space, from: string, stamp: Stamp) =>
      serialized(space, () => {
        if (!fresh(space.flushFloor) || compare(stamp, space.flushFloor) > 0) space.flushFloor = until(stamp)
        const keys = space.index.all()
        const older = keys.filter((key) => compare(space.index.get(key)!, stamp) < 0)
        // Nothing written after the flush is here: one `clear` does it.
        if (older.length < keys.length) {
          return Effect.forEach(older, (key) => Effect.ignore(remove(space, from, key, space.index.get(key)!)), {
            discard: true
          })
        }
        return Effect.tap(space.store.clear, () => {
          space.index.clear()
          space.readers.clear()
        })
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

    /**
     * Sends `request` on to the members this node sees that it did not reach (one that joined
     * before the requester heard of it may already hold keys); their answers, or `otherwise` for
     * one that cannot be reached.
     */
    const passOn = <R extends { readonly members: ReadonlyArray<string> }, A>(
      request: R,
      call: (peer: string, reached: R) => Effect.Effect<A, unknown>,
      otherwise: A
    ): Effect.Effect<ReadonlyArray<A>> =>
      Effect.suspend(() => {
        const beyond = currentRing().members.filter((m) => m !== self && !request.members.includes(m))
        if (beyond.length === 0) return Effect.succeed([])
        const reached = { ...request, members: [...request.members, ...beyond] }
        return Effect.forEach(beyond, (peer) => Effect.orElseSucceed(call(peer, reached), () => otherwise), {
          concurrency: "unbounded"
        })
      })

    const remote = <A>(operation: string, self: Effect.Effect<A, CacheError | BackendError | ConfigError>) =>
      Effect.mapError(self, (cause) => failure(operation, cause))

    yield* node.serve({
      batch: (from, now, ops) =>
        Effect.suspend(() => {
          // A plain loop over the operations an open in-memory space serves synchronously; the
          // rest (a space still opening, a delete, another backend) one at a time, in order.
          const results = new Array<OpResult>(ops.length)
          let i = 0
          // The reply must fit in a frame: once it is full, the rest of the batch is sent again.
          let bytes = 0
          const record = (result: OpResult) => {
            bytes += replyWeight(result)
            if (i > 0 && bytes > replyBudget) {
              results.fill(later, i)
              i = ops.length
            } else {
              results[i++] = result
            }
          }
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
                  record(result)
                  return loop()
                })
              }
              record(fast)
            }
            return Effect.succeed(results)
          }
          return loop()
        }),
      invalidateTag: (from, request) =>
        Effect.zipWith(
          remote(
            "invalidateTag",
            Effect.flatMap(spaces.open(request.ns), (space) => invalidateTagHere(space, from, request))
          ),
          passOn(request, (peer, reached) => node.call(peer, (client) => client.InvalidateTag(reached)), []),
          (removed, beyond) => [...removed, ...beyond.flat()]
        ).pipe(Effect.tap(() => notify(request.ns, from, { _tag: "Tag", tag: request.tag }))),
      clear: (from, request) =>
        Effect.zipLeft(
          remote("clear", Effect.flatMap(spaces.open(request.ns), (space) => clearHere(space, from, request))),
          passOn(request, (peer, reached) => node.call(peer, (client) => client.Clear(reached)), undefined)
        ).pipe(Effect.tap(() => notify(request.ns, from, { _tag: "Flush" }))),
      size: (request) => remote("size", Effect.flatMap(spaces.open(request.ns), (space) => sizeHere(space, request))),
      lease: (ns, key, timeout) =>
        remote("lease", Effect.flatMap(spaces.open(ns), (space) => leaseHere(space, key, timeout))),
      release: (ns, key) => remote("release", Effect.flatMap(spaces.open(ns), (space) => releaseHere(space, key))),
      invalidate: (from, ns, change) => notify(ns, from, change)
    })

    // Membership changes

    /** When members joined, as this node saw it: their keys may still be on their way for `handoffGrace`. */
    const joined = new Map<string, number>()
    const noteJoins = (before: HashRing.HashRing, after: HashRing.HashRing) => {
      // A node that was alone joined the others, not they it.
      const wasAlone = before.members.length === 1 && before.members[0] === self
      const added = wasAlone ? [self] : after.members.filter((m) => !before.members.includes(m))
      for (const member of added) joined.set(member, changedAt)
      for (const [member, at] of joined) if (changedAt - at >= grace) joined.delete(member)
    }
    /**
     * The members of `view` that joined within `handoffGrace`, or that this node sees but has not yet
     * rebalanced for (the ring follows membership at once; the handoff to a newcomer starts later).
     */
    const freshIn = (view: HashRing.HashRing) =>
      view.members.filter((m) => {
        if (!settled.members.includes(m)) return true
        const at = joined.get(m)
        return at !== undefined && live.unsafeCurrentTimeMillis() - at < grace
      })

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
        if (Either.isLeft(sent) || sent.right.some((r) => r._tag === "Failed")) {
          // Kept here until a holder can take it: `repair` tries again.
          if (!keep) strays = true
          return
        }
        if (keep) return
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
          noteJoins(before, next)
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

    // Stray copies are handed to their holders and dropped as a handoff would, once the ring has been
    // quiet for handoffGrace (until then a read may still ask this node for them). A copy left behind
    // would otherwise wait for the next membership change, and could come back as the value if this
    // node became a holder of its key again before a newer copy reached it.
    const repair = Effect.suspend(() => {
      if (!strays || live.unsafeCurrentTimeMillis() - changedAt < grace) return Effect.void
      strays = false
      const view = currentRing()
      return Effect.flatMap(
        spaces.opened,
        (all) =>
          Effect.forEach(all, (space) =>
            Effect.forEach(space.index.live(space.clock.now), (key) => {
              const holders = HashRing.holders(view, key, copies)
              return holders.includes(self) ? Effect.void : handOver(space, key, holders, false)
            }, { concurrency: 64, discard: true }), { discard: true })
      )
    })
    yield* repair.pipe(
      Effect.repeat(Schedule.spaced(grace)),
      Effect.withClock(live),
      Effect.interruptible,
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
        // every other member before calling it a miss. A copy older than a delete the owner knows of
        // is one a handoff has not dropped yet, not the key's value.
        if (live.unsafeCurrentTimeMillis() - changedAt >= grace) return first
        const others = current.members.filter((m) => m !== owner)
        if (others.length === 0) return first
        return Effect.flatMap(first, (result) => {
          if (!(result._tag === "Missing" || (result._tag === "Bool" && !result.value))) return Effect.succeed(result)
          const quiet: Op = op._tag === "Get" ? { ...op, watch: false } : op
          const deleted = result._tag === "Missing" ? result.deleted : undefined
          return Effect.firstSuccessOf(
            others.map((peer) =>
              Effect.filterOrFail(
                exec(peer, now, quiet),
                (other) =>
                  other._tag === "Found"
                    ? deleted === undefined || other.entry.version > deleted.version
                    : other._tag === "Bool" && other.value && deleted === undefined
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

      /**
       * Runs `local` here and `call` on every other member of `view` but `skip`. Members that cannot
       * be reached are left out and named in `unreachable`, as long as at most `replicas` members
       * are (every key has a live holder among the others); beyond that it fails with
       * `NodeUnavailable`.
       */
      const fanOut = <A>(
        view: HashRing.HashRing,
        skip: ReadonlyArray<string>,
        local: Effect.Effect<A, CacheError | BackendError | ConfigError>,
        call: (peer: string) => Effect.Effect<A, NodeUnavailable | RemoteFailure>
      ): Effect.Effect<
        { readonly answers: ReadonlyArray<A>; readonly unreachable: ReadonlyArray<string> },
        CacheError
      > =>
        Effect.flatMap(
          Effect.forEach(view.members.filter((m) => !skip.includes(m)), (peer) =>
            peer === self
              ? Effect.map(local, Either.right)
              : Effect.catchAll(
                Effect.map(call(peer), Either.right),
                (error) =>
                  error._tag === "NodeUnavailable"
                    ? Effect.succeed(Either.left(error))
                    : Effect.fail(
                      new BackendError({ backend: `cluster ${peer}`, operation: "fan-out", cause: error.message })
                    )
              ), { concurrency: "unbounded" }),
          (results) => {
            const answers: Array<A> = []
            const down: Array<NodeUnavailable> = []
            for (const result of results) {
              if (Either.isRight(result)) answers.push(result.right)
              else down.push(result.left)
            }
            if (skip.length + down.length > replicas) return Effect.fail(down[0])
            return Effect.succeed({ answers, unreachable: down.map((error) => error.node) })
          }
        )

      /** Counts each live key once on `view`, asking again without the members that could not be reached. */
      const sizeOn = (
        view: HashRing.HashRing,
        now: number,
        skip: ReadonlyArray<string>,
        fresh: ReadonlyArray<string>
      ): Effect.Effect<number, CacheError> => {
        const request: SizeRequest = { now, ns, members: view.members, skip, fresh }
        return Effect.flatMap(
          fanOut(view, skip, sizeHere(space, request), (peer) => node.call(peer, (client) => client.Size(request))),
          ({ answers, unreachable }) => {
            if (unreachable.length > 0) return sizeOn(view, now, [...skip, ...unreachable], fresh)
            const moving = new Set<string>()
            let count = 0
            for (const answer of answers) {
              count += answer.count
              for (const key of answer.keys) moving.add(key)
            }
            return Effect.succeed(count + moving.size)
          }
        )
      }

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

      const store = Backend.makeStore({
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
            const view = currentRing()
            const request: InvalidateTagRequest = {
              now: nowOf(),
              ns,
              tag,
              version: nextVersion(),
              origin: self,
              members: view.members
            }
            return Effect.map(
              fanOut(
                view,
                [],
                invalidateTagHere(space, self, request),
                (peer) => node.call(peer, (client) => client.InvalidateTag(request))
              ),
              ({ answers }) => new Set(answers.flat()).size
            )
          }),
        clear: Effect.suspend(() => {
          const view = currentRing()
          const request: ClearRequest = { ns, version: nextVersion(), origin: self, members: view.members }
          return Effect.asVoid(
            fanOut(
              view,
              [],
              clearHere(space, self, request),
              (peer) => node.call(peer, (client) => client.Clear(request))
            )
          )
        }),
        size: Effect.suspend(() => {
          const view = currentRing()
          return sizeOn(view, nowOf(), [], freshIn(view))
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
      })
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
const later: OpResult = { _tag: "Later" }
