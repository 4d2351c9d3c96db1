/**
 * A cache's instrumentation, built once from the `Telemetry` in context: events in the shape of the
 * original's `:telemetry` ones, latency histograms per operation and a size gauge (`metrics`), and
 * spans that carry the operation's outcome. Without `Telemetry` every hook is absent or the
 * identity, and the hot paths pay nothing for them.
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import * as Option from "effect/Option"
import type { Telemetry, TelemetryEvent } from "./telemetry.js"

/** The start of an operation nobody observes (or one that took no time of its own). */
export const noStart = BigInt(-1)

export type Emit = (
  op: string,
  startNanos: bigint,
  metadata: Record<string, unknown>,
  measurements?: Record<string, number>
) => void

export interface Observer {
  /** The start of an operation, or `noStart` when no event or histogram would use it. */
  readonly start: () => bigint
  /** Reports a finished operation: its event, its histogram sample, its outcome on the current span. */
  readonly emit: Emit | undefined
  /**
   * Whether an `emit` now would reach anything (a listener, a histogram, a span): hot paths ask
   * before they build an event's metadata.
   */
  readonly watching: () => boolean
  /** Whether operations run in spans. */
  readonly spans: boolean
  /** Runs `self` in a span named `<prefix>.<op>` when spans are on, with the cache, key and tag. */
  readonly span: <A, E, R>(
    op: string,
    key: string | undefined,
    self: Effect.Effect<A, E, R>,
    tag?: string
  ) => Effect.Effect<A, E, R>
  /** Sets the size gauge, when metrics are on. */
  readonly recordSize: ((size: number) => void) | undefined
}

const noLabels: ReadonlyArray<never> = []

/** Latency buckets from 1 µs to about 4 s, in milliseconds. */
const latencyBoundaries = MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 23 })

export const make = (
  telemetry: Telemetry["Type"] | undefined,
  clock: Clock.Clock,
  prefix: ReadonlyArray<string>,
  cache: string
): Observer => {
  if (telemetry === undefined) {
    return {
      start: () => noStart,
      emit: undefined,
      watching: () => false,
      spans: false,
      span: (_op, _key, self) => self,
      recordSize: undefined
    }
  }
  const metricName = prefix.join("_")
  const histograms = new Map<string, Metric.Metric.Histogram<number>>()
  const histogram = (op: string) => {
    let found = histograms.get(op)
    if (found === undefined) {
      // Tags on the key, so that the metric looks its hook up once (see `counters.ts`).
      found = Metric.fromMetricKey(
        MetricKey.histogram(`${metricName}_duration_ms`, latencyBoundaries, "latency of cache operations").pipe(
          MetricKey.tagged("cache", cache),
          MetricKey.tagged("operation", op)
        )
      )
      histograms.set(op, found)
    }
    return found
  }
  const { metrics, spans } = telemetry
  const emit: Emit = (op, startNanos, metadata, measurements = {}) => {
    if (spans) annotate(op, metadata)
    const listening = telemetry.active()
    if (!listening && !(metrics && startNanos !== noStart)) return
    // A listener that arrived while the operation ran sees it take no time.
    const duration = startNanos === noStart ? 0 : Number(clock.unsafeCurrentTimeNanos() - startNanos) / 1e6
    if (metrics && startNanos !== noStart) histogram(op).unsafeUpdate(duration, noLabels)
    if (!listening) return
    const event: TelemetryEvent = {
      event: [...prefix, op, "stop"],
      measurements: { duration, ...measurements },
      metadata: { cache, ...metadata }
    }
    telemetry.emit(event)
  }
  const size = metrics
    ? Metric.fromMetricKey(
      MetricKey.gauge(`${metricName}_size`, { description: "live entries of the cache" }).pipe(
        MetricKey.tagged("cache", cache)
      )
    )
    : undefined
  return {
    start: () => metrics || telemetry.active() ? clock.unsafeCurrentTimeNanos() : noStart,
    emit,
    watching: spans || metrics ? () => true : () => telemetry.active(),
    spans,
    span: spans
      ? (op, key, self, tag) =>
        Effect.withSpan(self, `${prefix.join(".")}.${op}`, {
          attributes: { cache, ...(key === undefined ? {} : { key }), ...(tag === undefined ? {} : { tag }) }
        })
      : (_op, _key, self) => self,
    recordSize: size === undefined ? undefined : (n) => size.unsafeUpdate(n, noLabels)
  }
}

/**
 * The outcome of a read on the span of the call that made it: `vela.outcome` is `hit`, `miss` or
 * `stale`; `vela.fetch` what this caller's fetch did (`ok`, `error`, `coalesced`).
 */
const annotate = (op: string, metadata: Record<string, unknown>) => {
  const result = metadata.result
  if (result === undefined) return
  const fiber = Fiber.getCurrentFiber()
  const span = Option.isSome(fiber) ? fiber.value.currentSpan : undefined
  if (span?._tag !== "Span") return
  if (op === "get" || result === "stale") span.attribute("vela.outcome", result)
  else if (op === "fetch") span.attribute("vela.fetch", result)
}
