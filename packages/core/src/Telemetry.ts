/**
 * Instrumentation beyond the always-on `Stats`: an event per operation, in the shape of the
 * original's `:telemetry` events, tracing spans, and (opt-in) latency histograms and a size gauge.
 * Absent the layer, a cache pays for none of them.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Stream from "effect/Stream"

/**
 * `{ event: [...prefix, op, "stop"], measurements, metadata }`, as `:telemetry` has it.
 *
 * @since 0.1.0
 * @category models
 */
export interface TelemetryEvent {
  readonly event: ReadonlyArray<string>
  readonly measurements: Readonly<Record<string, number>>
  readonly metadata: Readonly<Record<string, unknown>>
}

/**
 * Options of `Telemetry.layer`: spans, metrics, and the buffer of the event stream.
 *
 * @since 0.1.0
 * @category models
 */
export interface TelemetryOptions {
  /** Wrap operations in `Effect.withSpan` (default `true`). */
  readonly spans?: boolean | undefined
  /**
   * Record `<prefix>_duration_ms{cache, operation}` latency histograms and, on in-memory stores, a
   * `<prefix>_size{cache}` gauge set after every sweep (default `false`: timing every call costs).
   */
  readonly metrics?: boolean | undefined
  /** Events buffered for a slow `events` subscriber before the oldest are dropped (default 10,000). */
  readonly capacity?: number | undefined
}

/**
 * The instrumentation of every cache built in its context: events, spans, metrics.
 *
 * @since 0.1.0
 * @category tags
 */
export class Telemetry extends Context.Tag("@vela/core/Telemetry")<Telemetry, {
  readonly spans: boolean
  readonly metrics: boolean
  /** Whether anyone listens: callers skip timing and building events when nobody does. */
  readonly active: () => boolean
  /** Delivers an event to every subscriber. */
  readonly emit: (event: TelemetryEvent) => void
  /** Calls `listener` synchronously for every event until the returned function is called. */
  readonly subscribe: (listener: (event: TelemetryEvent) => void) => () => void
  readonly events: Stream.Stream<TelemetryEvent>
}>() {}

/**
 * A `Telemetry` service: listeners and streams of events, with spans and metrics as `options` say.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: TelemetryOptions = {}): Effect.Effect<Telemetry["Type"]> =>
  Effect.map(PubSub.sliding<TelemetryEvent>(options.capacity ?? 10_000), (pubsub) => {
    const listeners = new Set<(event: TelemetryEvent) => void>()
    let streams = 0
    const counted = Effect.acquireRelease(Effect.sync(() => streams++), () => Effect.sync(() => streams--))
    return Telemetry.of({
      spans: options.spans ?? true,
      metrics: options.metrics ?? false,
      active: () => listeners.size > 0 || streams > 0,
      emit: (event) => {
        for (const listener of listeners) listener(event)
        if (streams > 0) pubsub.unsafeOffer(event)
      },
      subscribe: (listener) => {
        listeners.add(listener)
        return () => listeners.delete(listener)
      },
      events: Stream.unwrapScoped(Effect.zipRight(counted, Effect.map(PubSub.subscribe(pubsub), Stream.fromQueue)))
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
