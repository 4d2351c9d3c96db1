/**
 * Applying writes on this node: the replica decides (see `replica.ts`), the store follows. A put
 * into an authoritative in-memory store is applied at once, without the runtime.
 */
import type { Backend, CacheError } from "@vela/core"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import { live } from "../live.js"
import type { WireEntry } from "../protocol.js"
import type { Outcome, Stamp } from "../replica.js"
import { fromWire } from "../wire.js"
import type { Replication } from "./replication.js"
import type { Space } from "./space.js"

/** Tells this node's near caches of `change`, if any read the space. */
export const publish = (space: Space, change: Backend.Invalidation) =>
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
export const putNow = (
  { hlc }: Replication,
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

export const applyPut = (r: Replication, space: Space, key: string, entry: WireEntry, origin: string) => {
  const now = putNow(r, space, key, entry, origin)
  return typeof now === "boolean" ? Effect.succeed(now) : now
}

export const applyDelete = ({ hlc }: Replication, space: Space, key: string, at: Stamp) => {
  hlc.observe(at.version)
  return follow(space, key, space.replica.delete(key, at), undefined)
}

/** Removes the keys a tag or a flush took away; returns how many were live here. */
const removeAll = (space: Space, keys: ReadonlyArray<string>) =>
  Effect.reduce(keys, 0, (count, key) => Effect.map(space.store.delete(key), (live) => live ? count + 1 : count))

export const applyTag = ({ hlc }: Replication, space: Space, tag: string, at: Stamp) => {
  hlc.observe(at.version)
  return removeAll(space, space.replica.invalidateTag(tag, at))
}

export const applyFlush = ({ hlc }: Replication, space: Space, at: Stamp) =>
  Effect.suspend(() => {
    hlc.observe(at.version)
    const removed = space.replica.flush(at)
    // Nothing newer than the flush is left: one `clear` does it.
    return space.replica.live === 0 ? space.store.clear : Effect.asVoid(removeAll(space, removed))
  })

export const sweepSpace = ({ tombstoneTtl }: Replication, space: Space) =>
  Effect.suspend(() => {
    const now = space.clock.unsafeCurrentTimeMillis()
    space.replica.expire(now)
    space.replica.forget(live.unsafeCurrentTimeMillis() - tombstoneTtl)
    return space.store.sweep
  })
