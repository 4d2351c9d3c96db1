/** Helpers for tests that need several independent caches, raw clients and patience. */
import { Redis } from "@vela/backend-redis"
import type { NearCache as NearCacheNs } from "@vela/core"
import { Local, NearCache, Vela } from "@vela/core"
import type { Scope } from "effect"
import { Effect, Layer, Schedule } from "effect"
import { Redis as IORedis } from "ioredis"

let counter = 0
/** A namespace no other test uses. */
export const uniqueName = (label: string) => `${label}-${process.pid}-${Date.now().toString(36)}-${++counter}`

/**
 * A cache on its own Redis backend (its own connections), as another process would have it,
 * optionally with a near cache in front. Everything closes with the scope.
 */
export const cacheOn = <V>(
  options: Redis.RedisOptions,
  config: Vela.Config<V> & { readonly name: string },
  near?: NearCacheNs.NearCacheOptions
) =>
  Effect.gen(function*() {
    const backend = Redis.layer(options)
    const local = Local.layer.pipe(Layer.provide(backend))
    const topology = near === undefined ? local : NearCache.layer(near).pipe(Layer.provide(local))
    const context = yield* Layer.build(topology)
    return yield* Effect.provide(Vela.make<V>(config), context)
  })

/** A plain ioredis connection, for looking behind the backend's back. */
export const rawClient = (url: string): Effect.Effect<IORedis, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => new IORedis(url, { maxRetriesPerRequest: 0 })),
    (client) => Effect.sync(() => client.disconnect())
  )

export const promise = <A>(run: () => Promise<A>) => Effect.tryPromise({ try: run, catch: (cause) => cause })

/** Runs `self` until `done` holds of its result (or it succeeds), every 10 ms, for at most ten seconds. */
export const eventually = <A, E, R>(self: Effect.Effect<A, E, R>, done: (a: A) => boolean = () => true) =>
  Effect.retry(
    Effect.flatMap(Effect.either(self), (result) =>
      result._tag === "Right" && done(result.right)
        ? Effect.succeed(result.right)
        : Effect.fail(result)),
    Schedule.intersect(Schedule.spaced("10 millis"), Schedule.recurs(1_000))
  )

/** The `_tag` of the failure of `self`, or `"success"`. */
export const failureTag = (self: Effect.Effect<unknown, unknown>) =>
  Effect.map(
    Effect.flip(Effect.as(self, "success")),
    (error) => (typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : String(error))
  ).pipe(Effect.catchAll((success) => Effect.succeed(success)))
