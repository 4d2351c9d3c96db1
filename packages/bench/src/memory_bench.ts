/**
 * memory_bench: heap per entry of 1,000,000 small entries (`key:<i>` → a number) in a Memory cache,
 * measured as the heap growth after a full GC, with the keys already allocated outside the cache so
 * that what is counted is the cache's own structure. Goal: under 300 bytes per entry.
 * Run: `node --expose-gc packages/bench/dist/memory_bench.js` (without --expose-gc the figure is noisy).
 */
import { Local, Memory, Vela } from "@vela/core"
import { Effect, Layer } from "effect"
import { fileURLToPath } from "node:url"
import type { SuiteResult } from "./internal/report.js"
import { progress, renderText } from "./internal/report.js"

const ENTRIES = 1_000_000

const heap = () => {
  ;(globalThis as { gc?: () => void }).gc?.()
  return process.memoryUsage().heapUsed
}

export const run = async (): Promise<SuiteResult> => {
  const keys = Array.from({ length: ENTRIES }, (_, i) => `key:${i}`)
  const rows = await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const measured: Array<{ label: string; bytesPerEntry: number }> = []
      for (
        const [label, config] of [
          ["no TTL, unbounded", {}],
          ["ttl 1 h, unbounded", { defaultTtl: "1 hour" }],
          ["ttl 1 h, maxSize, lru", { defaultTtl: "1 hour", maxSize: ENTRIES, evictionPolicy: "lru" }]
        ] as const
      ) {
        progress(`memory: ${label}`)
        const before = heap()
        const cache = yield* Vela.make<number>({ name: label, ...config })
        for (let i = 0; i < ENTRIES; i++) yield* cache.put(keys[i], i)
        const perEntry = (heap() - before) / ENTRIES
        if ((yield* cache.size()) !== ENTRIES) throw new Error(`${label}: lost entries`)
        measured.push({ label, bytesPerEntry: perEntry })
        yield* cache.flush()
      }
      return measured
    })).pipe(Effect.provide(Local.layer.pipe(Layer.provide(Memory.layer()))))
  )
  const title = "memory_bench: heap per entry, 1,000,000 entries (keys allocated outside; goal < 300)"
  return {
    name: "memory",
    title: "memory_bench: heap per entry of a Vela Memory cache",
    description: "1,000,000 entries (`key:<i>` → a number) in a Memory cache, heap growth after a full GC, keys " +
      "allocated outside the cache. Goal: under 300 bytes per entry.",
    tables: [{
      title,
      columns: ["config", "bytes/entry", "goal"],
      rows: rows.map((
        { bytesPerEntry, label }
      ) => [label, bytesPerEntry.toFixed(0), bytesPerEntry < 300 ? "met" : "MISSED"])
    }],
    charts: [{
      file: "memory.svg",
      title: "memory_bench: heap per entry, 1,000,000 entries (bytes, lower is better)",
      panels: [{
        title: "Vela Memory cache",
        unit: "bytes/entry",
        bars: rows.map(({ bytesPerEntry, label }) => ({ label: `Vela ${label}`, value: bytesPerEntry }))
      }]
    }],
    notes: [],
    data: rows
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const table of (await run()).tables) console.log(renderText(table))
}
