/**
 * Who is in the cluster, as this node sees it. A peer is live while this node has heard from it
 * directly (a gossip answered or received) within `failureTimeout`; liveness is never taken from
 * hearsay, which only makes a peer known (and so gossiped with). `incarnation` (the start time)
 * tells a restarted process at the same address apart from the one that left, so it rejoins.
 * Invariant: `members` holds this node and exactly the peers heard from within `failureTimeout` (of
 * listening: see Pauses) that have not left, sorted by id.
 *
 * Pauses: silence counts only while this node could listen. When its own heartbeat comes more than
 * half a `failureTimeout` late (its event loop was blocked, a long GC), the peers' silence meanwhile
 * says nothing about them: each has `failureTimeout` from then on to be heard from (Cassandra's
 * failure detector ignores local pauses the same way). Without it, one blocked turn of the loop
 * dropped every peer at once, and the ring moved twice (every key handed over) for nothing.
 */
import * as Effect from "effect/Effect"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { live } from "./live.js"
import type { MemberRecord } from "./protocol.js"

/** What this node knows of one peer. */
export interface PeerState {
  incarnation: number
  /** Live-clock millis of the last direct contact; 0 before any. */
  lastHeard: number
  /** The incarnation that announced its leave, or -1. */
  leftIncarnation: number
  /** When it was first or last heard of, for forgetting the dead. */
  lastSeen: number
}

export interface Membership {
  readonly self: MemberRecord
  /** Every peer known, live or not, by id. */
  readonly peers: Map<string, PeerState>
  /** Live members, this node included, sorted by id. */
  readonly members: SubscriptionRef.SubscriptionRef<ReadonlyArray<string>>
  /** The value of `members` right now; the same array until membership changes. */
  readonly current: () => ReadonlyArray<string>
  readonly isLive: (peer: PeerState, at: number) => boolean
  /** The live members at `at`, this node included, sorted; computed, not published. */
  readonly liveIds: (at: number) => Array<string>
  /** This node and its live peers, as sent in a gossip. */
  readonly view: () => ReadonlyArray<MemberRecord>
  /** Recomputes the live set and publishes it when it changed. */
  readonly publish: Effect.Effect<void>
  /** The heartbeat ran at `at`: a pause since the last one (`ticked` late) restarts every peer's silence. */
  readonly ticked: (at: number) => void
  /** Direct contact with `member`. */
  readonly heard: (member: MemberRecord) => void
  /** Hearsay: members another node lists; they become live only once heard from directly. */
  readonly learn: (records: ReadonlyArray<MemberRecord>) => void
  /** `member` announced its leave. */
  readonly left: (member: MemberRecord) => void
}

export const make = (
  self: MemberRecord,
  failureTimeout: number,
  heartbeatInterval: number
): Effect.Effect<Membership> =>
  Effect.gen(function*() {
    const id = self.id
    const now = () => live.unsafeCurrentTimeMillis()
    const peers = new Map<string, PeerState>()
    const members = yield* SubscriptionRef.make<ReadonlyArray<string>>([id])
    let published: ReadonlyArray<string> = [id]
    /** The longest gap between two heartbeats that is not a pause. */
    const pauseLimit = heartbeatInterval + failureTimeout / 2
    let lastTick = now()
    /** When this node last came back from a pause. */
    let resumedAt = 0

    const isLive = (peer: PeerState, at: number) => {
      if (peer.leftIncarnation >= peer.incarnation || peer.lastHeard === 0) return false
      // In a pause its heartbeat has not noticed yet (something else runs first), it is just back.
      const since = at - lastTick > pauseLimit ? at : resumedAt
      return at - Math.max(peer.lastHeard, since) < failureTimeout
    }

    const liveIds = (at: number) => {
      const ids = [id]
      for (const [peerId, peer] of peers) if (isLive(peer, at)) ids.push(peerId)
      return ids.sort()
    }

    const view = (): ReadonlyArray<MemberRecord> => {
      const at = now()
      const records: Array<MemberRecord> = [self]
      for (const [peerId, peer] of peers) {
        if (isLive(peer, at)) records.push({ id: peerId, incarnation: peer.incarnation })
      }
      return records
    }

    const publish = Effect.suspend(() => {
      const next = liveIds(now())
      if (next.length === published.length && next.every((m, i) => m === published[i])) return Effect.void
      published = next
      return SubscriptionRef.set(members, next)
    })
    const publishNow = () => Effect.runFork(publish)

    const heard = (member: MemberRecord) => {
      if (member.id === id) return
      const at = now()
      const peer = peers.get(member.id)
      if (peer === undefined) {
        peers.set(member.id, { incarnation: member.incarnation, lastHeard: at, leftIncarnation: -1, lastSeen: at })
      } else if (member.incarnation >= peer.incarnation) {
        if (member.incarnation > peer.incarnation) peer.leftIncarnation = -1
        peer.incarnation = member.incarnation
        if (peer.leftIncarnation < peer.incarnation) {
          peer.lastHeard = at
          peer.lastSeen = at
        }
      }
      publishNow()
    }

    const learn = (records: ReadonlyArray<MemberRecord>) => {
      const at = now()
      for (const record of records) {
        if (record.id === id) continue
        const peer = peers.get(record.id)
        if (peer === undefined) {
          peers.set(record.id, { incarnation: record.incarnation, lastHeard: 0, leftIncarnation: -1, lastSeen: at })
        } else if (record.incarnation > peer.incarnation) {
          peer.incarnation = record.incarnation
          peer.leftIncarnation = -1
          peer.lastSeen = at
        }
      }
    }

    const left = (member: MemberRecord) => {
      const peer = peers.get(member.id)
      if (peer !== undefined && member.incarnation >= peer.incarnation) {
        peer.incarnation = member.incarnation
        peer.leftIncarnation = member.incarnation
      }
      publishNow()
    }

    return {
      self,
      peers,
      members,
      current: () => published,
      isLive,
      liveIds,
      ticked: (at) => {
        if (at - lastTick > pauseLimit) resumedAt = at
        lastTick = at
      },
      view,
      publish,
      heard,
      learn,
      left
    }
  })
