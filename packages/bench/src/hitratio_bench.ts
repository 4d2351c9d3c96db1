/**
 * hitratio_bench: hit ratio and cost per operation of the eviction policies on synthetic traces:
 * Zipf-distributed reads (skew 0.8, 0.9, 1.0) over 100,000 keys with the cache at 1% of the key
 * space; the Zipf 0.9 trace polluted by scans of never-repeated keys; a Zipf 0.9 trace whose hot set
 * moves to other keys every 100,000 requests; Zipf 0.9 interleaved with a loop over 2,000 keys; and a
 * plain loop over 1,250 keys (the case that empties LRU). Each request is a read-through: `get`, and
 * `put` on a miss, through the facade. Traces are seeded, so every policy sees the same requests.
 * Beside the policies, the offline optimum (Bélády's MIN, which knows every future request and may
 * decline to keep a key) is the ceiling no policy can pass.
 * Run: `node --expose-gc packages/bench/dist/hitratio_bench.js`.
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

/** Zipf 0.9 whose ranks map to other keys every 100,000 requests: yesterday's hot set goes cold. */
const shifting = (seed: number): Array<string> =>
  Array.from(
    Drive.zipfRanks(KEYS, 0.9, REQUESTS, seed),
    (rank, i) => `k${(rank + Math.floor(i / 100_000) * 7_919) % KEYS}`
  )

/** Every other request walks a loop over `length` keys; the rest are Zipf 0.9. */
const withLoop = (seed: number, length: number): Array<string> =>
  Array.from(
    Drive.zipfRanks(KEYS, 0.9, REQUESTS, seed),
    (rank, i) => i % 2 === 0 ? `k${rank}` : `loop${(i >> 1) % length}`
  )

const loop = (length: number): Array<string> => Array.from({ length: REQUESTS }, (_, i) => `loop${i % length}`)

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

/**
 * Bélády's MIN with bypass: on a miss with the cache full, the key whose next request is farthest away
 * goes, the incoming key included. A max-heap of next-request positions, stale entries skipped on pop.
 */
const optimum = (trace: ReadonlyArray<string>): number => {
  const nextUse = new Float64Array(trace.length)
  const seen = new Map<string, number>()
  for (let i = trace.length - 1; i >= 0; i--) {
    nextUse[i] = seen.get(trace[i]) ?? Infinity
    seen.set(trace[i], i)
  }
  const cached = new Map<string, number>()
  const heap: Array<readonly [number, string]> = []
  const push = (item: readonly [number, string]) => {
    heap.push(item)
    for (let i = heap.length - 1; i > 0;) {
      const parent = (i - 1) >> 1
      if (heap[parent][0] >= heap[i][0]) break
      ;[heap[parent], heap[i]] = [heap[i], heap[parent]]
      i = parent
    }
  }
  const pop = () => {
    const top = heap[0]
    const last = heap.pop()!
    if (heap.length > 0) {
      heap[0] = last
      for (let i = 0;;) {
        const left = 2 * i + 1
        let largest = i
        if (left < heap.length && heap[left][0] > heap[largest][0]) largest = left
        if (left + 1 < heap.length && heap[left + 1][0] > heap[largest][0]) largest = left + 1
        if (largest === i) break
        ;[heap[largest], heap[i]] = [heap[i], heap[largest]]
        i = largest
      }
    }
    return top
  }
  let hits = 0
  for (let i = 0; i < trace.length; i++) {
    const key = trace[i]
    if (cached.has(key)) hits++
    else if (cached.size >= CAPACITY) {
      while (cached.get(heap[0][1]) !== heap[0][0]) pop()
      if (nextUse[i] >= heap[0][0]) continue
      cached.delete(pop()[1])
    }
    cached.set(key, nextUse[i])
    push([nextUse[i], key])
  }
  return hits / trace.length
}

export const run = async (): Promise<SuiteResult> => {
  const traces: Array<[string, Array<string>]> = [
    ["zipf 0.8", zipf(0.8, 1)],
    ["zipf 0.9", zipf(0.9, 2)],
    ["zipf 1.0", zipf(1.0, 3)]
  ]
  traces.push(
    ["zipf 0.9 + scans", scanPolluted(traces[1][1])],
    ["zipf 0.9, shifting hot set", shifting(4)],
    ["zipf 0.9 + loop of 2,000", withLoop(5, 2_000)],
    ["loop of 1,250", loop(1_250)]
  )
  const measured: Array<{ trace: string; policy: string; hitRate: number; nsPerRequest: number }> = []
  const ceiling = new Map<string, number>()
  for (const [name, trace] of traces) {
    progress(`hitratio: ${name} · optimum`)
    ceiling.set(name, optimum(trace))
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
    columns: ["trace", "optimum hit%", ...policies.map((p) => `${p} hit%`), ...policies.map((p) => `${p} ns/req`)],
    rows: traces.map(([name]) => [
      name,
      (ceiling.get(name)! * 100).toFixed(2),
      ...policies.map((p) => (of(name, p).hitRate * 100).toFixed(2)),
      ...policies.map((p) => of(name, p).nsPerRequest.toFixed(0))
    ])
  }
  // The goals of issue 18: tinylfu best or within a point of the best policy everywhere, ahead of lfu
  // where the hot set shifts.
  const behindBest = traces.map(([name]) => {
    const best = Math.max(...policies.map((p) => of(name, p).hitRate))
    return { name, points: (best - of(name, "tinylfu").hitRate) * 100 }
  })
  const worst = behindBest.reduce((a, b) => (b.points > a.points ? b : a))
  const shift = "zipf 0.9, shifting hot set"
  const aheadOfLfu = (of(shift, "tinylfu").hitRate - of(shift, "lfu").hitRate) * 100
  return {
    name: "hitratio",
    title: "hitratio_bench: eviction policies on Zipf, scan, shifting and loop traces",
    description: "Read-through (get, put on a miss) through the facade of a cache bounded to 1% of 100,000 keys, " +
      "on seeded traces of 1,000,000 requests: Zipf (skew 0.8, 0.9, 1.0), the 0.9 trace polluted by scans of " +
      "never-repeated keys, Zipf 0.9 whose hot set moves to other keys every 100,000 requests, Zipf 0.9 " +
      "interleaved with a loop over 2,000 keys, and a loop over 1,250 keys. \"optimum\" is Bélády's offline " +
      "MIN (it knows the future), the ceiling for any policy. One pass per trace and policy: hit ratio is " +
      "exact; ns/request is one run, no spread.",
    tables: [table],
    charts: [{
      file: "hitratio.svg",
      title: "hitratio_bench: hit ratio by eviction policy (%, higher is better)",
      panels: traces.map(([name]) => ({
        title: name,
        unit: "hit %",
        bars: [
          { label: "optimum (Bélády)", value: ceiling.get(name)! * 100 },
          ...policies.map((p) => ({ label: `Vela ${p}`, value: of(name, p).hitRate * 100 }))
        ]
      }))
    }],
    notes: [
      `tinylfu at most ${worst.points.toFixed(2)} points behind the best policy (${worst.name}): ${
        worst.points <= 1 ? "met" : "MISSED"
      } (goal: best or within 1 point on every trace)`,
      `tinylfu ${aheadOfLfu.toFixed(2)} points ahead of lfu on the shifting hot set: ${
        aheadOfLfu > 0 ? "met" : "MISSED"
      } (goal: ahead)`
    ],
    data: measured
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const table of (await run()).tables) console.log(renderText(table))
}
