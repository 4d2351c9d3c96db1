/**
 * The operations a cache sends to every member: `size`, `invalidateTag`, `clear`. Each member
 * answers for what it holds; members that cannot be reached are skipped as long as every key has a
 * live holder among the others (at most `replicas` of them).
 *
 * Counting: `size` asks every member for the live keys it owns by the requester's ring (see
 * `SizeRequest`: members that cannot be reached are skipped, keys moving to a new member are listed
 * and counted as a union), and `invalidateTag` for the live keys it removed, counted once across
 * replicas.
 */
import type { CacheError, ConfigError, NodeUnavailable } from "@vela/core"
import { BackendError } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as HashRing from "../../HashRing.js"
import type { ClearRequest, InvalidateTagRequest, RemoteFailure, SizeRequest } from "../protocol.js"
import type { Partition } from "./partition.js"
import type { Here } from "./serve.js"
import type { Space } from "./space.js"
import { nextVersion } from "./space.js"

export interface FanOut {
  readonly size: Effect.Effect<number, CacheError>
  readonly invalidateTag: (tag: string) => Effect.Effect<number, CacheError>
  readonly clear: Effect.Effect<void, CacheError>
}

/** The fan-outs of the cache of `space`, whose clock is `nowOf`. */
export const make = (p: Partition, here: Here, space: Space, nowOf: () => number): FanOut => {
  const { node, replicas, self } = p
  const ns = space.name

  /**
   * Runs `local` here and `call` on every other member of `view` but `skip`. Members that cannot
   * be reached are left out and named in `unreachable`, as long as at most `replicas` members
   * are (every key has a live holder among the others); beyond that it fails with
   * `NodeUnavailable`.
   */
  const fanOut = <A>(
    view: HashRing.HashRing,
    skip: ReadonlyArray<string>,
    local: Effect.Effect<A, CacheError | BackendError | ConfigError>,
    call: (peer: string) => Effect.Effect<A, NodeUnavailable | RemoteFailure>
  ): Effect.Effect<
    { readonly answers: ReadonlyArray<A>; readonly unreachable: ReadonlyArray<string> },
    CacheError
  > =>
    Effect.flatMap(
      Effect.forEach(view.members.filter((m) => !skip.includes(m)), (peer) =>
        peer === self
          ? Effect.map(local, Either.right)
          : Effect.catchAll(
            Effect.map(call(peer), Either.right),
            (error) =>
              error._tag === "NodeUnavailable"
                ? Effect.succeed(Either.left(error))
                : Effect.fail(
                  new BackendError({ backend: `cluster ${peer}`, operation: "fan-out", cause: error.message })
                )
          ), { concurrency: "unbounded" }),
      (results) => {
        const answers: Array<A> = []
        const down: Array<NodeUnavailable> = []
        for (const result of results) {
          if (Either.isRight(result)) answers.push(result.right)
          else down.push(result.left)
        }
        if (skip.length + down.length > replicas) return Effect.fail(down[0])
        return Effect.succeed({ answers, unreachable: down.map((error) => error.node) })
      }
    )

  /** Counts each live key once on `view`, asking again without the members that could not be reached. */
  const sizeOn = (
    view: HashRing.HashRing,
    now: number,
    skip: ReadonlyArray<string>,
    fresh: ReadonlyArray<string>
  ): Effect.Effect<number, CacheError> => {
    const request: SizeRequest = { now, ns, members: view.members, skip, fresh }
    return Effect.flatMap(
      fanOut(view, skip, here.size(space, request), (peer) => node.call(peer, (client) => client.Size(request))),
      ({ answers, unreachable }) => {
        if (unreachable.length > 0) return sizeOn(view, now, [...skip, ...unreachable], fresh)
        const moving = new Set<string>()
        let count = 0
        for (const answer of answers) {
          count += answer.count
          for (const key of answer.keys) moving.add(key)
        }
        return Effect.succeed(count + moving.size)
      }
    )
  }

  return {
    size: Effect.suspend(() => {
      const view = p.ring.current()
      return sizeOn(view, nowOf(), [], p.ring.freshIn(view))
    }),
    invalidateTag: (tag) =>
      Effect.suspend(() => {
        const view = p.ring.current()
        const request: InvalidateTagRequest = {
          now: nowOf(),
          ns,
          tag,
          version: nextVersion(),
          origin: self,
          members: view.members
        }
        return Effect.map(
          fanOut(
            view,
            [],
            here.invalidateTag(space, self, request),
            (peer) => node.call(peer, (client) => client.InvalidateTag(request))
          ),
          ({ answers }) => new Set(answers.flat()).size
        )
      }),
    clear: Effect.suspend(() => {
      const view = p.ring.current()
      const request: ClearRequest = { ns, version: nextVersion(), origin: self, members: view.members }
      return Effect.asVoid(
        fanOut(view, [], here.clear(space, self, request), (peer) => node.call(peer, (client) => client.Clear(request)))
      )
    })
  }
}
