/**
 * The conformance suite every backend and topology must pass, written once as a function of a
 * `Topology` layer (with its backend provided), as bentocache exports its driver suite. It drives
 * random sequences of operations and `TestClock` moves against a plain reference model, then checks
 * the error cases and the semantics every backend and topology must keep.
 *
 * ```ts
 * import { conformance } from "@vela/core/testing"
 * conformance("Sqlite file", Local.layer.pipe(Layer.provide(Sqlite.layer({ filename }))))
 * ```
 *
 * It needs `vitest` and `@effect/vitest` (peer dependencies of this entry only).
 */
import { describe, layer } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as fc from "effect/FastCheck"
import type * as Layer from "effect/Layer"
import type { EvictionPolicy, OpenOptions } from "./Backend.js"
import * as Codec from "./Codec.js"
import * as Atomic from "./internal/conformance/atomic.js"
import * as Fetching from "./internal/conformance/fetching.js"
import * as Model from "./internal/conformance/model.js"
import * as Values from "./internal/conformance/values.js"
import type { Topology } from "./Topology.js"

/**
 * Options of the conformance suite.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConformanceOptions {
  /** Property runs per case (default 40). */
  readonly runs?: number | undefined
  /** Also check eviction against the model, with this bound and policy. */
  readonly eviction?: { readonly maxSize: number; readonly policy: EvictionPolicy } | undefined
  /** Per-test timeout in milliseconds (default 60,000). */
  readonly timeout?: number | undefined
  /**
   * Atomic operations the topology cannot do exactly: their cases check that they fail with
   * `Unsupported` instead (and the atomic model is skipped).
   */
  readonly unsupported?: ReadonlyArray<"take" | "increment" | "update" | "touch"> | undefined
}

/**
 * Registers the suite under `describe(label)`; every case makes caches with fresh names.
 *
 * @since 0.1.0
 * @category testing
 */
export const conformance = <E>(
  label: string,
  topology: Layer.Layer<Topology, E>,
  options: ConformanceOptions = {}
): void => {
  const runs = options.runs ?? 40
  const timeout = options.timeout ?? 60_000
  const eviction = options.eviction

  describe(label, () => {
    layer(topology, { timeout: "60 seconds" })((it) => {
      it.effect.prop(
        "agrees with a reference model on random operations",
        [fc.array(Model.command, { minLength: 1, maxLength: 60 })],
        ([commands]) => Effect.scoped(Model.runModel(commands, eviction)),
        { timeout, fastCheck: { numRuns: runs } }
      )

      Values.keysAndValues(it, timeout)
      Fetching.getOrFetch(it, timeout)
      Fetching.inFlight(it, timeout)
      Values.limits(it, timeout)
      Atomic.atomic(it, timeout, Math.max(5, Math.round(runs / 4)), options.unsupported ?? [])
    })
  })
}

/**
 * A `getOrFetch(key)` on `cache` whose fetch, once running, waits until `finish` and then yields
 * `value`: for tests of what happens while a fetch is in flight. Returns once the fetch runs.
 *
 * @since 0.1.0
 * @category testing
 */
export const fetchInFlight: typeof Model.fetchInFlight = Model.fetchInFlight

/**
 * The options a cache would open `namespace` with: the JSON codec, no bound, no hooks. For tests that
 * drive a `Store` directly.
 *
 * @since 0.1.0
 * @category testing
 */
export const openOptions = (namespace: string, clock: Clock.Clock = Clock.make()): OpenOptions => ({
  namespace,
  clock,
  codec: Codec.json,
  maxSize: Infinity,
  evictionPolicy: "ttl-only",
  onEvict: () => {},
  onExpire: () => {}
})
