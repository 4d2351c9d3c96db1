/** What a facade cache runs on: its config, layers and a clock that lets the process exit. */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Local from "../../Local.js"
import * as Memory from "../../Memory.js"
import * as NearCache from "../../NearCache.js"
import type { CacheOptions } from "../../promise.js"
import * as Telemetry from "../../Telemetry.js"
import type { Topology } from "../../Topology.js"
import type * as Vela from "../../Vela.js"

/** The cache's own config: the options without where it runs. */
export const configOf = <V, I>(
  { backend: _b, logger: _l, metrics: _m, nearCache: _n, observability: _o, spans: _s, topology: _t, ...config }:
    CacheOptions<V, I>
): Vela.Config<V, I> => config

/** The cache's layer with everything it runs on: the near cache, topology, backend, telemetry and a clock that lets the process exit. */
export const runtimeLayer = <V, I, A>(options: CacheOptions<V, I>, cache: Layer.Layer<A, unknown, Topology>) => {
  const { backend, logger, metrics, nearCache, observability, spans, topology } = options
  const withNear = nearCache === undefined || nearCache === false
    ? cache
    : cache.pipe(Layer.provide(NearCache.layer(nearCache === true ? {} : nearCache)))
  return withNear.pipe(
    Layer.provide(topology ?? Local.layer),
    Layer.provide(backend ?? Memory.layer()),
    Layer.provideMerge(Telemetry.layer({ spans: spans === true, metrics: metrics === true })),
    Layer.provide(Layer.setClock(unrefClock)),
    Layer.merge(Layer.setClock(unrefClock)),
    Layer.provideMerge(Layer.mergeAll(
      observability ?? Layer.empty,
      logger === undefined ? Layer.empty : Logger.replace(Logger.defaultLogger, logger)
    ))
  )
}

/**
 * The live clock, with timers that do not keep the process alive: a program that forgets to
 * close its caches still exits, as with lru-cache.
 */
const live = Clock.make()
const unrefClock: Clock.Clock = {
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => live.unsafeCurrentTimeMillis(),
  unsafeCurrentTimeNanos: () => live.unsafeCurrentTimeNanos(),
  currentTimeMillis: live.currentTimeMillis,
  currentTimeNanos: live.currentTimeNanos,
  sleep: (duration: Duration.DurationInput) =>
    Effect.async<void>((resume) => {
      const timer = setTimeout(() => resume(Effect.void), Duration.toMillis(duration))
      timer.unref()
      return Effect.sync(() => clearTimeout(timer))
    })
}
