/**
 * Instrumentation beyond the always-on `Stats`: an event per operation, in the shape of the
 * original's `:telemetry` events, tracing spans, and (opt-in) latency histograms and a size gauge.
 * Absent the layer, a cache pays for none of them.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Stream from "effect/Stream"
import type { TelemetryEvent, TelemetryOptions } from "./internal/telemetry.js"
import { service, Telemetry } from "./internal/telemetry.js"

// Declared with the facade's listeners-only telemetry, which must not load the event stream.
export { Telemetry } from "./internal/telemetry.js"
export type { TelemetryEvent, TelemetryOptions } from "./internal/telemetry.js"

/**
 * A `Telemetry` service: listeners and streams of events, with spans and metrics as `options` say.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: TelemetryOptions = {}): Effect.Effect<Telemetry["Type"]> =>
  Effect.map(PubSub.sliding<TelemetryEvent>(options.capacity ?? 10_000), (pubsub) => {
    let streams = 0
    const counted = Effect.acquireRelease(Effect.sync(() => streams++), () => Effect.sync(() => streams--))
    return service(options, {
      events: Stream.unwrapScoped(Effect.zipRight(counted, Effect.map(PubSub.subscribe(pubsub), Stream.fromQueue))),
      open: () => streams > 0,
      offer: (event) => pubsub.unsafeOffer(event)
    })
  })

/**
 * `make(options)` as a layer; caches built with it in context report through it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: TelemetryOptions = {}): Layer.Layer<Telemetry> => Layer.effect(Telemetry, make(options))

/**
 * Every event of every cache, for as long as the stream is consumed.
 *
 * @since 0.1.0
 * @category streams
 */
export const events: Stream.Stream<TelemetryEvent, never, Telemetry> = Stream.unwrap(
  Effect.map(Telemetry, (telemetry) => telemetry.events)
)
