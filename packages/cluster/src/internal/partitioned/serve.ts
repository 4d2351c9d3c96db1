/**
 * What this node serves to its peers: batches of key operations (in a plain loop for the ones an
 * open in-memory space answers at once), and its part of the fan-outs (`size`, `invalidateTag`,
 * `clear`) and of the leases. The parts of the fan-outs are also what the requester runs here.
 */
import type { BackendError, CacheError, ConfigError } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Scope from "effect/Scope"
import * as HashRing from "../../HashRing.js"
import type { ClearRequest, InvalidateTagRequest, Op, OpResult, SizeRequest } from "../protocol.js"
import { RemoteFailure } from "../protocol.js"
import type { Stamp } from "../replica.js"
import { compare } from "../replica.js"
import { describe, frameBudget, replyWeight } from "../wire.js"
import type { Apply } from "./apply.js"
import type { Applied, Atomic } from "./atomic.js"
import { isAtomic } from "./atomic.js"
import { leaseHere, releaseHere } from "./leases.js"
import type { Near } from "./near.js"
import type { Partition } from "./partition.js"
import type { Space } from "./space.js"
import { floorOf, fresh, later, serialized } from "./space.js"

export interface Here {
  /** Removes the entries tagged `tag` written before the invalidation; returns those that were live. */
  readonly invalidateTag: (
    space: Space,
    from: string,
    request: InvalidateTagRequest
  ) => Effect.Effect<ReadonlyArray<string>, CacheError>
  /** This node's part of a `size` (see `SizeRequest`): the keys it counts, and the moving keys it lists. */
  readonly size: (
    space: Space,
    request: SizeRequest
  ) => Effect.Effect<{ readonly count: number; readonly keys: ReadonlyArray<string> }, CacheError>
  /** Removes every entry written before the flush. */
  readonly clear: (space: Space, from: string, stamp: Stamp) => Effect.Effect<void, CacheError>
}

export const makeHere = (p: Partition, { remove }: Apply): Here => ({
  invalidateTag: (space, from, request) =>
    serialized(space, () =>
      Effect.gen(function*() {
        space.clock.now = request.now
        const floor = space.tagFloors.get(request.tag)
        if (!fresh(floor) || compare(request, floor) > 0) space.tagFloors.set(request.tag, floorOf(space, request))
        const removed: Array<string> = []
        for (const key of space.index.tagged(request.tag)) {
          const indexed = space.index.get(key)!
          if (compare(indexed, request) < 0 && (yield* remove(space, from, key, indexed))) removed.push(key)
        }
        return removed
      })),
  size: (space, request) =>
    Effect.gen(function*() {
      const { now } = request
      space.clock.now = now
      const view = p.ring.of(request.members)
      const skip = new Set(request.skip)
      const fresh = new Set(request.fresh)
      const settled = skip.size === 0 && fresh.size === 0
      let count = 0
      const keys: Array<string> = []
      for (const key of space.index.live(now)) {
        let listed = false
        if (settled) {
          if (HashRing.owner(view, key) !== p.self) continue
        } else {
          const ranked = HashRing.holders(view, key, p.copies + skip.size + fresh.size).filter((m) => !skip.has(m))
          const first = ranked[0]
          if (first === undefined || (first !== p.self && !fresh.has(first))) continue
          if (fresh.has(first)) {
            // On its way to a newcomer: its new holders and its holders before the join list it (an
            // old holder drops it only once the new ones have it), and the requester counts the union.
            const holders = ranked.slice(0, p.copies)
            const before = ranked.filter((m) => !fresh.has(m)).slice(0, p.copies)
            if (!holders.includes(p.self) && !before.includes(p.self)) continue
            listed = true
          }
        }
        if (!(yield* space.store.has(key))) space.index.delete(key)
        else if (listed) keys.push(key)
        else count++
      }
      return { count, keys }
    }),
  clear: (space, from, stamp) =>
    serialized(space, () => {
      if (!fresh(space.flushFloor) || compare(stamp, space.flushFloor) > 0) space.flushFloor = floorOf(space, stamp)
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
})

/** Serves peers while the scope is open. */
export const serve = (p: Partition, { apply, applySync }: Apply, atomic: Atomic, here: Here, near: Near): Effect.Effect<
  void,
  never,
  Scope.Scope
> => {
  const { node, self, spaces } = p
  const replyBudget = frameBudget(node.maxFrameBytes)

  const remote = <A>(operation: string, effect: Effect.Effect<A, CacheError | BackendError | ConfigError>) =>
    Effect.mapError(
      effect,
      (cause) => new RemoteFailure({ message: `${operation} failed on ${self}: ${describe(cause)}`, cause })
    )

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
      const beyond = p.ring.current().members.filter((m) => m !== self && !request.members.includes(m))
      if (beyond.length === 0) return Effect.succeed([])
      const reached = { ...request, members: [...request.members, ...beyond] }
      return Effect.forEach(beyond, (peer) => Effect.orElseSucceed(call(peer, reached), () => otherwise), {
        concurrency: "unbounded"
      })
    })

  const batch = (from: string, now: number, ops: ReadonlyArray<Op>) =>
    Effect.suspend(() => {
      // A plain loop over the operations an open in-memory space serves synchronously; the
      // rest (a space still opening, a delete, another backend) one at a time, in order.
      const results = new Array<OpResult>(ops.length)
      let i = 0
      // The reply must fit in a frame: once it is full, the rest of the batch is sent again.
      let bytes = 0
      const record = (result: OpResult) => {
        bytes += replyWeight(result)
        // An atomic operation answers `Later` itself, unapplied, when its answer would not fit.
        if (result === later || (i > 0 && bytes > replyBudget)) {
          results.fill(later, i)
          i = ops.length
        } else {
          results[i++] = result
        }
      }
      // Atomic operations are applied in order, one after another; the copies to their replicas
      // are awaited together, at the end of the batch.
      const replicated: Array<Effect.Effect<void>> = []
      const inSpace = <A>(op: Op, f: (space: Space) => Effect.Effect<A>, failed: (message: string) => A) => {
        const space = spaces.ready.get(op.ns)
        return space !== undefined
          ? f(space)
          : Effect.flatMap(
            Effect.either(spaces.open(op.ns)),
            (found) => Either.isRight(found) ? f(found.right) : Effect.succeed(failed(describe(found.left)))
          )
      }
      const slow = (op: Op): Effect.Effect<OpResult> => {
        if (!isAtomic(op)) {
          return inSpace(op, (space) => apply(space, from, now, op), (message) => ({ _tag: "Failed", message }))
        }
        const at = i
        const room = at === 0 ? Infinity : replyBudget - bytes
        return Effect.map(
          inSpace(
            op,
            (space) => atomic.apply(space, from, now, op, room),
            (message): Applied => ({ result: { _tag: "Failed", message }, replicated: undefined })
          ),
          ({ replicated: copied, result }) => {
            if (copied !== undefined) {
              replicated.push(Effect.map(copied, (final) => {
                results[at] = final
              }))
            }
            return result
          }
        )
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
        return replicated.length === 0
          ? Effect.succeed(results)
          : Effect.as(Effect.all(replicated, { concurrency: "unbounded", discard: true }), results)
      }
      // While entries move, the owner first asks the others for the keys of the batch's atomic
      // operations, all at once.
      const atomics = p.ring.moving() ? ops.filter(isAtomic) : []
      if (atomics.length === 0) return loop()
      return Effect.zipRight(
        Effect.forEach(atomics, (op) => inSpace(op, (space) => atomic.catchUp(space, now, op.key), () => undefined), {
          concurrency: "unbounded",
          discard: true
        }),
        Effect.suspend(loop)
      )
    })

  return node.serve({
    batch,
    invalidateTag: (from, request: InvalidateTagRequest) =>
      Effect.zipWith(
        remote(
          "invalidateTag",
          Effect.flatMap(spaces.open(request.ns), (space) => here.invalidateTag(space, from, request))
        ),
        passOn(request, (peer, reached) => node.call(peer, (client) => client.InvalidateTag(reached)), []),
        (removed, beyond) => [...removed, ...beyond.flat()]
      ).pipe(Effect.tap(() => near.notify(request.ns, from, { _tag: "Tag", tag: request.tag }))),
    clear: (from, request: ClearRequest) =>
      Effect.zipLeft(
        remote("clear", Effect.flatMap(spaces.open(request.ns), (space) => here.clear(space, from, request))),
        passOn(request, (peer, reached) => node.call(peer, (client) => client.Clear(reached)), undefined)
      ).pipe(Effect.tap(() => near.notify(request.ns, from, { _tag: "Flush" }))),
    size: (request) => remote("size", Effect.flatMap(spaces.open(request.ns), (space) => here.size(space, request))),
    lease: (ns, key, timeout) =>
      remote("lease", Effect.flatMap(spaces.open(ns), (space) => leaseHere(p, space, key, timeout))),
    release: (ns, key) => remote("release", Effect.flatMap(spaces.open(ns), (space) => releaseHere(space, key))),
    invalidate: (from, ns, change) => near.notify(ns, from, change)
  })
}
