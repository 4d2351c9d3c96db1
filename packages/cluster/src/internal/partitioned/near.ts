/**
 * Near caches over the Partitioned topology: a holder remembers which nodes read a key for a near
 * cache and tells them when the key changes, a few keys per RPC (every invalidation of one turn of
 * the event loop for one reader leaves together); changes made by peers reach this node's own near
 * caches through the space's `changes`. An invalidation that does not reach its reader (stalled
 * past `requestTimeout`, or cut off for a moment) is sent again, up to six times backing off from
 * 250 ms: a near cache that never hears of a change would serve the old value until its `ttl`.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Schedule from "effect/Schedule"
import type { Change } from "../protocol.js"
import type { Partition } from "./partition.js"
import type { Space } from "./space.js"

export interface Near {
  /** `reader` keeps `key` in a near cache: tell it when the key changes. */
  readonly addReader: (space: Space, key: string, reader: string) => void
  /** A key changed on this node by `from`: tell its local near caches and the nodes that read it. */
  readonly changed: (space: Space, from: string, key: string) => void
  /**
   * A value the near caches of `from` must not keep: a write that a newer one had already replaced,
   * or a read of a copy beyond the key's holders (no holder would tell of its next change).
   */
  readonly lost: (space: Space, from: string, key: string) => void
  /** A peer's tag invalidation or flush, for this node's near caches. */
  readonly notify: (ns: string, from: string, change: Change) => Effect.Effect<void>
}

const redelivery = Schedule.intersect(Schedule.exponential("250 millis"), Schedule.recurs(6))

export const make = ({ node, runFork, self, spaces }: Partition): Near => {
  const pending = new Map<string, Map<string, Set<string>>>()

  /** Queues an invalidation of `key` for the near caches of `reader`, sent with the others of this turn. */
  const tell = (reader: string, ns: string, key: string) => {
    let byNs = pending.get(reader)
    if (byNs === undefined) {
      pending.set(reader, byNs = new Map())
      setImmediate(flush, reader)
    }
    let keys = byNs.get(ns)
    if (keys === undefined) byNs.set(ns, keys = new Set())
    keys.add(key)
  }
  const flush = (reader: string) => {
    const byNs = pending.get(reader)
    pending.delete(reader)
    if (byNs === undefined) return
    for (const [ns, keys] of byNs) {
      runFork(
        node.call(reader, (client) => client.Invalidate({ ns, change: { _tag: "Keys", keys: Array.from(keys) } })).pipe(
          Effect.retry(redelivery),
          Effect.ignore
        )
      )
    }
  }

  return {
    addReader: (space, key, reader) => {
      let readers = space.readers.get(key)
      if (readers === undefined) space.readers.set(key, readers = new Set())
      readers.add(reader)
    },
    changed: (space, from, key) => {
      if (from !== self && space.watched) runFork(PubSub.publish(space.changes, { _tag: "Keys", keys: [key] }))
      const readers = space.readers.get(key)
      if (readers === undefined) return
      space.readers.delete(key)
      for (const reader of readers) {
        if (reader !== from && reader !== self) tell(reader, space.name, key)
      }
    },
    lost: (space, from, key) => {
      if (from !== self) tell(from, space.name, key)
      else if (space.watched) runFork(PubSub.publish(space.changes, { _tag: "Keys", keys: [key] }))
    },
    notify: (ns, from, change) =>
      Effect.suspend(() => {
        if (from === self) return Effect.void
        return Effect.flatMap(spaces.find(ns), (space) =>
          Option.isSome(space) && space.value.watched ? PubSub.publish(space.value.changes, change) : Effect.void)
      }).pipe(Effect.ignore)
  }
}
