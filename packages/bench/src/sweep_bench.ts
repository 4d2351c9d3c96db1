/**
 * sweep_bench: 1,000,000 entries expire at once; the sweeper removes them while
 * `perf_hooks.monitorEventLoopDelay` watches how long the event loop is held. The goal is that no
 * single stretch exceeds 10 ms. Run: `node --expose-gc packages/bench/dist/sweep_bench.js`.
 */
import { Local, Memory, Vela } from "@vela/core"
import { Effect, Layer } from "effect"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { collect } from "./internal/measure.js"
import type { SuiteResult } from "./internal/report.js"
import { progress, renderText } from "./internal/report.js"

const ENTRIES = 1_000_000

export const run = async (): Promise<SuiteResult> => {
  progress("sweep: 1,000,000 entries expiring together")
  const result = await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const cache = yield* Vela.make<number>({ name: "sweep", sweepInterval: "200 millis" })
      for (let i = 0; i < ENTRIES; i++) yield* cache.put(`k${i}`, i, { ttl: 300 })
      // The fill's last entries are still young: their promotion is the fill's cost, not the sweeper's.
      collect()
      const histogram = monitorEventLoopDelay({ resolution: 1 })
      histogram.enable()
      const started = Date.now()
      while ((yield* cache.stats()).expirations < ENTRIES) {
        yield* Effect.sleep("20 millis")
        if (Date.now() - started > 30_000) return yield* Effect.dieMessage("the sweeper did not finish in 30 s")
      }
      histogram.disable()
      return {
        elapsed: Date.now() - started,
        max: histogram.max / 1e6,
        p99: histogram.percentile(99) / 1e6,
        size: yield* cache.size()
      }
    })).pipe(Effect.provide(Local.layer.pipe(Layer.provide(Memory.layer()))))
  )
  if (result.size !== 0) throw new Error(`${result.size} entries left after the sweep`)
  return {
    name: "sweep",
    title: "sweep_bench: 1,000,000 entries expiring at once",
    description: "1,000,000 entries with a 300 ms TTL; the sweeper (every 200 ms, in slices of 2 ms) removes them " +
      "while monitorEventLoopDelay watches the event loop (from a full GC after the fill). Goal: no stretch over 10 ms.",
    tables: [{
      title: "sweep_bench: 1,000,000 entries expiring together, swept in slices of 2 ms",
      columns: ["figure", "value", "goal"],
      rows: [
        ["all removed within", `${result.elapsed} ms`, ""],
        [
          "event loop delay, max",
          `${result.max.toFixed(1)} ms`,
          result.max <= 10 ? "met (≤ 10 ms)" : "MISSED (≤ 10 ms)"
        ],
        ["event loop delay, p99", `${result.p99.toFixed(1)} ms`, ""]
      ]
    }],
    charts: [{
      file: "sweep.svg",
      title: "sweep_bench: event loop delay while 1,000,000 entries are swept (ms, lower is better)",
      panels: [{
        title: "event loop delay",
        unit: "ms",
        bars: [{ label: "Vela sweeper, max", value: result.max }, { label: "Vela sweeper, p99", value: result.p99 }]
      }]
    }],
    notes: [],
    data: result
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const table of (await run()).tables) console.log(renderText(table))
}
