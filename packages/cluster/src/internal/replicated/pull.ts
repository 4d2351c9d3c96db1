/**
 * Copying from a peer: compare digests, pull the buckets that differ, a few hundred entries per
 * RPC. A node with seeds copies a peer's state before it serves anything (joining); every
 * `antiEntropyInterval` it compares with one random peer, and with every peer when it was alone
 * before, so a node back from a crash or a partition converges.
 */
import type { Backend } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { live } from "../live.js"
import { BUCKETS } from "../replica.js"
import { applyDelete, applyFlush, applyPut, applyTag, publish, sweepSpace } from "./apply.js"
import type { Replication } from "./replication.js"
import { peers } from "./replication.js"
import { digestOf } from "./serve.js"

/** Copies what `peer` has that this node lacks; how many items it pulled. */
const syncWith = (r: Replication, peer: string) =>
  Effect.gen(function*() {
    const { node, spaces } = r
    const digests = yield* node.call(peer, (client) => client.Digest({}))
    let pulled = 0
    for (const remote of digests) {
      const space = yield* spaces.open(remote.ns)
      if (remote.flush !== null) yield* applyFlush(r, space, remote.flush)
      for (const { tag, ...floor } of remote.tags) yield* applyTag(r, space, tag, floor)
      const local = digestOf(space)
      const differ: Array<number> = []
      for (let bucket = 0; bucket < BUCKETS; bucket++) {
        if (remote.hashes[bucket] !== local.hashes[bucket]) differ.push(bucket)
      }
      // Chunks of whole buckets, about `chunkSize` entries each.
      let chunk: Array<number> = []
      let size = 0
      // As many pulls as the peer's replies take.
      const pull = (buckets: ReadonlyArray<number>, after: string | null = null): Effect.Effect<void, unknown> =>
        Effect.flatMap(node.call(peer, (client) => client.Pull({ ns: remote.ns, buckets, after })), (answer) =>
          Effect.zipRight(
            Effect.forEach(answer.items, (item) => {
              pulled++
              return item.entry === null
                ? applyDelete(r, space, item.key, item)
                : applyPut(r, space, item.key, { ...item.entry, version: item.version }, item.origin)
            }, { discard: true }),
            answer.more === null
              ? Effect.void
              : pull(buckets.slice(buckets.indexOf(answer.more.bucket)), answer.more.after)
          ))
      for (const bucket of differ) {
        chunk.push(bucket)
        size += Math.max(remote.counts[bucket] ?? 0, 1)
        if (size >= r.chunkSize) {
          yield* pull(chunk)
          chunk = []
          size = 0
        }
      }
      if (chunk.length > 0) {
        yield* pull(chunk)
      }
      if (differ.length > 0) {
        yield* publish(space, { _tag: "Flush" })
      }
    }
    return pulled
  })

/** Joining: waits (at most `joinTimeout`) for a peer, then copies its state before serving anything. */
export const join = (r: Replication, joinTimeout: number) =>
  Effect.gen(function*() {
    const joined = yield* r.node.members.changes.pipe(
      Stream.filter((members) => members.length > 1),
      Stream.take(1),
      Stream.runHead,
      Effect.timeout(joinTimeout),
      Effect.option,
      Effect.map(Option.flatten),
      Effect.withClock(live)
    )
    if (Option.isNone(joined)) return
    const candidates = joined.value.filter((m) => m !== r.self)
    const copied = yield* Effect.firstSuccessOf(candidates.map((peer) => syncWith(r, peer))).pipe(
      Effect.retry(Schedule.intersect(Schedule.spaced("200 millis"), Schedule.recurs(10))),
      Effect.either,
      Effect.withClock(live)
    )
    if (Either.isLeft(copied)) {
      yield* Effect.logWarning(`vela replicated ${r.self}: could not copy the state of ${candidates.join(", ")}`)
    }
  })

/**
 * Runs in the scope: tells near caches when this node is cut off and catches up when it is not,
 * anti-entropy with one random peer per round, and the sweep of namespaces no cache of this node sweeps.
 */
export const start = (r: Replication, antiEntropy: number): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { node, self, spaces } = r
    let wasAlone = node.currentMembers().length === 1
    yield* node.members.changes.pipe(
      Stream.runForEach((members) =>
        Effect.suspend(() => {
          const alone = members.length === 1
          if (alone === wasAlone) return Effect.void
          wasAlone = alone
          const change: Backend.Invalidation = alone ? { _tag: "Disconnected" } : { _tag: "Connected" }
          return Effect.zipRight(
            Effect.flatMap(spaces.opened, (all) =>
              Effect.forEach(all, (space) => PubSub.publish(space.changes, change), { discard: true })),
            alone ? Effect.void : Effect.forEach(
              members.filter((m) =>
                m !== self
              ),
              (peer) => Effect.ignore(syncWith(r, peer)),
              { discard: true }
            )
          )
        })
      ),
      Effect.withClock(live),
      Effect.forkScoped
    )

    yield* Effect.suspend(() => {
      const others = peers(r)
      if (others.length === 0) return Effect.void
      return Effect.ignore(syncWith(r, others[Math.floor(Math.random() * others.length)]))
    }).pipe(
      Effect.repeat(Schedule.spaced(antiEntropy)),
      Effect.withClock(live),
      Effect.interruptible,
      Effect.forkScoped
    )

    yield* Effect.flatMap(spaces.opened, (all) => Effect.forEach(all, (space) => Effect.ignore(sweepSpace(r, space))))
      .pipe(
        Effect.repeat(Schedule.spaced("30 seconds")),
        Effect.withClock(live),
        Effect.interruptible,
        Effect.forkScoped
      )
  })
