/** The counters of the caches open in this process, by namespace, and their sum over the cluster. */
import { Stats } from "@vela/core"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Connections } from "./connections.js"

export interface SharedStats {
  /** The counters of the caches named `ns` in this process, added up. */
  readonly here: (ns: string) => Stats.Stats
  /** Shares `counters` under `ns` while the scope is open. */
  readonly share: (ns: string, counters: () => Stats.Stats) => Effect.Effect<void, never, Scope.Scope>
}

export const make = (): SharedStats => {
  const shared = new Map<string, Set<() => Stats.Stats>>()
  return {
    here: (ns) => Stats.sum(Array.from(shared.get(ns) ?? [], (read) => read())),
    share: (ns, counters) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          let set = shared.get(ns)
          if (set === undefined) shared.set(ns, set = new Set())
          set.add(counters)
        }),
        () =>
          Effect.sync(() => {
            const set = shared.get(ns)
            set?.delete(counters)
            if (set?.size === 0) shared.delete(ns)
          })
      )
  }
}

/**
 * The counters of `ns` on this node and on every one of `peers()` (read when it runs), added up; a
 * peer that does not answer within the request timeout is left out.
 */
export const everywhere = (
  stats: SharedStats,
  ns: string,
  peers: () => ReadonlyArray<string>,
  call: Connections["call"]
): Effect.Effect<Stats.Stats> =>
  Effect.suspend(() =>
    Effect.map(
      Effect.forEach(peers(), (peer) => Effect.option(call(peer, (client) => client.Stats({ ns }))), {
        concurrency: "unbounded"
      }),
      (remote) =>
        Stats.sum([stats.here(ns), ...remote.flatMap((answer) => answer._tag === "Some" ? [answer.value] : [])])
    )
  )
