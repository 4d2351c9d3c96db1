/**
 * What this node serves to its peers: batches of replicated writes (puts into an open in-memory
 * space in a plain loop), the digest of every namespace, and pulls of the buckets a peer lacks.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { Op, OpResult, PullRequest, ReplicaItem, SpaceDigest } from "../protocol.js"
import { RemoteFailure } from "../protocol.js"
import { describe, frameBudget, toWire, wireBytes } from "../wire.js"
import { applyDelete, applyFlush, applyPut, applyTag, publish, putNow } from "./apply.js"
import type { Replication } from "./replication.js"
import type { Space } from "./space.js"

/** The state of `space` in brief: per-bucket hashes and counts, and its floors. */
export const digestOf = (space: Space): SpaceDigest => {
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

/** Serves peers while the scope is open. */
export const serve = (r: Replication): Effect.Effect<void, never, Scope.Scope> => {
  const { node, self, spaces } = r
  // A pull's reply shares the frame with the RPC envelope: half of it is ample room.
  const replyBudget = frameBudget(node.maxFrameBytes) / 2

  const serveOp = (space: Space, op: Op): Effect.Effect<boolean, unknown> => {
    switch (op._tag) {
      case "ReplicaPut":
        return Effect.tap(
          applyPut(r, space, op.key, op.entry, op.origin),
          (changed) => changed ? publish(space, { _tag: "Keys", keys: [op.key] }) : Effect.void
        )
      case "ReplicaDelete":
        return Effect.tap(
          applyDelete(r, space, op.key, op),
          () => publish(space, { _tag: "Keys", keys: [op.key] })
        )
      case "ReplicaTag":
        return Effect.as(
          Effect.zipRight(applyTag(r, space, op.tag, op), publish(space, { _tag: "Tag", tag: op.tag })),
          true
        )
      case "ReplicaFlush":
        return Effect.as(Effect.zipRight(applyFlush(r, space, op), publish(space, { _tag: "Flush" })), true)
      default:
        return Effect.fail(`${op._tag} is not a Replicated operation`)
    }
  }

  const settle = (effect: Effect.Effect<boolean, unknown>): Effect.Effect<OpResult> =>
    Effect.match(effect, {
      onFailure: (error): OpResult => ({ _tag: "Failed", message: describe(error) }),
      onSuccess: (value): OpResult => value ? yes : no
    })

  const batch = (ops: ReadonlyArray<Op>) =>
    Effect.suspend(() => {
      // Puts into an open in-memory space are applied in a plain loop; anything else (and a
      // put whose near caches must hear of it) goes the Effect way, one at a time, in order.
      const results = new Array<OpResult>(ops.length)
      let i = 0
      const slow = (op: Op): Effect.Effect<OpResult> =>
        Effect.flatMap(Effect.either(spaces.open(op.ns)), (space) =>
          Either.isLeft(space)
            ? Effect.succeed<OpResult>({ _tag: "Failed", message: describe(space.left) })
            : settle(serveOp(space.right, op)))
      const next = (result: OpResult) => {
        results[i++] = result
        return loop()
      }
      const loop = (): Effect.Effect<ReadonlyArray<OpResult>> => {
        while (i < ops.length) {
          const op = ops[i]
          const space = op._tag === "ReplicaPut" ? spaces.ready.get(op.ns) : undefined
          if (space === undefined || space.watched) return Effect.flatMap(slow(op), next)
          const put = op as Extract<Op, { _tag: "ReplicaPut" }>
          const changed = putNow(r, space, put.key, put.entry, put.origin)
          if (typeof changed !== "boolean") return Effect.flatMap(settle(changed), next)
          results[i++] = changed ? yes : no
        }
        return Effect.succeed(results)
      }
      return loop()
    })

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

  return node.serve({
    batch: (_from, _now, ops) => batch(ops),
    invalidateTag: () => Effect.fail(notPartitioned),
    clear: () => Effect.fail(notPartitioned),
    size: () => Effect.fail(notPartitioned),
    lease: () => Effect.fail(notPartitioned),
    release: () => Effect.fail(notPartitioned),
    invalidate: () => Effect.fail(notPartitioned),
    digest: () => Effect.map(spaces.opened, (all) => all.map(digestOf)),
    pull: (request) =>
      Effect.flatMap(spaces.open(request.ns), (space) => itemsOf(space, request)).pipe(
        Effect.mapError((cause) => new RemoteFailure({ message: `pull failed on ${self}: ${describe(cause)}`, cause }))
      )
  })
}

const notPartitioned = new RemoteFailure({ message: "this node serves the Replicated topology", cause: null })

const yes: OpResult = { _tag: "Bool", value: true }
const no: OpResult = { _tag: "Bool", value: false }
