/**
 * hitratio_bench: hit ratio and cost per operation of the eviction policies on synthetic traces:
 * Zipf-distributed reads (skew 0.8, 0.9, 1.0) over 100,000 keys with the cache at 1% of the key
 * space, and the same Zipf 0.9 trace polluted by scans of never-repeated keys. Each request is a
 * read-through: `get`, and `put` on a miss, through the facade. Traces are seeded, so every policy
 * sees the same requests. Run: `node --expose-gc packages/bench/dist/hitratio_bench.js`.
 */
import type { Backend } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import * as Drive from "./internal/drive.js"
import type { SuiteResult, Table } from "./internal/report.js"
import { progress, renderText } from "./internal/report.js"

const KEYS = 100_000
const REQUESTS = 1_000_000
const CAPACITY = KEYS / 100
const policies: ReadonlyArray<Backend.EvictionPolicy> = ["lru", "lfu", "tinylfu"]

const zipf = (skew: number, seed: number): Array<string> =>
  Array.from(Drive.zipfRanks(KEYS, skew, REQUESTS, seed), (rank) => `k${rank}`)

/** Every 10,000 requests, a scan of 2,000 keys that are never requested again. */
const scanPolluted = (trace: ReadonlyArray<string>): Array<string> =>
  trace.flatMap((key, i) =>
    i % 10_000 === 0 ? [key, ...Array.from({ length: 2_000 }, (_, j) => `scan${i}-${j}`)] : [key]
  )

const replay = async (policy: Backend.EvictionPolicy, trace: ReadonlyArray<string>) => {
  const cache = createCache<number>({ maxSize: CAPACITY, evictionPolicy: policy, statsEnabled: true })
  const start = performance.now()
  for (let i = 0; i < trace.length; i++) {
    if ((await cache.get(trace[i])) === undefined) await cache.put(trace[i], i)
  }
  const nsPerRequest = ((performance.now() - start) * 1e6) / trace.length
  const { hitRate } = await cache.stats()
  await cache.close()
  return { hitRate, nsPerRequest }
}

export const run = async (): Promise<SuiteResult> => {
  const traces: Array<[string, Array<string>]> = [
    ["zipf 0.8", zipf(0.8, 1)],
    ["zipf 0.9", zipf(0.9, 2)],
    ["zipf 1.0", zipf(1.0, 3)]
  ]
  traces.push(["zipf 0.9 + scans", scanPolluted(traces[1][1])])
  const measured: Array<{ trace: string; policy: string; hitRate: number; nsPerRequest: number }> = []
  for (const [name, trace] of traces) {
    for (const policy of policies) {
      progress(`hitratio: ${name} · ${policy}`)
      measured.push({ trace: name, policy, ...(await replay(policy, trace)) })
    }
  }
  const of = (trace: string, policy: string) => measured.find((m) => m.trace === trace && m.policy === policy)!
  const table: Table = {
    title: `hitratio_bench: ${KEYS.toLocaleString("en-US")} keys, cache of ${
      CAPACITY.toLocaleString("en-US")
    } (1%), read-through`,
    columns: ["trace", ...policies.map((p) => `${p} hit%`), ...policies.map((p) => `${p} ns/req`)],
    rows: traces.map(([name]) => [
      name,
      ...policies.map((p) => (of(name, p).hitRate * 100).toFixed(2)),
      ...policies.map((p) => of(name, p).nsPerRequest.toFixed(0))
    ])
  }
  return {
    name: "hitratio",
    title: "hitratio_bench: eviction policies on Zipf traces",
    description: "Read-through (get, put on a miss) through the facade of a cache bounded to 1% of 100,000 keys, " +
      "on seeded Zipf traces of 1,000,000 requests (skew 0.8, 0.9, 1.0) and the 0.9 trace polluted by scans of " +
      "never-repeated keys. One pass per trace and policy: hit ratio is exact; ns/request is one run, no spread.",
    tables: [table],
    charts: [{
      file: "hitratio.svg",
      title: "hitratio_bench: hit ratio by eviction policy (%, higher is better)",
      panels: traces.map(([name]) => ({
        title: name,
        unit: "hit %",
        bars: policies.map((p) => ({ label: `Vela ${p}`, value: of(name, p).hitRate * 100 }))
      }))
    }],
    notes: [],
    data: measured
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const table of (await run()).tables) console.log(renderText(table))
}
