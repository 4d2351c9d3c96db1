/**
 * The namespaces a cluster topology holds on this node: one backend store each, opened on first
 * use (by a local cache or a peer's request) and shared by every later user; concurrent first
 * users wait for the same opening. A failed opening is forgotten, so the next use tries again.
 */
import type { Backend, BackendError, ConfigError } from "@vela/core"
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Scope from "effect/Scope"
import { text } from "./wire.js"

export interface Spaces<S> {
  /** The space of `name`, opened now if it is not; `open` is the local cache's, when it opens it. */
  readonly open: (name: string, open?: Backend.OpenOptions) => Effect.Effect<S, BackendError | ConfigError>
  /** The space of `name` if it is open or opening (waits for it), without opening it. */
  readonly find: (name: string) => Effect.Effect<Option.Option<S>>
  /** The spaces that finished opening, for lookups without the runtime. */
  readonly ready: ReadonlyMap<string, S>
  /** Every space that opened, waiting for those still opening. */
  readonly opened: Effect.Effect<ReadonlyArray<S>>
}

export const make = <S, C extends Clock.Clock>(options: {
  readonly backend: Backend.Backend["Type"]
  /** Where the stores live: the topology's scope. */
  readonly scope: Scope.Scope
  /** The clock the store of a new space reads, from the opening cache's options if any. */
  readonly clock: (open: Backend.OpenOptions | undefined) => C
  /** The space of `name` on `store`, with the hub of the invalidations its near caches read. */
  readonly build: (name: string, store: Backend.Store, clock: C, changes: PubSub.PubSub<Backend.Invalidation>) => S
  /** A local cache opens a space that is already open (a peer's request may have opened it). */
  readonly reopen?: ((space: S, open: Backend.OpenOptions) => void) | undefined
}): Spaces<S> => {
  const opening = new Map<string, Deferred.Deferred<S, BackendError | ConfigError>>()
  const ready = new Map<string, S>()
  const { backend, build, reopen, scope } = options

  const open = (name: string, open?: Backend.OpenOptions): Effect.Effect<S, BackendError | ConfigError> =>
    Effect.suspend(() => {
      const existing = opening.get(name)
      if (existing !== undefined) {
        const space = Deferred.await(existing)
        return open === undefined || reopen === undefined ? space : Effect.tap(space, (s) => reopen(s, open))
      }
      const deferred = Deferred.unsafeMake<S, BackendError | ConfigError>(FiberId.none)
      opening.set(name, deferred)
      const clock = options.clock(open)
      const store = backend.open({
        namespace: name,
        clock,
        codec: text,
        maxSize: open?.maxSize ?? Infinity,
        evictionPolicy: open?.evictionPolicy ?? "ttl-only",
        onEvict: open?.onEvict ?? noop,
        onExpire: open?.onExpire ?? noop
      })
      const space = Effect.flatMap(
        store,
        (opened) =>
          Effect.map(PubSub.unbounded<Backend.Invalidation>(), (changes) => build(name, opened, clock, changes))
      )
      return Effect.onExit(Effect.provideService(space, Scope.Scope, scope), (exit) => {
        if (Exit.isFailure(exit)) opening.delete(name)
        else ready.set(name, exit.value)
        return Deferred.done(deferred, exit)
      })
    })

  return {
    open,
    find: (name) =>
      Effect.suspend(() => {
        const deferred = opening.get(name)
        return deferred === undefined ? Effect.succeedNone : Effect.option(Deferred.await(deferred))
      }),
    ready,
    opened: Effect.suspend(() =>
      Effect.map(
        Effect.forEach(Array.from(opening.values()), (deferred) => Effect.either(Deferred.await(deferred))),
        (all) => all.flatMap((space) => Either.isRight(space) ? [space.right] : [])
      )
    )
  }
}

const noop = () => {}
