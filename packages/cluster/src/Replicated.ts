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
 */
import type { BackendError, CacheError, Codec, Stats } from "@vela/core"
import { Backend, CodecError, ConfigError, Topology } from "@vela/core"
import type { Duration, Scope } from "effect"
import { Clock, Effect, Either, Layer, Option, PubSub, Schedule, Stream } from "effect"
import * as ClusterNode from "./ClusterNode.js"
import * as Batcher from "./internal/batcher.js"
import { live } from "./internal/live.js"
import * as Check from "./internal/options.js"
import type { Op, OpResult, PullRequest, ReplicaItem, SpaceDigest, WireEntry } from "./internal/protocol.js"
import { RemoteFailure } from "./internal/protocol.js"
import type { Outcome, Stamp } from "./internal/replica.js"
import { BUCKETS, Hlc, Replica } from "./internal/replica.js"
import * as Spaces from "./internal/spaces.js"
import { decodeHeld, describe, encodeForWire, frameBudget, fromWire, toWire, wireBytes } from "./internal/wire.js"

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
 */
export const layer = (
  options: ReplicatedOptions = {}
): Layer.Layer<Topology.Topology, ConfigError, Backend.Backend | ClusterNode.ClusterNode> =>
  Layer.scoped(Topology.Topology, make(options))

/** The topology on the `ClusterNode` and `Backend` in context, serving peers while the scope is open. */
export const make = (
  options: ReplicatedOptions = {}
): Effect.Effect<Topology.Topology["Type"], ConfigError, Backend.Backend | ClusterNode.ClusterNode | Scope.Scope> =>
  Effect.gen(function*() {
    const antiEntropy = yield* Check.millis("antiEntropyInterval", options.antiEntropyInterval ?? "5 seconds")
    const joinTimeout = yield* Check.millis("joinTimeout", options.joinTimeout ?? "5 seconds")
    const tombstoneTtl = yield* Check.millis("tombstoneTtl", options.tombstoneTtl ?? "10 minutes")
    const chunkSize = yield* Check.count("chunkSize", options.chunkSize ?? 500)
    if (chunkSize < 1) return yield* new ConfigError({ field: "chunkSize", reason: "expected at least 1" })
    const backend = yield* Backend.Backend
    const node = yield* ClusterNode.ClusterNode
    const scope = yield* Effect.scope
    const batcher = Batcher.make(node)
    const self = node.id
    const hlc = new Hlc(() => live.unsafeCurrentTimeMillis())
    const stamp = (): Stamp => ({ version: hlc.next(), origin: self })
    const peers = () => node.currentMembers().filter((m) => m !== self)

    // Namespaces

    interface Space {
      readonly name: string
      /** Holds the values as text encoded with the writer's codec. */
      readonly store: Backend.Store
      readonly clock: DelegateClock
      readonly replica: Replica
      readonly changes: PubSub.PubSub<Backend.Invalidation>
      /** A near cache on this node reads this namespace's invalidations. */
      watched: boolean
    }
    const spaces = Spaces.make({
      backend,
      scope,
      clock: (open) => new DelegateClock(open?.clock ?? live),
      build: (name, store, clock) =>
        Effect.map(PubSub.unbounded<Backend.Invalidation>(), (changes): Space => ({
          name,
          store,
          clock,
          replica: new Replica(),
          changes,
          watched: false
        })),
      // A peer's request opened it on the live clock: the cache's clock governs from now on.
      reopen: (space, open) => {
        space.clock.target = open.clock
      }
    })

    // Applying writes: the replica decides, the store follows.

    const publish = (space: Space, change: Backend.Invalidation) =>
      space.watched ? PubSub.publish(space.changes, change) : Effect.void

    const follow = (space: Space, key: string, outcome: Outcome, entry: Backend.Entry | undefined) => {
      switch (outcome) {
        case "stale":
          return Effect.succeed(false)
        case "stored":
          return Effect.as(space.store.set(key, entry!), true)
        case "removed":
          return space.store.delete(key)
      }
    }

    /**
     * A put, applied at once when the store is an authoritative in-memory one (what holders use):
     * whether it changed the key, or what is left to run otherwise.
     */
    const putNow = (
      space: Space,
      key: string,
      entry: WireEntry,
      origin: string
    ): boolean | Effect.Effect<boolean, CacheError> => {
      hlc.observe(entry.version)
      const outcome = space.replica.put(key, { version: entry.version, origin }, entry.expiresAt, entry.tags)
      if (outcome === "stale") return false
      const sync = space.store.sync
      if (outcome === "stored" && sync?.set !== undefined && sync.authoritative) {
        sync.set(key, fromWire(entry))
        return true
      }
      return follow(space, key, outcome, fromWire(entry))
    }

    const applyPut = (space: Space, key: string, entry: WireEntry, origin: string) => {
      const now = putNow(space, key, entry, origin)
      return typeof now === "boolean" ? Effect.succeed(now) : now
    }

    const applyDelete = (space: Space, key: string, at: Stamp) => {
      hlc.observe(at.version)
      return follow(space, key, space.replica.delete(key, at), undefined)
    }

    /** Removes the keys a tag or a flush took away; returns how many were live here. */
    const removeAll = (space: Space, keys: ReadonlyArray<string>) =>
      Effect.reduce(keys, 0, (count, key) => Effect.map(space.store.delete(key), (live) => live ? count + 1 : count))

    const applyTag = (space: Space, tag: string, at: Stamp) => {
      hlc.observe(at.version)
      return removeAll(space, space.replica.invalidateTag(tag, at))
    }

    const applyFlush = (space: Space, at: Stamp) =>
      Effect.suspend(() => {
        hlc.observe(at.version)
        const removed = space.replica.flush(at)
        // Nothing newer than the flush is left: one `clear` does it.
        return space.replica.live === 0 ? space.store.clear : Effect.asVoid(removeAll(space, removed))
      })

    const sweepSpace = (space: Space) =>
      Effect.suspend(() => {
        const now = space.clock.unsafeCurrentTimeMillis()
        space.replica.expire(now)
        space.replica.forget(live.unsafeCurrentTimeMillis() - tombstoneTtl)
        return space.store.sweep
      })

    // What this node serves to peers

    const failure = (operation: string, cause: unknown) =>
      new RemoteFailure({ message: `${operation} failed on ${self}: ${describe(cause)}`, cause })
    // A pull's reply shares the frame with the RPC envelope: half of it is ample room.
    const replyBudget = frameBudget(node.maxFrameBytes) / 2

    const serveOp = (space: Space, op: Op): Effect.Effect<boolean, unknown> => {
      switch (op._tag) {
        case "ReplicaPut":
          return Effect.tap(
            applyPut(space, op.key, op.entry, op.origin),
            (changed) => changed ? publish(space, { _tag: "Keys", keys: [op.key] }) : Effect.void
          )
        case "ReplicaDelete":
          return Effect.tap(
            applyDelete(space, op.key, op),
            () => publish(space, { _tag: "Keys", keys: [op.key] })
          )
        case "ReplicaTag":
          return Effect.as(
            Effect.zipRight(applyTag(space, op.tag, op), publish(space, { _tag: "Tag", tag: op.tag })),
            true
          )
        case "ReplicaFlush":
          return Effect.as(Effect.zipRight(applyFlush(space, op), publish(space, { _tag: "Flush" })), true)
        default:
          return Effect.fail(`${op._tag} is not a Replicated operation`)
      }
    }

    const digestOf = (space: Space): SpaceDigest => {
      space.replica.expire(space.clock.unsafeCurrentTimeMillis())
      const { counts, hashes } = space.replica.digest()
      const flush = space.replica.flushFloor
      return {
        ns: space.name,
        hashes,
        counts,
        flush: flush === undefined ? null : flush,
        tags: Array.from(space.replica.tagFloors, ([tag, floor]) => ({ tag, ...floor }))
      }
    }

    /** What `request` asks of `space`, up to about `replyBudget` bytes (at least one item). */
    const itemsOf = (space: Space, request: PullRequest) =>
      Effect.gen(function*() {
        const items: Array<ReplicaItem> = []
        let bytes = 0
        for (const bucket of request.buckets) {
          const known = space.replica.items([bucket]).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
          let last: string | null = null
          for (const [key, meta] of known) {
            if (bucket === request.buckets[0] && request.after !== null && key <= request.after) continue
            let item: ReplicaItem
            if (meta.tombstone) {
              item = { key, version: meta.version, origin: meta.origin, entry: null }
            } else {
              const entry = yield* space.store.get(key)
              // Gone from the store (expired, evicted): the peer decides that on its own.
              if (Option.isNone(entry)) continue
              item = { key, version: meta.version, origin: meta.origin, entry: toWire(entry.value) }
            }
            const weight = 64 + (item.entry === null ? 3 * key.length : wireBytes(space.name, key, item.entry))
            if (items.length > 0 && bytes + weight > replyBudget) return { items, more: { bucket, after: last } }
            bytes += weight
            items.push(item)
            last = key
          }
        }
        return { items, more: null }
      })

    yield* node.serve({
      batch: (_from, _now, ops) =>
        Effect.suspend(() => {
          // Puts into an open in-memory space are applied in a plain loop; anything else (and a
          // put whose near caches must hear of it) goes the Effect way, one at a time, in order.
          const results = new Array<OpResult>(ops.length)
          let i = 0
          const slow = (op: Op): Effect.Effect<OpResult> =>
            Effect.flatMap(Effect.either(spaces.open(op.ns)), (space) =>
              Either.isLeft(space)
                ? Effect.succeed<OpResult>({ _tag: "Failed", message: describe(space.left) })
                : serveOp(space.right, op).pipe(
                  Effect.match({
                    onFailure: (error): OpResult => ({ _tag: "Failed", message: describe(error) }),
                    onSuccess: (value): OpResult => value ? yes : no
                  })
                ))
          const loop = (): Effect.Effect<ReadonlyArray<OpResult>> => {
            while (i < ops.length) {
              const op = ops[i]
              const space = op._tag === "ReplicaPut" ? spaces.ready.get(op.ns) : undefined
              if (space === undefined || space.watched) {
                return Effect.flatMap(slow(op), (result) => {
                  results[i++] = result
                  return loop()
                })
              }
              const put = op as Extract<Op, { _tag: "ReplicaPut" }>
              const changed = putNow(space, put.key, put.entry, put.origin)
              if (typeof changed !== "boolean") {
                return Effect.flatMap(
                  Effect.match(changed, {
                    onFailure: (error): OpResult => ({ _tag: "Failed", message: describe(error) }),
                    onSuccess: (value): OpResult => value ? yes : no
                  }),
                  (result) => {
                    results[i++] = result
                    return loop()
                  }
                )
              }
              results[i++] = changed ? yes : no
            }
            return Effect.succeed(results)
          }
          return loop()
        }),
      invalidateTag: () => Effect.fail(notPartitioned),
      clear: () => Effect.fail(notPartitioned),
      size: () => Effect.fail(notPartitioned),
      lease: () => Effect.fail(notPartitioned),
      release: () => Effect.fail(notPartitioned),
      invalidate: () => Effect.fail(notPartitioned),
      digest: () => Effect.map(spaces.opened, (all) => all.map(digestOf)),
      pull: (request) =>
        Effect.flatMap(spaces.open(request.ns), (space) => itemsOf(space, request)).pipe(
          Effect.mapError((cause) => failure("pull", cause))
        )
    })

    // Copying from a peer: compare digests, pull the buckets that differ, in chunks.

    const syncWith = (peer: string) =>
      Effect.gen(function*() {
        const digests = yield* node.call(peer, (client) => client.Digest({}))
        let pulled = 0
        for (const remote of digests) {
          const space = yield* spaces.open(remote.ns)
          if (remote.flush !== null) yield* applyFlush(space, remote.flush)
          for (const { tag, ...floor } of remote.tags) yield* applyTag(space, tag, floor)
          const local = digestOf(space)
          const differ: Array<number> = []
          for (let bucket = 0; bucket < BUCKETS; bucket++) {
            if (remote.hashes[bucket] !== local.hashes[bucket]) differ.push(bucket)
          }
          // Chunks of whole buckets, about `chunkSize` entries each.
          let chunk: Array<number> = []
          let size = 0
          // As many pulls as the peer's replies take.
          const pull = (buckets: ReadonlyArray<number>, after: string | null = null): Effect.Effect<void, unknown> =>
            Effect.flatMap(node.call(peer, (client) => client.Pull({ ns: remote.ns, buckets, after })), (answer) =>
              Effect.zipRight(
                Effect.forEach(answer.items, (item) => {
                  pulled++
                  return item.entry === null
                    ? applyDelete(space, item.key, item)
                    : applyPut(space, item.key, { ...item.entry, version: item.version }, item.origin)
                }, { discard: true }),
                answer.more === null
                  ? Effect.void
                  : pull(buckets.slice(buckets.indexOf(answer.more.bucket)), answer.more.after)
              ))
          for (const bucket of differ) {
            chunk.push(bucket)
            size += Math.max(remote.counts[bucket] ?? 0, 1)
            if (size >= chunkSize) {
              yield* pull(chunk)
              chunk = []
              size = 0
            }
          }
          if (chunk.length > 0) {
            yield* pull(chunk)
          }
          if (differ.length > 0) {
            yield* publish(space, { _tag: "Flush" })
          }
        }
        return pulled
      })

    // Joining: copy the state of a peer before serving anything.
    if (node.seeded) {
      const joined = yield* node.members.changes.pipe(
        Stream.filter((members) => members.length > 1),
        Stream.take(1),
        Stream.runHead,
        Effect.timeout(joinTimeout),
        Effect.option,
        Effect.map(Option.flatten),
        Effect.withClock(live)
      )
      if (Option.isSome(joined)) {
        const candidates = joined.value.filter((m) => m !== self)
        const copied = yield* Effect.firstSuccessOf(candidates.map(syncWith)).pipe(
          Effect.retry(Schedule.intersect(Schedule.spaced("200 millis"), Schedule.recurs(10))),
          Effect.either,
          Effect.withClock(live)
        )
        if (Either.isLeft(copied)) {
          yield* Effect.logWarning(`vela replicated ${self}: could not copy the state of ${candidates.join(", ")}`)
        }
      }
    }

    // Membership changes: tell near caches when this node is cut off, and catch up when it is not.
    let wasAlone = node.currentMembers().length === 1
    yield* node.members.changes.pipe(
      Stream.runForEach((members) =>
        Effect.suspend(() => {
          const alone = members.length === 1
          if (alone === wasAlone) return Effect.void
          wasAlone = alone
          const change: Backend.Invalidation = alone ? { _tag: "Disconnected" } : { _tag: "Connected" }
          return Effect.zipRight(
            Effect.flatMap(spaces.opened, (all) =>
              Effect.forEach(all, (space) => PubSub.publish(space.changes, change), { discard: true })),
            alone ? Effect.void : Effect.forEach(
              members.filter((m) =>
                m !== self
              ),
              (peer) => Effect.ignore(syncWith(peer)),
              { discard: true }
            )
          )
        })
      ),
      Effect.withClock(live),
      Effect.forkScoped
    )

    // Anti-entropy with one random peer per round.
    yield* Effect.suspend(() => {
      const others = peers()
      if (others.length === 0) return Effect.void
      return Effect.ignore(syncWith(others[Math.floor(Math.random() * others.length)]))
    }).pipe(
      Effect.repeat(Schedule.spaced(antiEntropy)),
      Effect.withClock(live),
      Effect.interruptible,
      Effect.forkScoped
    )

    // Namespaces no cache of this node sweeps.
    yield* Effect.flatMap(spaces.opened, (all) => Effect.forEach(all, (space) => Effect.ignore(sweepSpace(space))))
      .pipe(
        Effect.repeat(Schedule.spaced("30 seconds")),
        Effect.withClock(live),
        Effect.interruptible,
        Effect.forkScoped
      )

    // The stores caches use

    /** Sends `op` to every live peer; waits for their answers, and leaves the failed ones to anti-entropy. */
    const replicate = (op: Op) =>
      Effect.suspend(() => {
        const targets = peers()
        if (targets.length === 0) return Effect.void
        // One waiter for every peer; an unreachable peer is reported, not failed on.
        return Effect.asVoid(batcher.submit(targets, 0, op, false))
      })

    const makeStore = (
      space: Space,
      options: Backend.OpenOptions,
      stats: Effect.Effect<Stats.Stats>
    ): Backend.Store => {
      const ns = space.name
      const codec: Codec.Codec = options.codec
      const local = space.store

      const decode = (key: string, held: Backend.Entry): Backend.Entry | undefined => {
        const entry = decodeHeld(codec, key, held)
        return entry instanceof CodecError ? undefined : entry
      }

      const localSync = local.sync
      const sync: Backend.SyncStore | undefined = localSync === undefined ? undefined : {
        authoritative: localSync.authoritative,
        get: (key) => {
          const entry = localSync.get(key)
          return entry === undefined ? undefined : decode(key, entry)
        }
      }

      /** The put of `entry`, or why it cannot be made: its value does not encode, or no frame holds it. */
      const putOp = (key: string, entry: Backend.Entry): PutOp | CodecError | BackendError => {
        const wire = encodeForWire(codec, ns, key, entry, hlc.next(), node.maxFrameBytes)
        return "value" in wire ? { _tag: "ReplicaPut", ns, key, entry: wire, origin: self } : wire
      }

      const write = (op: PutOp) => Effect.zipRight(applyPut(space, op.key, op.entry, self), replicate(op))

      const remove = (key: string) =>
        Effect.suspend(() => {
          const at = stamp()
          return Effect.zipLeft(
            applyDelete(space, key, at),
            replicate({ _tag: "ReplicaDelete", ns, key, ...at })
          )
        })

      const store = Backend.makeStore({
        sync,
        stats,
        get: (key) =>
          Effect.flatMap(local.get(key), (found) => {
            if (Option.isNone(found)) return Effect.succeed(Option.none())
            const entry = decodeHeld(codec, key, found.value)
            return entry instanceof CodecError ? Effect.fail(entry) : Effect.succeed(Option.some(entry))
          }),
        has: local.has,
        set: (key, entry) =>
          Effect.suspend(() => {
            const op = putOp(key, entry)
            return op._tag === "ReplicaPut" ? write(op) : Effect.fail(op)
          }),
        delete: remove,
        invalidateTag: (tag) =>
          Effect.suspend(() => {
            const at = stamp()
            return Effect.zipLeft(applyTag(space, tag, at), replicate({ _tag: "ReplicaTag", ns, tag, ...at }))
          }),
        clear: Effect.suspend(() => {
          const at = stamp()
          return Effect.zipRight(applyFlush(space, at), replicate({ _tag: "ReplicaFlush", ns, ...at }))
        }),
        size: local.size,
        sweep: sweepSpace(space),
        getMany: (keys) => Effect.forEach(keys, (key) => store.get(key)),
        // All keys at once: the batcher sends them to each peer in one RPC. Every entry is checked
        // before any is written: one that cannot be sent fails them all at once.
        setMany: (entries) =>
          Effect.suspend(() => {
            const ops: Array<PutOp> = []
            for (const [key, entry] of entries) {
              const op = putOp(key, entry)
              if (op._tag !== "ReplicaPut") return Effect.fail(op)
              ops.push(op)
            }
            return Effect.forEach(ops, write, { concurrency: "unbounded", discard: true })
          }),
        deleteMany: (keys) =>
          Effect.map(
            Effect.forEach(keys, remove, { concurrency: "unbounded" }),
            (removed) => removed.filter(Boolean).length
          ),
        get invalidations() {
          space.watched = true
          return Stream.fromPubSub(space.changes)
        }
      })
      return store
    }

    return Topology.Topology.of({
      name: "replicated",
      open: (open) =>
        Effect.gen(function*() {
          const space = yield* spaces.open(open.namespace, open)
          return makeStore(space, open, yield* node.shareStats(open.namespace, open.stats))
        })
    })
  })

// internal

/** The clock of the cache that opened a namespace, or the live clock until one does. */
class DelegateClock implements Clock.Clock {
  readonly [Clock.ClockTypeId]: Clock.ClockTypeId = Clock.ClockTypeId
  constructor(public target: Clock.Clock) {}
  unsafeCurrentTimeMillis(): number {
    return this.target.unsafeCurrentTimeMillis()
  }
  get currentTimeMillis(): Effect.Effect<number> {
    return Effect.sync(() => this.target.unsafeCurrentTimeMillis())
  }
  unsafeCurrentTimeNanos(): bigint {
    return this.target.unsafeCurrentTimeNanos()
  }
  get currentTimeNanos(): Effect.Effect<bigint> {
    return Effect.sync(() => this.target.unsafeCurrentTimeNanos())
  }
  sleep(duration: Duration.Duration): Effect.Effect<void> {
    return live.sleep(duration)
  }
}

const notPartitioned = new RemoteFailure({ message: "this node serves the Replicated topology", cause: null })

type PutOp = Extract<Op, { readonly _tag: "ReplicaPut" }>

const yes: OpResult = { _tag: "Bool", value: true }
const no: OpResult = { _tag: "Bool", value: false }
