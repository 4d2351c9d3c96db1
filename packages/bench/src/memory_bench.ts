/**
 * memory_bench: heap per entry of 1,000,000 small entries (`key:<i>` → a number) in a Memory cache,
 * measured as the heap growth after a full GC, with the keys already allocated outside the cache so
 * that what is counted is the cache's own structure. Goal: under 300 bytes per entry.
 *
 * Then the leak check: what stays on the heap per key after `flush()` or `deleteMany` of 100,000
 * keys whose stale-while-revalidate refresh failed, against the same keys refreshed successfully
 * (what the store keeps of its own, such as table capacity). Goal: under 5 bytes per key more.
 * Run: `node --expose-gc packages/bench/dist/memory_bench.js` (without --expose-gc the figure is noisy).
 */
import { Local, Memory, Vela } from "@vela/core"
import { Effect, Layer } from "effect"
import { fileURLToPath } from "node:url"
import { median } from "./internal/measure.js"
import type { SuiteResult } from "./internal/report.js"
import { progress, renderText } from "./internal/report.js"

const ENTRIES = 1_000_000
const LEAK_KEYS = 100_000
const LEAK_ROUNDS = 3
const SETTLE_SWEEP = "10 millis"
const SETTLE = "500 millis"

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
  // A few MB of heap come and go between identical runs (compiled code, V8's own tables): each
  // figure is the median of interleaved rounds, so only a cost that grows with the keys shows.
  const leaks = await Effect.runPromise(
    Effect.forEach(["flush", "deleteMany"] as const, (removal) =>
      Effect.map(
        Effect.replicateEffect(
          Effect.all([leftAfterRefreshes(keys, removal, true), leftAfterRefreshes(keys, removal, false)]),
          LEAK_ROUNDS
        ),
        (rounds) => ({
          removal,
          succeeded: median(rounds.map(([succeeded]) => succeeded)),
          failed: median(rounds.map(([, failed]) => failed))
        })
      ))
  )
  const title = "memory_bench: heap per entry, 1,000,000 entries (keys allocated outside; goal < 300)"
  return {
    name: "memory",
    title: "memory_bench: heap per entry of a Vela Memory cache",
    description: "1,000,000 entries (`key:<i>` → a number) in a Memory cache, heap growth after a full GC, keys " +
      "allocated outside the cache. Goal: under 300 bytes per entry. Leak check: heap left per key after removing " +
      `${LEAK_KEYS.toLocaleString("en")} stale keys whose refresh failed, against refreshes that succeeded ` +
      `(median of ${LEAK_ROUNDS} interleaved rounds, once the sweeper has dropped the table the removal left).`,
    tables: [{
      title,
      columns: ["config", "bytes/entry", "goal"],
      rows: rows.map((
        { bytesPerEntry, label }
      ) => [label, bytesPerEntry.toFixed(0), bytesPerEntry < 300 ? "met" : "MISSED"])
    }, {
      title: `memory_bench: heap left per key after removing ${LEAK_KEYS.toLocaleString("en")} stale keys ` +
        "(leak check; goal: failed refreshes leave < 5 bytes/key more)",
      columns: ["removal", "refresh succeeded", "refresh failed", "goal"],
      rows: leaks.map(({ failed, removal, succeeded }) => [
        removal,
        succeeded.toFixed(1),
        failed.toFixed(1),
        failed - succeeded < 5 ? "met" : "MISSED"
      ])
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
    data: { entries: rows, leaks }
  }
}

/**
 * Fills a cache with `LEAK_KEYS` entries fetched with grace, lets them go stale, has every refresh
 * succeed or fail (a failure starts a backoff per key), then removes them all: the heap left per key.
 */
const leftAfterRefreshes = (keys: ReadonlyArray<string>, removal: "flush" | "deleteMany", succeed: boolean) =>
  Effect.scoped(Effect.gen(function*() {
    progress(`memory: leak check, ${removal}, refreshes ${succeed ? "succeed" : "fail"}`)
    const cache = yield* Vela.make<number>({
      name: `leak-${removal}-${succeed}`,
      refreshBackoff: "1 hour",
      sweepInterval: SETTLE_SWEEP
    })
    const options = { ttl: 1, grace: "1 hour" } as const
    const wanted = keys.slice(0, LEAK_KEYS)
    const refresh = () => succeed ? Effect.succeed(-1) : Effect.fail("source down")
    const before = heap()
    for (const [i, key] of wanted.entries()) yield* cache.getOrFetch(key, () => Effect.succeed(i), options)
    yield* Effect.sleep("5 millis")
    for (const key of wanted) yield* cache.getOrFetch(key, refresh, options)
    // The refreshes run in the background; wait until every one has ended.
    const ended = Effect.map(
      cache.stats(),
      (stats) => succeed ? stats.writes === 2 * LEAK_KEYS : stats.refreshErrors === LEAK_KEYS
    )
    while (!(yield* ended)) yield* Effect.sleep("10 millis")
    if (removal === "flush") yield* cache.flush()
    else yield* cache.deleteMany(wanted)
    if ((yield* cache.size()) !== 0) throw new Error(`leak check: ${removal} left entries`)
    // A mass delete leaves the store's old table to be dropped by the sweeper a batch at a time
    // (StableMap): let it finish, or the figure says only whether a sweep came before the measure.
    yield* Effect.sleep(SETTLE)
    return (heap() - before) / LEAK_KEYS
  })).pipe(Effect.provide(Local.layer.pipe(Layer.provide(Memory.layer()))))

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const table of (await run()).tables) console.log(renderText(table))
}
