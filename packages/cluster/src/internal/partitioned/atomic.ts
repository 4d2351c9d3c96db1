/**
 * The atomic operations on the owner of their key (`ReadForUpdate`, `CompareAndSet`, `Take`,
 * `Touch`, `Increment`): the owner orders them with the key's other writes (in the space's write section),
 * gives what they write or delete a fresh stamp, newer than anything the key shows here (a touch's
 * only just newer: it must not win over a concurrent put of a new value), and sends
 * that write on to the key's replicas as a put or a delete is sent, answering once all applied it.
 * The token of `ReadForUpdate` and `CompareAndSet` is the stamp of the key's write on its owner.
 *
 * Ownership: a node applies them only to keys it owns by its own ring, for requesters that see
 * the same members (`view`), and not before it met the cluster of its seeds; otherwise it answers
 * `Unavailable` with nothing applied (the requester fails with `NodeUnavailable`). Left open: a
 * node that sees some members but not yet all (while it joins) may own a key by its ring that
 * another member holds, and apply its own operation there without that member's copy. For `handoffGrace` after a membership change, the owner first
 * asks the other members for the key and keeps a newer copy than its own (a handoff that has not
 * arrived), so the operation applies to the key's latest write, not to a miss.
 *
 * Replies: a batch's reply must fit in a frame; an operation whose answer would not fit answers
 * `Later` before it changes anything, so it is applied once, when it is sent again.
 */
import type { Backend, CacheError, NodeUnavailable } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Op, OpResult, WireEntry } from "../protocol.js"
import type { Stamp } from "../replica.js"
import { compare } from "../replica.js"
import { describe, fromWire, heldOf, replyWeight, toWire } from "../wire.js"
import type { Apply } from "./apply.js"
import type { Partition } from "./partition.js"
import type { SetOp, Space } from "./space.js"
import { done, later, missing, no, serialized, versionAfter, versionJustAfter } from "./space.js"

export type AtomicOp = Extract<
  Op,
  { readonly _tag: "ReadForUpdate" | "CompareAndSet" | "Take" | "Touch" | "Increment" }
>

export const isAtomic = (op: Op): op is AtomicOp =>
  op._tag === "ReadForUpdate" || op._tag === "CompareAndSet" || op._tag === "Take" || op._tag === "Touch" ||
  op._tag === "Increment"

/** The text `Codec.json` makes of a finite number, and only of one. */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/

/**
 * An atomic operation applied on the owner: its answer, and what waits for the replicas, then
 * answers (`undefined`: it wrote nothing).
 */
export interface Applied {
  readonly result: OpResult
  readonly replicated: Effect.Effect<OpResult> | undefined
}

export interface Atomic {
  /**
   * For `handoffGrace` after a membership change (otherwise nothing): keeps the newest copy of
   * `key` the other members have, if newer than this node's. Run before `apply`.
   */
  readonly catchUp: (space: Space, now: number, key: string) => Effect.Effect<void>
  /** Applies `op` here as its key's owner, its answer taking at most `room` bytes of the reply. */
  readonly apply: (space: Space, from: string, now: number, op: AtomicOp, room: number) => Effect.Effect<Applied>
  /** `catchUp`, `apply`, then waiting for the replicas. */
  readonly run: (space: Space, from: string, now: number, op: AtomicOp) => Effect.Effect<OpResult>
}

export const make = (p: Partition, apply: Apply): Atomic => {
  const { ring, self } = p

  const answered = (result: OpResult): Applied => ({ result, replicated: undefined })

  /** Sends the owner's write `op` of `key` to the key's other holders; `result` once they all applied it. */
  const replicate = (key: string, now: number, op: Op, result: OpResult): Effect.Effect<OpResult> => {
    const others = ring.holdersOf(key).filter((peer) => peer !== self)
    if (others.length === 0) return Effect.succeed(result)
    const sent = p.leaf.submit(others, now, op, true) as Effect.Effect<ReadonlyArray<OpResult>, NodeUnavailable>
    return Effect.match(sent, {
      onFailure: (error): OpResult => ({
        _tag: "Unavailable",
        node: error.node,
        message: `applied on the owner ${self}, not copied to ${error.node}: ${describe(error.cause)}`,
        applied: true
      }),
      onSuccess: (results) => results.find((r) => r._tag === "Failed") ?? result
    })
  }

  const catchUp: Atomic["catchUp"] = (space, now, key) => {
    const others = ring.moving() ? ring.current().members.filter((m) => m !== self) : []
    if (others.length === 0) return Effect.void
    const ns = space.name
    return Effect.flatMap(
      Effect.orElseSucceed(p.leaf.submit(others, now, { _tag: "Peek", ns, key }, false), () => []),
      (results) =>
        Effect.forEach(results, (result, i) => {
          if (result._tag === "Stamped") {
            return apply.apply(space, others[i], now, {
              _tag: "Set",
              ns,
              key,
              entry: result.entry,
              origin: result.origin,
              watch: false
            })
          }
          if (result._tag === "Missing" && result.deleted !== undefined) {
            return apply.apply(space, others[i], now, { _tag: "Delete", ns, key, ...result.deleted })
          }
          return Effect.void
        }, { discard: true })
    )
  }

  /** Writes `wire` as the owner's write of `key`; what to send to the replicas. */
  const write = (space: Space, from: string, key: string, wire: WireEntry, watch: boolean) => {
    const op: SetOp = { _tag: "Set", ns: space.name, key, entry: wire, origin: self, watch }
    return Effect.as(
      Effect.tap(space.store.set(key, fromWire(wire)), () => apply.stored(space, from, op)),
      { ...op, watch: false } as Op
    )
  }

  /** Deletes `key` as the owner's write; what to send to the replicas. */
  const remove = (space: Space, from: string, key: string) => {
    const stamp: Stamp = { version: versionAfter(space, key, []), origin: self }
    return Effect.as(apply.remove(space, from, key, stamp), { _tag: "Delete", ns: space.name, key, ...stamp } as Op)
  }

  /** `result`, or `Later` when it does not fit in `room`. */
  const fits = (result: OpResult, room: number) => replyWeight(result) > room ? later : result

  /** The operation on what the key shows here (in the write section): its answer, and the write to copy, if any. */
  const decide = (
    space: Space,
    from: string,
    op: AtomicOp,
    room: number,
    entry: Backend.Entry | undefined
  ): Effect.Effect<readonly [OpResult, Op | undefined], CacheError> => {
    const { key } = op
    const stamp: Stamp | undefined = entry === undefined
      ? undefined
      : { version: entry.version, origin: space.index.get(key)?.origin ?? "" }
    const shown = (): OpResult =>
      entry === undefined ? missing : fits({ _tag: "Stamped", entry: toWire(entry), origin: stamp!.origin }, room)
    const written = (op: Op): readonly [OpResult, Op] => [
      op._tag === "Set"
        ? { _tag: "Written", version: op.entry.version, origin: self }
        : op._tag === "Delete"
        ? { _tag: "Written", version: op.version, origin: self }
        : done,
      op
    ]
    switch (op._tag) {
      case "ReadForUpdate":
        return Effect.succeed([shown(), undefined])
      case "Take": {
        if (entry === undefined) return Effect.succeed([missing, undefined])
        const result = fits({ _tag: "Found", entry: toWire(entry) }, room)
        if (result === later) return Effect.succeed([later, undefined])
        return Effect.map(remove(space, from, key), (copy) => [result, copy] as const)
      }
      case "Touch": {
        if (entry === undefined) return Effect.succeed([no, undefined])
        const wire: WireEntry = {
          value: heldOf(entry).text,
          expiresAt: op.expiresAt,
          tags: entry.tags,
          version: versionJustAfter(space, key, entry.tags)
        }
        return Effect.map(write(space, from, key, wire, false), (copy) => [done, copy] as const)
      }
      case "Increment": {
        const text = entry === undefined ? "0" : heldOf(entry).text
        const sum = JSON_NUMBER.test(text) ? (JSON.parse(text) as number) + op.by : NaN
        if (!Number.isFinite(sum)) return Effect.succeed([no, undefined])
        const { expiresAt, tags } = entry ?? op
        const wire: WireEntry = { value: JSON.stringify(sum), expiresAt, tags, version: versionAfter(space, key, tags) }
        return Effect.map(write(space, from, key, wire, false), (copy) => [{ _tag: "Sum", value: sum }, copy] as const)
      }
      case "CompareAndSet": {
        const { expected, next } = op
        const matches = expected === null
          ? stamp === undefined
          : stamp !== undefined && compare(stamp, expected) === 0
        if (!matches) return Effect.succeed([shown(), undefined])
        if (next === null) {
          return entry === undefined ? Effect.succeed([done, undefined]) : Effect.map(remove(space, from, key), written)
        }
        const wire: WireEntry = { ...next, version: versionAfter(space, key, next.tags) }
        return Effect.map(write(space, from, key, wire, op.watch), written)
      }
    }
  }

  const failed = (error: unknown): Applied => answered({ _tag: "Failed", message: describe(error) })

  const applyHere: Atomic["apply"] = (space, from, now, op, room) => {
    // Every answer but an entry takes this much: only an entry's is measured.
    if (replyWeight(done) > room) return Effect.succeed(answered(later))
    // A requester that sees other members routes by another ring (one of the two has not caught
    // up yet); a node with seeds that has not met them yet owns every key by its own ring, wrongly.
    if (ring.ownerOf(op.key) !== self || (from !== self && op.view !== ring.view()) || (p.node.seeded && !ring.met)) {
      return Effect.succeed(answered({
        _tag: "Unavailable",
        node: self,
        message: `${self} does not own key ${JSON.stringify(op.key)} by its view of the members`,
        applied: false
      }))
    }
    const decided = serialized(space, () =>
      Effect.suspend(() => {
        space.clock.now = now
        return Effect.flatMap(
          space.store.get(op.key),
          (entry) => decide(space, from, op, room, Option.getOrUndefined(entry))
        )
      }))
    return decided.pipe(
      Effect.map(([result, copy]): Applied =>
        copy === undefined ? answered(result) : { result, replicated: replicate(op.key, now, copy, result) }
      ),
      Effect.catchAll((error) => Effect.succeed(failed(error)))
    )
  }

  return {
    catchUp,
    apply: applyHere,
    run: (space, from, now, op) =>
      catchUp(space, now, op.key).pipe(
        Effect.zipRight(applyHere(space, from, now, op, Infinity)),
        Effect.flatMap((applied) => applied.replicated ?? Effect.succeed(applied.result))
      )
  }
}
