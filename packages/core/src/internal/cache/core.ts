/**
 * What every part of a cache shares: its resolved config, its store, its counters and
 * instrumentation, whether it is closed, and what it knows of its keys' fetches. Built once per
 * cache; the reads, writes, fetches and batches are functions of it.
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Store } from "../../Backend.js"
import type { BackendError, CacheError, ConfigError } from "../../Errors.js"
import { CacheClosed } from "../../Errors.js"
import { Topology } from "../../Topology.js"
import * as Check from "../config.js"
import type { Counters } from "../counters.js"
import { makeCounters } from "../counters.js"
import * as Grace from "../grace.js"
import * as Observe from "../observe.js"
import { Telemetry } from "../telemetry.js"
import type { ResolvedConfig } from "./config.js"
import { makeOptions } from "./config.js"
import type { Flights } from "./stampede.js"
import { makeFlights } from "./stampede.js"

export interface Core {
  readonly name: string
  /** The cache's namespace on the backend: its name, or a namespace's path (see `namespace.ts`). */
  readonly namespace: string
  readonly config: ResolvedConfig
  readonly options: ReturnType<typeof makeOptions>
  readonly clock: Clock.Clock
  readonly store: Store
  readonly counters: Counters
  readonly observer: Observe.Observer
  readonly flights: Flights
  /** `CacheClosed` once the cache's scope closed, otherwise `undefined`. */
  readonly closed: () => CacheClosed | undefined
  /** A closed cache or an invalid key, as the failure any call would get. */
  readonly check: (key: unknown) => CacheError | undefined
}

/** Opens the cache's namespace on the `Topology` in context and starts its sweeper, both for the scope's life. */
export const make = (
  config: ResolvedConfig,
  namespace: string = config.name
): Effect.Effect<Core, ConfigError | BackendError, Topology | Scope.Scope> =>
  Effect.gen(function*() {
    const topology = yield* Topology
    const clock = yield* Effect.clock
    const scope = yield* Effect.scope
    const telemetry = Option.getOrUndefined(yield* Effect.serviceOption(Telemetry))
    const { name, telemetryPrefix: prefix } = config
    const counters = makeCounters(prefix, name, config.statsEnabled)
    const observer = Observe.make(telemetry, clock, prefix, name)
    const { emit } = observer
    const store = yield* topology.open({
      namespace,
      clock,
      codec: Grace.codec(config.codec),
      maxSize: config.maxSize,
      evictionPolicy: config.evictionPolicy,
      onEvict: (count) => {
        counters.evictions.add(count)
        emit?.("evict", Observe.noStart, {}, { count })
      },
      onExpire: (count) => {
        counters.expirations.add(count)
        emit?.("expire", Observe.noStart, {}, { count })
      },
      stats: () => counters.snapshot()
    })
    let closed: CacheClosed | undefined
    yield* Effect.addFinalizer(() => Effect.sync(() => closed = new CacheClosed({ cache: name })))
    const flights = makeFlights(scope, clock, config.stampedeTimeout)
    yield* Effect.forkIn(sweeper(config, clock, store, flights, observer), scope)
    return {
      name,
      namespace,
      config,
      options: makeOptions(config),
      clock,
      store,
      counters,
      observer,
      flights,
      closed: () => closed,
      check: (key) => closed ?? Check.checkKey(key)
    }
  })

/**
 * Every `sweepInterval`: expired entries leave the store, refresh backoffs that ran out are
 * forgotten (so keys never refreshed again are not kept), and the size gauge is set.
 */
const sweeper = (
  config: ResolvedConfig,
  clock: Clock.Clock,
  store: Store,
  flights: Flights,
  observer: Observe.Observer
): Effect.Effect<void> => {
  const { recordSize } = observer
  const pruneBackoff = Effect.sync(() => {
    const now = clock.unsafeCurrentTimeMillis()
    for (const [key, until] of flights.backoff) if (until <= now) flights.backoff.delete(key)
  })
  const sweep: Effect.Effect<void, CacheError> = recordSize === undefined || store.sync?.authoritative !== true
    ? store.sweep
    : Effect.flatMap(store.sweep, () => Effect.map(store.size, recordSize))
  return Effect.schedule(
    Effect.catchAllCause(
      Effect.zipRight(pruneBackoff, sweep),
      (cause) =>
        Effect.annotateLogs(Effect.logWarning("sweep failed", cause), { cache: config.name, operation: "sweep" })
    ),
    Schedule.spaced(config.sweepInterval)
  )
}
