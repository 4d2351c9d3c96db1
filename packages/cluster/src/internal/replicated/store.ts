/**
 * The store a cache on this node uses: reads are local (the backend store's synchronous path, as
 * fast as `Local`); writes apply locally, then go to every live peer, and are acknowledged once
 * every live peer answered (a peer that failed or timed out is left to anti-entropy).
 *
 * Reads: written once, as a callback over the local store (its synchronous view when it is an
 * authoritative one, so no read enters the runtime); the Effect `get` is that callback.
 */
import type { BackendError, CacheError, Codec, Stats } from "@vela/core"
import { Backend, CodecError } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Op } from "../protocol.js"
import { touchOf } from "../replica.js"
import { setMany } from "../setMany.js"
import { decodeHeld, encodeForWire, toWire } from "../wire.js"
import { applyDelete, applyFlush, applyPut, applyTag, sweepSpace } from "./apply.js"
import type { Replication } from "./replication.js"
import { peers, stamp } from "./replication.js"
import type { Space } from "./space.js"

type PutOp = Extract<Op, { readonly _tag: "ReplicaPut" }>

export const make = (
  r: Replication,
  space: Space,
  options: Backend.OpenOptions,
  stats: Effect.Effect<Stats.Stats>
): Backend.Store => {
  const { batcher, hlc, node, self } = r
  const ns = space.name
  const codec: Codec.Codec = options.codec
  const local = space.store
  const localSync = local.sync

  /** Sends `op` to every live peer; waits for their answers, and leaves the failed ones to anti-entropy. */
  const replicate = (op: Op) =>
    Effect.suspend(() => {
      const targets = peers(r)
      if (targets.length === 0) return Effect.void
      // One waiter for every peer; an unreachable peer is reported, not failed on.
      return Effect.asVoid(batcher.submit(targets, 0, op, false))
    })

  /** The put of `entry`, or why it cannot be made: its value does not encode, or no frame holds it. */
  const putOp = (key: string, entry: Backend.Entry): PutOp | CodecError | BackendError => {
    const wire = encodeForWire(codec, ns, key, entry, hlc.next(), node.maxFrameBytes)
    return "value" in wire ? { _tag: "ReplicaPut", ns, key, entry: wire, origin: self } : wire
  }

  const write = (op: PutOp) => Effect.zipRight(applyPut(r, space, op.key, op.entry, op.origin), replicate(op))

  const remove = (key: string) =>
    Effect.suspend(() => {
      const at = stamp(r)
      return Effect.zipLeft(applyDelete(r, space, key, at), replicate({ _tag: "ReplicaDelete", ns, key, ...at }))
    })

  /** The held entry of `key`, as the local store keeps it (the writer's text). */
  const readHeld: Backend.GetCallback = localSync?.authoritative === true
    ? (key, done) => done(localSync.get(key))
    : local.getCallback

  /**
   * Touch: a put of the touched write's value at a stamp right after that write's, before any other
   * write of the key (`touchOf`), so that it never replaces a write it did not see, and loses to
   * every later one, wherever they meet.
   */
  const touch = (key: string, expiresAt: number | null, again = true): Effect.Effect<boolean, CacheError> =>
    Effect.flatMap(local.get(key), (found) => {
      const meta = space.replica.get(key)
      if (Option.isNone(found) || meta === undefined || meta.tombstone) return Effect.succeed(false)
      const held = found.value
      // A write came between the two reads: touch that one. Twice: a newer write is landing, which
      // a touch ordered before it loses to anyway.
      if (held.version !== meta.version) return again ? touch(key, expiresAt, false) : Effect.succeed(true)
      const { origin } = touchOf(meta, hlc.next(), self)
      const op: PutOp = { _tag: "ReplicaPut", ns, key, entry: { ...toWire(held), expiresAt }, origin }
      return Effect.as(write(op), true)
    })

  const invalidations = Stream.fromPubSub(space.changes)
  const store = Backend.makeStore({
    // Whoever asks for the invalidations keeps values nearby (a near cache).
    get invalidations() {
      space.watched = true
      return invalidations
    },
    sync: localSync === undefined ? undefined : {
      authoritative: localSync.authoritative,
      get: (key) => {
        const held = localSync.get(key)
        if (held === undefined) return undefined
        const entry = decodeHeld(codec, key, held)
        return entry instanceof CodecError ? undefined : entry
      }
    },
    stats,
    getCallback: (key, done) =>
      readHeld(key, (held, failure) => {
        if (failure !== undefined || held === undefined) return done(undefined, failure)
        const entry = decodeHeld(codec, key, held)
        return entry instanceof CodecError ? done(undefined, entry) : done(entry)
      }),
    has: local.has,
    set: (key, entry) =>
      Effect.suspend(() => {
        const op = putOp(key, entry)
        return op._tag === "ReplicaPut" ? write(op) : Effect.fail(op)
      }),
    delete: remove,
    touch: (key, expiresAt) => touch(key, expiresAt),
    unsupported: {
      store: "Replicated",
      reason: "every node takes writes and keeps the newest by its stamp: no single node orders a key's " +
        "writes, so a read-modify-write (take, increment, update, compare-and-set) could lose a concurrent write"
    },
    invalidateTag: (tag) =>
      Effect.suspend(() => {
        const at = stamp(r)
        return Effect.zipLeft(applyTag(r, space, tag, at), replicate({ _tag: "ReplicaTag", ns, tag, ...at }))
      }),
    clear: Effect.suspend(() => {
      const at = stamp(r)
      return Effect.zipRight(applyFlush(r, space, at), replicate({ _tag: "ReplicaFlush", ns, ...at }))
    }),
    size: local.size,
    sweep: sweepSpace(r, space),
    getMany: (keys) => Effect.forEach(keys, (key) => store.get(key)),
    setMany: (entries) => setMany(entries, putOp, write),
    deleteMany: (keys) =>
      Effect.map(
        Effect.forEach(keys, remove, { concurrency: "unbounded" }),
        (removed) => removed.filter(Boolean).length
      )
  })
  return store
}
