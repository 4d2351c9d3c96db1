/**
 * How a holder applies one key operation to its store, at the requester's time and in stamp order
 * (see `space.ts`): in a plain synchronous step where the store allows it, otherwise as an Effect
 * serialized with the space's other writes.
 */
import type { Backend, CacheError } from "@vela/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type { Op, OpResult } from "../protocol.js"
import type { Stamp } from "../replica.js"
import { describe, fromWire, toWire } from "../wire.js"
import { dropLease } from "./leases.js"
import type { Near } from "./near.js"
import type { Partition } from "./partition.js"
import type { SetOp, Space } from "./space.js"
import { bury, done, isNewer, isRemoved, missingHere, no, serialized, stampOf } from "./space.js"

type GetOp = Extract<Op, { readonly _tag: "Get" }>

export interface Apply {
  /**
   * `apply` without the runtime, for the reads and writes of an authoritative in-memory store
   * (what holders use): one batch of such operations is served in a plain loop. `undefined`:
   * this operation takes the `Effect` way.
   */
  readonly applySync: (space: Space, from: string, now: number, op: Op) => OpResult | undefined
  /** Applies one key operation to this node's store, at the requester's time. */
  readonly apply: (space: Space, from: string, now: number, op: Op) => Effect.Effect<OpResult>
  /** `apply` for callers without the runtime: a read through the store's synchronous view or its callback. */
  readonly applyCallback: (space: Space, from: string, now: number, op: Op, done: (result: OpResult) => void) => void
  /** Removes `key` and leaves a tombstone at `stamp`; whether a live entry was removed. */
  readonly remove: (space: Space, from: string, key: string, stamp: Stamp) => Effect.Effect<boolean, CacheError>
  /** A `Set` from `from`, now in the store: indexes it and tells who must know. */
  readonly stored: (space: Space, from: string, op: SetOp) => void
}

export const make = (p: Partition, near: Near): Apply => {
  const { runFork, self } = p

  const remove = (space: Space, from: string, key: string, stamp: Stamp) =>
    Effect.map(space.store.delete(key), (removed) => {
      bury(space, key, stamp)
      space.index.delete(key)
      near.changed(space, from, key)
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
    near.changed(space, from, op.key)
    if (op.watch && from !== self) near.addReader(space, op.key, from)
    // A fetch holding the key's lease no longer decides its value; its waiters read this one.
    dropLease(space, op.key)
    // This node's own writes follow its ring; a peer's may follow a ring that has since changed.
    if (from !== self && !p.ring.holdersOf(op.key).includes(self)) p.ring.strays = true
  }

  /** The answer of a read of `op.key` that found `entry` here. */
  const found = (space: Space, from: string, op: GetOp, entry: Backend.Entry | undefined): OpResult => {
    if (entry === undefined) return missingHere(space, op.key)
    if (op.watch && from !== self) near.addReader(space, op.key, from)
    return { _tag: "Found", entry: toWire(entry) }
  }

  const applySync = (space: Space, from: string, now: number, op: Op): OpResult | undefined => {
    const sync = space.store.sync
    if (sync === undefined || !sync.authoritative) return undefined
    try {
      switch (op._tag) {
        case "Get": {
          space.clock.now = now
          return found(space, from, op, sync.get(op.key))
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
            near.lost(space, from, op.key)
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

  const settle = <A>(self: Effect.Effect<A, CacheError>, f: (a: A) => OpResult) =>
    Effect.catchAll(
      Effect.map(self, f),
      (error) => Effect.succeed<OpResult>({ _tag: "Failed", message: describe(error) })
    )

  const setHere = (space: Space, from: string, now: number, op: SetOp) =>
    serialized(space, () => {
      space.clock.now = now
      const stamp = stampOf(op)
      if (!isNewer(space, op.key, stamp)) {
        if (op.watch) near.lost(space, from, op.key)
        return Effect.succeed(done)
      }
      // Written before an invalidation of one of its tags (or a flush) that arrived first: in
      // stamp order it replaced what the key shows, then was removed.
      if (isRemoved(space, stamp, op.entry.tags)) {
        if (op.watch) near.lost(space, from, op.key)
        return settle(remove(space, from, op.key, stamp), () => done)
      }
      return settle(space.store.set(op.key, fromWire(op.entry)), () => {
        stored(space, from, op)
        return done
      })
    })

  const apply = (space: Space, from: string, now: number, op: Op): Effect.Effect<OpResult> => {
    const fast = applySync(space, from, now, op)
    if (fast !== undefined) return Effect.succeed(fast)
    space.clock.now = now
    switch (op._tag) {
      case "Get":
        return settle(space.store.get(op.key), (entry) => found(space, from, op, Option.getOrUndefined(entry)))
      case "Has":
        return settle(space.store.has(op.key), (value) => ({ _tag: "Bool", value }))
      case "Peek":
        return settle(space.store.get(op.key), (entry) =>
          Option.isNone(entry)
            ? missingHere(space, op.key)
            : { _tag: "Stamped", entry: toWire(entry.value), origin: space.index.get(op.key)?.origin ?? "" })
      case "Set":
        return setHere(space, from, now, op)
      case "Delete":
        return serialized(space, () => {
          space.clock.now = now
          const stamp: Stamp = { version: op.version, origin: op.origin }
          if (!isNewer(space, op.key, stamp)) return Effect.succeed(no)
          return settle(remove(space, from, op.key, stamp), (removed) => removed ? done : no)
        })
      default:
        return Effect.succeed({ _tag: "Failed", message: `${op._tag} is not a Partitioned operation` })
    }
  }

  const applyCallback = (space: Space, from: string, now: number, op: Op, done: (result: OpResult) => void) => {
    const fast = applySync(space, from, now, op)
    if (fast !== undefined) return done(fast)
    if (op._tag === "Get") {
      space.clock.now = now
      return space.store.getCallback(
        op.key,
        (entry, failure) =>
          done(failure === undefined ? found(space, from, op, entry) : { _tag: "Failed", message: describe(failure) })
      )
    }
    // What the store has only as an Effect (`has`, a write) runs as one.
    runFork(apply(space, from, now, op), { immediate: true }).addObserver((exit) =>
      done(Exit.isSuccess(exit) ? exit.value : { _tag: "Failed", message: describe(Cause.squash(exit.cause)) })
    )
  }

  return { applySync, apply, applyCallback, remove, stored }
}
