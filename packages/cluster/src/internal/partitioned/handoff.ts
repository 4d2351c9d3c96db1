/**
 * Membership changes: when the ring changes, every node sends the keys it holds to their new
 * holders (a copy with its write's stamp, so it never replaces a newer write) and drops the keys it
 * no longer holds; a node stopping gracefully hands all its keys over first. Stray copies (a
 * handoff that failed, a write that came by an old ring) are handed over and dropped the same way
 * once the ring has been quiet for `handoffGrace`.
 * Invariant: in a settled ring, every live key is held by exactly its `1 + replicas` holders.
 */
import type { Backend, NodeUnavailable } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as HashRing from "../../HashRing.js"
import { live } from "../live.js"
import type { OpResult } from "../protocol.js"
import { toWire } from "../wire.js"
import type { Partition } from "./partition.js"
import type { SetOp, Space } from "./space.js"
import { prune, serialized } from "./space.js"

/** Runs the rebalancer, the repair of stray copies, the sweep of spaces no cache sweeps, and the graceful leave, in the scope. */
export const start = (p: Partition): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    yield* p.node.members.changes.pipe(
      Stream.runForEach((members) => membersChanged(p, members)),
      Effect.withClock(live),
      Effect.forkScoped
    )
    yield* repair(p).pipe(
      Effect.repeat(Schedule.spaced(p.grace)),
      Effect.withClock(live),
      Effect.interruptible,
      Effect.forkScoped
    )
    yield* Effect.addFinalizer(() => leave(p))
    // Spaces opened only for peers have no cache sweeping them.
    yield* Effect.flatMap(p.spaces.opened, (all) =>
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
  })

const membersChanged = (p: Partition, members: ReadonlyArray<string>) =>
  Effect.suspend(() => {
    const before = p.ring.settle(members)
    if (before === undefined) return Effect.void
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
        Effect.flatMap(p.spaces.opened, (all) =>
          Effect.forEach(all, (space) => PubSub.publish(space.changes, connection), { discard: true })),
      rebalance(p, before, p.ring.settled)
    )
  })

const rebalance = (p: Partition, before: HashRing.HashRing, after: HashRing.HashRing) =>
  Effect.flatMap(
    p.spaces.opened,
    (all) => Effect.forEach(all, (space) => handoff(p, space, before, after), { discard: true })
  )

const handoff = (p: Partition, space: Space, before: HashRing.HashRing, after: HashRing.HashRing) =>
  Effect.forEach(space.index.live(space.clock.now), (key) => {
    const was = HashRing.holders(before, key, p.copies)
    const now = HashRing.holders(after, key, p.copies)
    const targets = now.filter((m) => m !== p.self && !was.includes(m))
    const keep = now.includes(p.self)
    return targets.length === 0 && keep ? Effect.void : handOver(p, space, key, targets, keep)
  }, { concurrency: 64, discard: true })

/** Sends `key` to its new holders `targets`, then drops it here unless `keep`. */
const handOver = (
  p: Partition,
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
      p.batcher.submit(targets, space.clock.now, op, true) as Effect.Effect<ReadonlyArray<OpResult>, NodeUnavailable>
    )
    if (Either.isLeft(sent) || sent.right.some((r) => r._tag === "Failed")) {
      // Kept here until a holder can take it: `repair` tries again.
      if (!keep) p.ring.strays = true
      return
    }
    if (keep) return
    // Dropped only if no newer write arrived meanwhile; a newer one is handed over in its turn.
    const newer = yield* serialized(space, () => {
      if (space.index.get(key) !== indexed) return Effect.succeed(true)
      space.index.delete(key)
      return Effect.as(Effect.ignore(space.store.delete(key)), false)
    })
    if (newer) yield* handOver(p, space, key, targets, keep)
  })

// Stray copies are handed to their holders and dropped as a handoff would, once the ring has been
// quiet for handoffGrace (until then a read may still ask this node for them). A copy left behind
// would otherwise wait for the next membership change, and could come back as the value if this
// node became a holder of its key again before a newer copy reached it.
const repair = (p: Partition) =>
  Effect.suspend(() => {
    if (!p.ring.strays || p.ring.moving()) return Effect.void
    p.ring.strays = false
    const view = p.ring.current()
    return Effect.flatMap(
      p.spaces.opened,
      (all) =>
        Effect.forEach(all, (space) =>
          Effect.forEach(space.index.live(space.clock.now), (key) => {
            const holders = HashRing.holders(view, key, p.copies)
            return holders.includes(p.self) ? Effect.void : handOver(p, space, key, holders, false)
          }, { concurrency: 64, discard: true }), { discard: true })
    )
  })

// A graceful leave hands every key this node holds to its holders in the ring without it, so
// even `replicas: 0` loses nothing when a node is stopped. Bounded: a leave never hangs.
const leave = (p: Partition) =>
  Effect.suspend(() => {
    const current = p.ring.current()
    const others = current.members.filter((m) => m !== p.self)
    if (others.length === 0) return Effect.void
    return rebalance(p, current, HashRing.withMembers(current, others)).pipe(
      Effect.timeout("5 seconds"),
      Effect.ignore,
      Effect.withClock(live)
    )
  })
