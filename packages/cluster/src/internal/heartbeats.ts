/**
 * Gossip: every `heartbeatInterval` this node sends its live view to every peer it knows and to its
 * seeds (those of its options and of a `Discovery`), and learns theirs, so knowing one live seed is
 * enough to learn everyone. The dead are forgotten after ten failure timeouts unless they are seeds.
 * When the scope closes the node stops gossiping and tells every live peer it leaves.
 */
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import type * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Discovery } from "../Discovery.js"
import type { Connections } from "./connections.js"
import { live } from "./live.js"
import type { Membership } from "./membership.js"

export interface HeartbeatOptions {
  readonly heartbeatInterval: number
  readonly failureTimeout: number
  readonly seeds: ReadonlyArray<string>
  readonly discovery: Option.Option<Discovery["Type"]>
}

/** Gossips while the scope is open; announces the leave as it closes. */
export const start = (
  membership: Membership,
  connections: Connections,
  options: HeartbeatOptions
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { call } = connections
    const { discovery, failureTimeout, seeds } = options
    const { peers, self } = membership
    const now = () => live.unsafeCurrentTimeMillis()
    const inflight = new Set<string>()
    const gossips = yield* FiberSet.make<void, never>()
    const gossipWith = (target: string) =>
      Effect.suspend(() => {
        inflight.add(target)
        return call(target, (client) => client.Gossip({ from: self, members: membership.view() })).pipe(
          Effect.tap((records) => {
            const responder = records[0]
            if (responder !== undefined) membership.heard(responder)
            membership.learn(records)
          }),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => inflight.delete(target)))
        )
      })

    const round = Effect.gen(function*() {
      membership.ticked(now())
      const discovered = discovery._tag === "Some" ? yield* discovery.value.seeds : []
      const at = now()
      const targets = new Set<string>()
      for (const [peerId, peer] of peers) {
        if (peer.leftIncarnation >= peer.incarnation) continue
        // The dead are forgotten after a while; a restarted one finds us again through its seeds.
        const seeded = seeds.includes(peerId) || discovered.includes(peerId)
        if (at - Math.max(peer.lastSeen, peer.lastHeard) > 10 * failureTimeout && !seeded) {
          peers.delete(peerId)
          continue
        }
        targets.add(peerId)
      }
      for (const seed of discovered.length === 0 ? seeds : [...seeds, ...discovered]) {
        const known = peers.get(seed)
        if (seed !== self.id && (known === undefined || !membership.isLive(known, at))) targets.add(seed)
      }
      for (const target of targets) {
        if (!inflight.has(target)) yield* FiberSet.run(gossips, gossipWith(target))
      }
      yield* membership.publish
    })

    // Leaving: stop gossiping, tell every live peer, then the pool and the server close.
    yield* Effect.addFinalizer(() =>
      Effect.forEach(
        membership.liveIds(now()).filter((m) => m !== self.id),
        (peer) => Effect.ignore(call(peer, (client) => client.Leave({ member: self })).pipe(Effect.timeout(1000))),
        { concurrency: "unbounded", discard: true }
      ).pipe(Effect.withClock(live))
    )
    yield* round.pipe(
      Effect.repeat(Schedule.spaced(options.heartbeatInterval)),
      Effect.interruptible,
      Effect.forkScoped
    )
  })
