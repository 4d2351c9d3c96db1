/**
 * A namespace held on this node by the Partitioned topology, and the order its holder keeps.
 *
 * Order: holders apply the writes and deletes of a key in the order of their stamps (version, then
 * the node that made it), whatever order they arrive in: every holder ends with the same one. A tag
 * invalidation or a flush removes what was written before its stamp, and keeps such writes out for
 * `handoffGrace`; a delete leaves a tombstone for as long.
 * Invariant: a write applies only over an older stamp than the one its key shows here.
 */
import type { Backend } from "@vela/core"
import type * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import { KeyIndex } from "../keyIndex.js"
import { live } from "../live.js"
import type { Op, OpResult } from "../protocol.js"
import type { Stamp } from "../replica.js"
import { compare } from "../replica.js"
import { RequestClock } from "../requestClock.js"
import * as Spaces from "../spaces.js"

/** A stamp that stops counting at `until` (live-clock milliseconds). */
export type Floor = Stamp & { readonly until: number }

export interface Space {
  readonly name: string
  readonly store: Backend.Store
  readonly clock: RequestClock
  readonly index: KeyIndex
  /** How long tombstones and floors are kept: the topology's `handoffGrace`. */
  readonly grace: number
  readonly leases: Map<string, Deferred.Deferred<void>>
  /** Nodes that read a key into a near cache. */
  readonly readers: Map<string, Set<string>>
  /** Keys deleted or expired within `handoffGrace`: the stamp a later write must beat, and until when. */
  readonly tombstones: Map<string, Floor>
  /** Tag invalidations within `handoffGrace`: a write of a key carrying the tag must be newer. */
  readonly tagFloors: Map<string, Floor>
  /** The last flush, while within `handoffGrace`: every write must be newer. */
  flushFloor: Floor | undefined
  /** Writes of keys go through it on the `Effect` way, so no other write comes between a check and its write. */
  readonly writes: Effect.Semaphore
  /** Writes on the `Effect` way in progress; while there are any, every write takes that way. */
  writing: number
  readonly changes: PubSub.PubSub<Backend.Invalidation>
  /** A near cache on this node reads this namespace's invalidations. */
  watched: boolean
}

/** The namespaces held on this node, each opened on `backend` on first use. */
export const makeSpaces = (backend: Backend.Backend["Type"], scope: Scope.Scope, grace: number) =>
  Spaces.make({
    backend,
    scope,
    clock: (open) => new RequestClock(open?.clock.unsafeCurrentTimeMillis() ?? live.unsafeCurrentTimeMillis(), live),
    build: (name, store, clock, changes): Space => ({
      name,
      store,
      clock,
      index: new KeyIndex(),
      grace,
      leases: new Map(),
      readers: new Map(),
      tombstones: new Map(),
      tagFloors: new Map(),
      flushFloor: undefined,
      writes: Effect.unsafeMakeSemaphore(1),
      writing: 0,
      changes,
      watched: false
    })
  })

export const fresh = <A extends { readonly until: number }>(floor: A | undefined): floor is A =>
  floor !== undefined && floor.until > live.unsafeCurrentTimeMillis()

/** The stamp `key` shows here: its stored write, or a recent delete. */
export const stampHere = (space: Space, key: string): Stamp | undefined => {
  const indexed = space.index.get(key)
  if (indexed !== undefined) return indexed
  const tombstone = space.tombstones.get(key)
  return fresh(tombstone) ? tombstone : undefined
}

/** A miss of `key` here, with the stamp of its delete if it was deleted within `handoffGrace`. */
export const missingHere = (space: Space, key: string): OpResult => {
  const here = space.index.get(key) === undefined ? stampHere(space, key) : undefined
  return here === undefined ? missing : { _tag: "Missing", deleted: { version: here.version, origin: here.origin } }
}

/** Whether a write of `key` at `stamp` comes after what the key shows here. */
export const isNewer = (space: Space, key: string, stamp: Stamp): boolean => {
  const here = stampHere(space, key)
  return here === undefined || compare(stamp, here) > 0
}

/** Whether a write at `stamp` of an entry carrying `tags` was made before a flush or an invalidation of one of its tags. */
export const isRemoved = (space: Space, stamp: Stamp, tags: ReadonlyArray<string>): boolean => {
  if (fresh(space.flushFloor) && compare(stamp, space.flushFloor) <= 0) return true
  if (space.tagFloors.size === 0) return false
  for (const tag of tags) {
    const floor = space.tagFloors.get(tag)
    if (fresh(floor) && compare(stamp, floor) <= 0) return true
  }
  return false
}

/** `stamp` as a floor of `space`, kept for `handoffGrace`. */
export const floorOf = (space: Space, stamp: Stamp): Floor => ({
  version: stamp.version,
  origin: stamp.origin,
  until: live.unsafeCurrentTimeMillis() + space.grace
})

export const bury = (space: Space, key: string, stamp: Stamp) => {
  space.tombstones.set(key, floorOf(space, stamp))
}

/** Drops what the sweep leaves behind: expired keys from the index (kept as tombstones), lapsed tombstones and floors. */
export const prune = (space: Space) => {
  for (const [key, expired] of space.index.prune(space.clock.now)) bury(space, key, expired)
  for (const [key, tombstone] of space.tombstones) if (!fresh(tombstone)) space.tombstones.delete(key)
  for (const [tag, floor] of space.tagFloors) if (!fresh(floor)) space.tagFloors.delete(tag)
  if (!fresh(space.flushFloor)) space.flushFloor = undefined
}

/** `write` with no other write of the space between the check it makes and its write. */
export const serialized = <A, E>(space: Space, write: () => Effect.Effect<A, E>): Effect.Effect<A, E> =>
  space.writes.withPermits(1)(Effect.suspend(() => {
    space.writing++
    return Effect.ensuring(
      write(),
      Effect.sync(() => {
        space.writing--
      })
    )
  }))

let lastVersion = 0
/**
 * The version of a write's stamp: wall-clock microseconds, made strictly increasing in this
 * process (and above `after`); the writer's node id breaks ties between processes.
 */
export const nextVersion = (after = 0): number => {
  const candidate = Math.max(live.unsafeCurrentTimeMillis() * 1000, after + 1)
  lastVersion = candidate > lastVersion ? candidate : lastVersion + 1
  return lastVersion
}

/**
 * A version for the owner's write of `key` carrying `tags`: newer than what the key shows here and
 * than any flush or invalidation of those tags here, so that the write lands, whatever the clocks
 * of the nodes that made those.
 */
export const versionAfter = (space: Space, key: string, tags: ReadonlyArray<string>): number =>
  nextVersion(newestHere(space, key, tags))

/**
 * The version of a touch of `key` (carrying `tags`): just above what the key shows here, not the
 * current time, so that a write of the key made before the touch but delivered after it still
 * replaces it (a touch changes the expiry, not the value).
 */
export const versionJustAfter = (space: Space, key: string, tags: ReadonlyArray<string>): number =>
  newestHere(space, key, tags) + 1

/** The newest version a write of `key` carrying `tags` must beat here. */
const newestHere = (space: Space, key: string, tags: ReadonlyArray<string>): number => {
  let after = stampHere(space, key)?.version ?? 0
  if (fresh(space.flushFloor)) after = Math.max(after, space.flushFloor.version)
  for (const tag of tags) {
    const floor = space.tagFloors.get(tag)
    if (fresh(floor)) after = Math.max(after, floor.version)
  }
  return after
}

export type SetOp = Extract<Op, { readonly _tag: "Set" }>

export const stampOf = (op: SetOp): Stamp => ({ version: op.entry.version, origin: op.origin })

export const missing: OpResult = { _tag: "Missing" }
export const done: OpResult = { _tag: "Bool", value: true }
export const no: OpResult = { _tag: "Bool", value: false }
export const later: OpResult = { _tag: "Later" }
