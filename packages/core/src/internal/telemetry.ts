/**
 * `Telemetry`'s tag and listeners, without its event stream: the Promise facade reaches telemetry
 * only through `subscribe`, so its caches need neither `effect/PubSub` nor `effect/Stream` (with its
 * channels about 650 KB of modules) loaded. The public `Telemetry` module adds the stream.
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import type * as Stream from "effect/Stream"
import { emptyStream } from "./emptyStream.js"

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

/** Where events go besides the listeners: the subscribers of the event stream. */
export interface Streams {
  readonly events: Stream.Stream<TelemetryEvent>
  /** Whether a stream subscriber is open. */
  readonly open: () => boolean
  readonly offer: (event: TelemetryEvent) => void
}

/** A `Telemetry` service over `streams`: listeners are called at once, then the streams get the event. */
export const service = (options: TelemetryOptions, streams: Streams): Telemetry["Type"] => {
  const listeners = new Set<(event: TelemetryEvent) => void>()
  return Telemetry.of({
    spans: options.spans ?? true,
    metrics: options.metrics ?? false,
    active: () => listeners.size > 0 || streams.open(),
    emit: (event) => {
      for (const listener of listeners) listener(event)
      if (streams.open()) streams.offer(event)
    },
    subscribe: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    events: streams.events
  })
}

/**
 * The facade's `Telemetry`: listeners only. Nothing outside the facade's runtime can read its
 * `events`, so it has no stream subscribers to feed (its `events` ends at once).
 */
export const listenersLayer = (options: TelemetryOptions): Layer.Layer<Telemetry> =>
  Layer.sync(Telemetry, () => service(options, noStreams))

const noStreams: Streams = { events: emptyStream, open: () => false, offer: () => {} }
