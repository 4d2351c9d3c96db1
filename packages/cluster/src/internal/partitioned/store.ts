/**
 * The store a cache on this node uses: each operation written once, `Backend.makeStore` deriving
 * the rest. Its Effect `get` is the callback read of `route.ts`, and `sync` serves the keys this
 * node owns without any callback at all.
 */
import type { BackendError, CacheError, Stats } from "@vela/core"
import { Backend, Codec, CodecError, WrongType } from "@vela/core"
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as HashRing from "../../HashRing.js"
import type { OpResult, WireEntry } from "../protocol.js"
import type { Stamp } from "../replica.js"
import { setMany } from "../setMany.js"
import { decodeHeld, encodeForWire, heldOf } from "../wire.js"
import type { Apply } from "./apply.js"
import type { Atomic } from "./atomic.js"
import * as FanOut from "./fanOut.js"
import * as Increments from "./increments.js"
import { singleFlight } from "./leases.js"
import type { Near } from "./near.js"
import type { Partition } from "./partition.js"
import * as Route from "./route.js"
import type { Here } from "./serve.js"
import type { SetOp, Space } from "./space.js"
import { nextVersion, prune } from "./space.js"

export const make = (
  p: Partition,
  apply: Apply,
  atomics: Atomic,
  here: Here,
  near: Near,
  space: Space,
  options: Backend.OpenOptions,
  stats: Effect.Effect<Stats.Stats>
): Backend.Store => {
  const { node, self } = p
  const ns = space.name
  const codec: Codec.Codec = options.codec
  const clock = options.clock
  const nowOf = () => clock.unsafeCurrentTimeMillis()
  const fanOut = FanOut.make(p, here, space, nowOf)

  const { atomic, read, writeAll } = Route.make(p, apply, atomics, near, space, nowOf)

  /** The decoded entry of `wire`, as the requester reads it. */
  const decode = (key: string, wire: WireEntry): Effect.Effect<Backend.Entry, CodecError> =>
    Effect.map(
      codec.decode(key, wire.value),
      (value) => ({ value, expiresAt: wire.expiresAt, tags: wire.tags, version: wire.version })
    )

  /** What the owner showed of `key`: an entry with its stamp, or no live entry. */
  const snapshotOf = (key: string, result: OpResult): Effect.Effect<Backend.Snapshot | undefined, CodecError> =>
    result._tag === "Stamped"
      ? Effect.map(decode(key, result.entry), (entry) => ({
        entry,
        token: { version: result.entry.version, origin: result.origin } satisfies Stamp
      }))
      : Effect.succeed(undefined)

  const readForUpdate = (key: string) =>
    Effect.flatMap(
      atomic(key, { _tag: "ReadForUpdate", ns, key }, "readForUpdate"),
      (result) => Effect.map(snapshotOf(key, result), Option.fromNullable)
    )

  /**
   * `compareAndSet` that also says what the key holds after it: the write it made, or what the
   * owner showed instead (the base of the next attempt, without reading again).
   */
  const compareAndSet: Increments.CompareAndSet = (key, expected, next) =>
    Effect.suspend(() => {
      const token = expected === undefined ? null : expected.token
      if (token !== null && !isStamp(token)) {
        return Effect.die(new TypeError("compareAndSet: a snapshot of another store"))
      }
      let wire: WireEntry | null = null
      if (next !== undefined) {
        const encoded = encodeForWire(codec, ns, key, next, 0, node.maxFrameBytes)
        if (!("value" in encoded)) return Effect.fail(encoded)
        wire = encoded
      }
      const op: Route.Unviewed = { _tag: "CompareAndSet", ns, key, expected: token, next: wire, watch: space.watched }
      type Outcome = Effect.Effect.Success<ReturnType<Increments.CompareAndSet>>
      return Effect.flatMap(atomic(key, op, "compareAndSet"), (result): Effect.Effect<Outcome, CodecError> => {
        if (result._tag === "Written") {
          const stamp: Stamp = { version: result.version, origin: result.origin }
          return Effect.succeed({
            landed: true,
            holds: next === undefined ? undefined : { entry: { ...next, version: result.version }, token: stamp }
          })
        }
        if (result._tag === "Bool") return Effect.succeed({ landed: result.value, holds: undefined })
        return Effect.map(snapshotOf(key, result), (holds) => ({ landed: false, holds }))
      })
    })

  /** The write of `entry`, or why it cannot be made: its value does not encode, or no frame holds it. */
  const setOp = (key: string, entry: Backend.Entry, version = nextVersion()): SetOp | CodecError | BackendError => {
    const wire = encodeForWire(codec, ns, key, entry, version, node.maxFrameBytes)
    return "value" in wire ? { _tag: "Set", ns, key, entry: wire, origin: self, watch: space.watched } : wire
  }

  /** Writes `entry` at `version` on every holder; a holder that has seen a newer write keeps it. */
  const setAt = (key: string, entry: Backend.Entry, version: number): Effect.Effect<void, CacheError> =>
    Effect.suspend(() => {
      const op = setOp(key, entry, version)
      return op._tag === "Set" ? Effect.asVoid(writeAll(key, op, "set")) : Effect.fail(op)
    })

  const sync = ownedView(p, space, codec, clock)
  const invalidations = Stream.fromPubSub(space.changes)
  const store = Backend.makeStore({
    // Whoever asks for the invalidations keeps values nearby (a near cache): from then on this
    // node registers as a reader of what it reads and writes, so holders tell it of changes.
    // Set on access, not on subscription, which may start after the first write.
    get invalidations() {
      space.watched = true
      return invalidations
    },
    sync,
    stats,
    getCallback: (key, done) =>
      read(key, { _tag: "Get", ns, key, watch: space.watched }, "get", (result, failure) => {
        if (failure !== undefined) return done(undefined, failure)
        if (result._tag !== "Found") return done(undefined)
        const value = codec.decode(key, result.entry.value)
        if (Either.isLeft(value)) return done(undefined, value.left)
        const { expiresAt, tags, version } = result.entry
        done({ value: value.right, expiresAt, tags, version })
      }),
    has: (key) =>
      Effect.async((resume) =>
        read(key, { _tag: "Has", ns, key }, "has", (result, failure) =>
          resume(
            failure !== undefined ? Effect.fail(failure) : Effect.succeed(result._tag === "Bool" && result.value)
          ))
      ),
    set: (key, entry) => setAt(key, entry, nextVersion()),
    delete: (key) =>
      Effect.map(
        writeAll(key, { _tag: "Delete", ns, key, version: nextVersion(), origin: self }, "delete"),
        (results) => results.some((r) => r._tag === "Bool" && r.value)
      ),
    readForUpdate,
    compareAndSet: (key, expected, next) => Effect.map(compareAndSet(key, expected, next), (cas) => cas.landed),
    take: (key) =>
      Effect.flatMap(
        atomic(key, { _tag: "Take", ns, key }, "take"),
        (result) => result._tag === "Found" ? Effect.asSome(decode(key, result.entry)) : Effect.succeedNone
      ),
    touch: (key, expiresAt) =>
      Effect.map(
        atomic(key, { _tag: "Touch", ns, key, expiresAt }, "touch"),
        (result) => result._tag === "Bool" && result.value
      ),
    // With a codec that keeps numbers as JSON text the owner adds to them itself: one request, no retries.
    increment: Codec.numbersAsJson(codec)
      ? (key, by, created) =>
        Effect.suspend(() => {
          const checked = encodeForWire(codec, ns, key, { ...created, value: by, version: 0 }, 0, node.maxFrameBytes)
          if (!("value" in checked)) return Effect.fail(checked)
          const op: Route.Unviewed = { _tag: "Increment", ns, key, by, ...created }
          return Effect.flatMap(atomic(key, op, "increment"), (result) =>
            result._tag === "Sum"
              ? Effect.succeed(result.value)
              : Effect.fail(new WrongType({ key, operation: "increment", expected: "a finite number" })))
        })
      : Increments.make(p, compareAndSet, readForUpdate),
    invalidateTag: fanOut.invalidateTag,
    clear: fanOut.clear,
    size: fanOut.size,
    sweep: Effect.suspend(() => {
      space.clock.now = nowOf()
      return Effect.tap(space.store.sweep, () => prune(space))
    }),
    // All keys at once: the batcher turns them into one RPC per peer.
    getMany: (keys) => Effect.forEach(keys, (key) => store.get(key), { concurrency: "unbounded" }),
    setMany: (entries) => setMany(entries, setOp, (op) => writeAll(op.key, op, "set")),
    deleteMany: (keys) =>
      Effect.map(
        Effect.forEach(keys, (key) => store.delete(key), { concurrency: "unbounded" }),
        (removed) => removed.filter(Boolean).length
      ),
    singleFlight: singleFlight(p, space, (key) => store.get(key), setAt)
  })
  return store
}

/**
 * Keys this node owns, read in place without entering the runtime; anything else (and any doubt)
 * goes to `getCallback`, so the view is not `authoritative`.
 */
const ownedView = (
  { ring, self }: Partition,
  space: Space,
  codec: Codec.Codec,
  clock: Clock.Clock
): Backend.SyncStore | undefined => {
  const localSync = space.store.sync
  if (localSync === undefined) return undefined
  return {
    authoritative: false,
    get: (key) => {
      space.clock.now = clock.unsafeCurrentTimeMillis()
      const held = localSync.get(key)
      if (held === undefined) return undefined
      // Whether this node owns the key, kept with the held value while the ring stays the same:
      // a ring lookup costs about a quarter of a local read.
      const value = heldOf(held)
      const current = ring.current()
      let owned = value.owned
      if (owned === undefined || owned.ring !== current) {
        value.owned = owned = { ring: current, here: HashRing.owner(current, key) === self }
      }
      if (!owned.here) return undefined
      const entry = decodeHeld(codec, key, held)
      return entry instanceof CodecError ? undefined : entry
    }
  }
}

const isStamp = (token: unknown): token is Stamp =>
  typeof token === "object" && token !== null && typeof (token as Stamp).version === "number" &&
  typeof (token as Stamp).origin === "string"
