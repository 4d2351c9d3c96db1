/**
 * Routing of one key's operations to its holders: a read asks the owner, then its replicas; a
 * write goes to every holder and is acknowledged once all of them applied it.
 *
 * Reads are written once, as a callback: a key this node holds is read in place (the store's
 * synchronous view, or its callback), a peer's through the data lane's callback, so no read enters
 * the runtime.
 *
 * Failure: a holder that cannot be reached is skipped by reads and fails writes with
 * `NodeUnavailable` until failure detection drops it from the ring. For `handoffGrace` after a
 * change, a read that misses on the owner also asks the other members, so reads stay correct while
 * entries move.
 */
import type { CacheError } from "@vela/core"
import { BackendError, NodeUnavailable } from "@vela/core"
import * as Effect from "effect/Effect"
import * as HashRing from "../../HashRing.js"
import type { Op, OpResult } from "../protocol.js"
import type { Apply } from "./apply.js"
import type { Atomic, AtomicOp } from "./atomic.js"
import type { Near } from "./near.js"
import type { Partition } from "./partition.js"
import type { Space } from "./space.js"
import { missing } from "./space.js"

/** A read's answer: the holder's result, or (with `missing`) why no holder gave one. */
export type ReadDone = (result: OpResult, failure?: CacheError) => void

export interface Route {
  /** Asks the holders of `key` in order until one answers; `NodeUnavailable` when none can. */
  readonly read: (key: string, op: Op, operation: string, done: ReadDone) => void
  /** Applies `op` on every holder; fails unless all of them applied it. */
  readonly writeAll: (key: string, op: Op, operation: string) => Effect.Effect<ReadonlyArray<OpResult>, CacheError>
  /**
   * Applies an atomic operation on the key's owner (in place when that is this node), which copies
   * its write to the replicas; `NodeUnavailable` when the owner cannot be reached or changed under it.
   */
  readonly atomic: (key: string, op: Unviewed, operation: string) => Effect.Effect<OpResult, CacheError>
}

/** An atomic operation before the requester's `view` is added, as it is sent. */
export type Unviewed = AtomicOp extends infer O ? O extends AtomicOp ? Omit<O, "view"> : never : never

/** The routes of the cache of `space`, whose clock is `nowOf`. */
export const make = (
  p: Partition,
  { apply, applyCallback }: Apply,
  atomics: Atomic,
  near: Near,
  space: Space,
  nowOf: () => number
): Route => {
  const { batcher, copies, ring, self } = p

  const exec = (peer: string, now: number, op: Op, done: (result: OpResult | NodeUnavailable) => void) =>
    peer === self ? applyCallback(space, self, now, op, done) : batcher.send(peer, now, op, done)

  const failed = (peer: string, operation: string, result: OpResult & { _tag: "Failed" }) =>
    new BackendError({ backend: `cluster ${peer}`, operation, cause: result.message })

  const read = (key: string, op: Op, operation: string, done: ReadDone) => {
    const now = nowOf()
    const current = ring.current()
    const owner = HashRing.owner(current, key) ?? self
    // The replicas are only ranked when the owner cannot answer.
    let holders: ReadonlyArray<string> | undefined
    const attempt = (i: number, last: unknown) => {
      if (i > 0) holders ??= HashRing.holders(current, key, copies)
      const peer = i === 0 ? owner : holders![i]
      if (peer === undefined) return done(missing, new NodeUnavailable({ node: owner, cause: last }))
      exec(peer, now, op, (result) => {
        if (result instanceof NodeUnavailable) return attempt(i + 1, result)
        if (result._tag === "Failed") return done(missing, failed(peer, operation, result))
        if (isMiss(result) && ring.moving()) return askOthers(current.members.filter((m) => m !== owner), result)
        done(result)
      })
    }
    // While entries move after a membership change, a miss may only mean "not here yet": ask every
    // other member, one after another, before calling it a miss. A copy older than a delete the
    // owner knows of is one a handoff has not dropped yet, not the key's value. They are asked
    // quietly, so no holder knows of this read: the near caches here must not keep what it found.
    const askOthers = (others: ReadonlyArray<string>, miss: OpResult) => {
      const quiet: Op = op._tag === "Get" ? { ...op, watch: false } : op
      const deleted = miss._tag === "Missing" ? miss.deleted : undefined
      const ask = (j: number): void => {
        if (j === others.length) return done(miss)
        exec(others[j], now, quiet, (other) => {
          if (other instanceof NodeUnavailable) return ask(j + 1)
          const found = other._tag === "Found"
            ? deleted === undefined || other.entry.version > deleted.version
            : other._tag === "Bool" && other.value && deleted === undefined
          if (!found) return ask(j + 1)
          if (op._tag === "Get" && op.watch) near.lost(space, self, key)
          done(other)
        })
      }
      ask(0)
    }
    attempt(0, undefined)
  }

  // The copies for other nodes are enqueued first (one waiter for all of them), then this node's
  // copy is applied while they are on the wire.
  const writeAll = (key: string, op: Op, operation: string): Effect.Effect<ReadonlyArray<OpResult>, CacheError> =>
    Effect.suspend(() => {
      const now = nowOf()
      const holders = ring.holdersOf(key)
      const isHere = holders.includes(self)
      const others = isHere ? holders.filter((peer) => peer !== self) : holders
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
      return isHere ? Effect.flatMap(apply(space, self, now, op), collect) : collect(undefined)
    })

  // An owner that does not own the key by its ring applied nothing: the operation is sent once
  // more, if this node's ring has changed owner meanwhile; otherwise the rings disagree for now.
  const atomic = (key: string, unviewed: Unviewed, operation: string): Effect.Effect<OpResult, CacheError> => {
    const attempt = (retried: boolean): Effect.Effect<OpResult, CacheError> =>
      Effect.suspend(() => {
        const owner = ring.ownerOf(key)
        const now = nowOf()
        const op = { ...unviewed, view: ring.view() } as AtomicOp
        const sent = owner === self ? atomics.run(space, self, now, op) : batcher.run(owner, now, op)
        return Effect.flatMap(sent, (result) => {
          if (result._tag === "Failed") return Effect.fail(failed(owner, operation, result))
          if (result._tag !== "Unavailable") return Effect.succeed(result)
          if (!result.applied && !retried && ring.ownerOf(key) !== owner) return attempt(true)
          return Effect.fail(new NodeUnavailable({ node: result.node, cause: result.message }))
        })
      })
    return attempt(false)
  }

  return { read, writeAll, atomic }
}

/** A miss, or a `has` that found nothing. */
const isMiss = (result: OpResult) => result._tag === "Missing" || (result._tag === "Bool" && !result.value)
