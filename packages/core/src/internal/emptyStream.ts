/**
 * `Stream.empty` without loading `effect/Stream` (with its channels about 650 KB of modules, a
 * quarter of a cache's import time) into every cache that never reads its invalidations.
 */
import * as Effect from "effect/Effect"
import * as Pipeable from "effect/Pipeable"
import type * as Stream from "effect/Stream"

/**
 * Stream operators run a stream's `channel`; an Effect is a channel (see `Channel.d.ts`) that emits
 * nothing and ends with the Effect's value, so `Effect.void` as the channel ends at once, like
 * `Stream.empty`'s own.
 */
export const emptyStream: Stream.Stream<never> = Object.assign(Object.create(Pipeable.Prototype), {
  [Symbol.for("effect/Stream")]: { _R: identity, _E: identity, _A: identity },
  channel: Effect.void
})

function identity<A>(a: A): A {
  return a
}
