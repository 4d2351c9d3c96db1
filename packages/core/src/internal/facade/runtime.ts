/** What a facade cache runs on: its config, layers and a clock that lets the process exit. */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Local from "../../Local.js"
import * as Memory from "../../Memory.js"
import type { CacheOptions } from "../../promise.js"
import type { Topology } from "../../Topology.js"
import type * as Vela from "../../Vela.js"
import * as Telemetry from "../telemetry.js"

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
    : cache.pipe(Layer.provide(Layer.unwrapEffect(Effect.map(
      // Loaded when asked for: it reads invalidations as a stream, and `effect/Stream` is large.
      Effect.promise(() => import("../../NearCache.js")),
      (NearCache) => NearCache.layer(nearCache === true ? {} : nearCache)
    ))))
  return withNear.pipe(
    Layer.provide(topology ?? Local.layer),
    Layer.provide(backend ?? Memory.layer()),
    Layer.provideMerge(Telemetry.listenersLayer({ spans: spans === true, metrics: metrics === true })),
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

/**
 * The wall clock read at most once a millisecond, as lru-cache's `ttlResolution`: a clock read
 * (~50 ns here) cost more than the rest of a hit. The value read is kept until a 1 ms timer clears
 * it, for at most `COARSE_READS` reads (a synchronous stretch holds the timer back), and only while
 * nothing replaced the clock or the timers since: a faked `Date.now` (fake timers, `setSystemTime`,
 * a spy) is read on every call, and a timer scheduled through a `setTimeout` that has since been
 * replaced (fake timers installed or removed, which may drop it) no longer vouches for the value.
 */
const COARSE_READS = 64
let coarseMillis = 0
/** Reads left of `coarseMillis`; 0: none is kept. */
let coarseLeft = 0
/** The `Date.now` and `setTimeout` that read `coarseMillis` and scheduled its clearing. */
let coarseNow: unknown
let coarseTimer: unknown
/** Tells the clearing timer of the value kept now from older timers that outlived theirs. */
let coarseEpoch = 0
let coarsePending = false
let checkedNow: unknown
let nowIsNative = false

const currentMillis = (): number => {
  if (coarseLeft > 0 && Date.now === coarseNow && setTimeout === coarseTimer) {
    coarseLeft--
    return coarseMillis
  }
  return readMillis()
}

const readMillis = (): number => {
  const now = Date.now
  const millis = now.call(Date)
  if (now !== checkedNow) {
    checkedNow = now
    nowIsNative = Function.prototype.toString.call(now).includes("[native code]")
  }
  if (!nowIsNative) {
    coarseLeft = 0
    return millis
  }
  const schedule = setTimeout
  // A timer still pending from this `setTimeout` clears the new value too, and sooner.
  if (!coarsePending || schedule !== coarseTimer) {
    const epoch = ++coarseEpoch
    coarsePending = true
    schedule(() => {
      if (coarseEpoch !== epoch) return
      coarseLeft = 0
      coarsePending = false
    }, 1).unref?.()
  }
  coarseMillis = millis
  coarseLeft = COARSE_READS - 1
  coarseNow = now
  coarseTimer = schedule
  return millis
}

const unrefClock: Clock.Clock = {
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: currentMillis,
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
