/**
 * get_bench, the original's `benchmarks/get_bench.exs`: hit, miss, put and getOrFetch (hit) through
 * the Effect API and the Promise facade, beside `lru-cache` and Effect's own `Cache` in the same run.
 * 10,000 keys preloaded, read round-robin. Run: `npm run bench` (or `node --expose-gc
 * packages/bench/dist/get_bench.js` after `npm run build`).
 */
import { Local, Memory, Vela } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Cache, Duration, Effect, Layer } from "effect"
import { LRUCache } from "lru-cache"
import { fileURLToPath } from "node:url"
import type { Measurement } from "./internal/measure.js"
import { measure, table, toPanel, toTable } from "./internal/measure.js"
import { fmtRatio } from "./internal/report.js"
import type { SuiteResult } from "./internal/report.js"

const KEYS = 10_000
const OPS = 200_000
const TTL = 3_600_000
const keys = Array.from({ length: KEYS }, (_, i) => `key:${i}`)
const missing = Array.from({ length: KEYS }, (_, i) => `missing:${i}`)

/** Fails loudly when a contender returns something other than the value it was given. */
const check = (name: string, actual: unknown, expected: unknown) => {
  if (actual !== expected) throw new Error(`${name} returned ${String(actual)}, expected ${String(expected)}`)
}

/**
 * Times each case in turn after a round of every case: the first case timed would otherwise pay for
 * the process's own warm-up too (its rounds spread twice as wide as when timed again later).
 */
const measureAll = async (
  cases: ReadonlyArray<readonly [name: string, round: () => Promise<unknown>]>
): Promise<Array<Measurement>> => {
  for (const [, round] of cases) await round()
  const rows: Array<Measurement> = []
  for (const [name, round] of cases) rows.push(await measure(name, OPS, round))
  return rows
}

const effectApi = async (): Promise<Array<Measurement>> => {
  return Effect.runPromise(Effect.scoped(
    Effect.gen(function*() {
      const vela = yield* Vela.make<number>({ name: "bench" })
      const effectCache = yield* Cache.make({
        capacity: KEYS * 2,
        timeToLive: Duration.infinity,
        lookup: (key: string) => Effect.succeed(Number(key.slice(4)))
      })
      for (let i = 0; i < KEYS; i++) {
        yield* vela.put(keys[i], i)
        yield* effectCache.get(keys[i])
      }
      check("vela get", yield* vela.get(keys[7]), 7)
      check("Effect Cache get", yield* effectCache.get(keys[7]), 7)
      const fetch = (key: string) => Effect.succeed(Number(key.slice(4)))
      const inFiber = (op: (i: number) => Effect.Effect<unknown, unknown>) => () =>
        Effect.runPromise(Effect.gen(function*() {
          for (let i = 0; i < OPS; i++) yield* op(i % KEYS)
        }))
      return yield* Effect.promise(() =>
        measureAll([
          ["Vela (Effect) get hit", inFiber((i) => vela.get(keys[i]))],
          ["Vela (Effect) getOption miss", inFiber((i) => vela.getOption(missing[i]))],
          ["Vela (Effect) put", inFiber((i) => vela.put(keys[i], i))],
          ["Vela (Effect) getOrFetch hit", inFiber((i) => vela.getOrFetch(keys[i], fetch))],
          ["Effect Cache.get hit", inFiber((i) => effectCache.get(keys[i]))],
          // The least a lazy call that may fail costs in a fiber: two run-loop steps, no cache work.
          ["Effect.suspend + succeed (floor)", inFiber((i) => Effect.suspend(() => Effect.succeed(i)))]
        ])
      )
    }).pipe(Effect.provide(Local.layer.pipe(Layer.provide(Memory.layer()))))
  ))
}

const promiseApi = async (): Promise<Array<Measurement>> => {
  const vela = createCache<number>({ name: "bench" })
  const lru = new LRUCache<string, number>({ max: KEYS * 2 })
  // The config users run: a bound and a policy, entries with a TTL; lru-cache set up alike.
  const bounded = createCache<number>({ name: "bounded", maxSize: KEYS * 2, evictionPolicy: "lru" })
  const lruTtl = new LRUCache<string, number>({ max: KEYS * 2, ttl: TTL })
  const map = new Map<string, number>()
  for (let i = 0; i < KEYS; i++) {
    await vela.put(keys[i], i)
    await bounded.put(keys[i], i, { ttl: TTL })
    lru.set(keys[i], i)
    lruTtl.set(keys[i], i, { ttl: TTL })
    map.set(keys[i], i)
  }
  check("bounded facade get", await bounded.get(keys[7]), 7)
  check("lru-cache (ttl) get", lruTtl.get(keys[7]), 7)
  check("facade get", await vela.get(keys[7]), 7)
  check("lru-cache get", lru.get(keys[7]), 7)
  const awaited = (op: (i: number) => unknown) => async () => {
    for (let i = 0; i < OPS; i++) await op(i % KEYS)
  }
  const rows = await measureAll([
    ["Vela (facade) await get hit", awaited((i) => vela.get(keys[i]))],
    ["Vela (facade) await get miss", awaited((i) => vela.get(missing[i]))],
    ["Vela (facade) await put", awaited((i) => vela.put(keys[i], i))],
    ["Vela (facade) await getOrFetch hit", awaited((i) => vela.getOrFetch(keys[i], () => i))],
    ["lru-cache await get hit", awaited((i) => lru.get(keys[i]))],
    ["lru-cache await set", awaited((i) => lru.set(keys[i], i))],
    ["Vela (facade, maxSize+lru) await get hit", awaited((i) => bounded.get(keys[i]))],
    ["Vela (facade, maxSize+lru) await put with TTL", awaited((i) => bounded.put(keys[i], i, { ttl: TTL }))],
    ["lru-cache (max+ttl) await get hit", awaited((i) => lruTtl.get(keys[i]))],
    ["lru-cache (max+ttl) await set with ttl", awaited((i) => lruTtl.set(keys[i], i, { ttl: TTL }))],
    ["Map await get (floor)", awaited((i) => map.get(keys[i]))]
  ])
  await vela.close()
  await bounded.close()
  return rows
}

/** Issue #18's goals for these rows, each as met or missed with the figure measured in this run. */
const goals = (effect: ReadonlyArray<Measurement>, promise: ReadonlyArray<Measurement>): Array<string> => {
  const ns = (rows: ReadonlyArray<Measurement>, name: string) => rows.find((row) => row.name === name)?.nsPerOp ?? NaN
  const verdict = (met: boolean) => met ? "met" : "missed"
  const versus = (what: string, vela: string, lru: string, plainLru: string, goal: number) => {
    const ratio = ns(promise, vela) / ns(promise, lru)
    return `Goal: facade ${what} (maxSize + lru, 1 h TTL) ≤ ${goal}× lru-cache's (max + ttl): ${fmtRatio(ratio)} — ${
      verdict(ratio <= goal)
    } (${fmtRatio(ns(promise, vela) / ns(promise, plainLru))} lru-cache's without max or ttl).`
  }
  const effectGet = ns(effect, "Vela (Effect) get hit")
  return [
    versus(
      "`await get` hit",
      "Vela (facade, maxSize+lru) await get hit",
      "lru-cache (max+ttl) await get hit",
      "lru-cache await get hit",
      1.25
    ),
    versus(
      "put with TTL",
      "Vela (facade, maxSize+lru) await put with TTL",
      "lru-cache (max+ttl) await set with ttl",
      "lru-cache await set",
      1.5
    ),
    `Goal: Effect API \`yield* get\` hit ≤ 250 ns: ${effectGet.toFixed(1)} ns — ${verdict(effectGet <= 250)} ` +
    `(floor, \`Effect.suspend\` of \`Effect.succeed\` in the same fiber: ${
      ns(effect, "Effect.suspend + succeed (floor)").toFixed(1)
    } ns).`
  ]
}

export const run = async (): Promise<SuiteResult> => {
  const effect = await effectApi()
  const promise = await promiseApi()
  return {
    name: "get",
    title: "get_bench: the original's get_bench.exs",
    description: "Hit, miss, put and getOrFetch (hit) through the Effect API (in a running fiber) and the Promise " +
      "facade (one await per call), beside lru-cache, Effect's Cache and a Map; 10,000 keys preloaded without TTL " +
      "(and, for the maxSize+lru facade and lru-cache with max+ttl, the config users run, with a 1 h TTL), " +
      "read round-robin, 200,000 operations per round, 7 rounds after a warm-up; median and slowest–fastest round.",
    tables: [
      toTable("get_bench: Effect API, in a running fiber", effect, "Effect Cache.get hit"),
      toTable("get_bench: Promise API, one await per call", promise, "lru-cache await get hit")
    ],
    charts: [{
      file: "get.svg",
      title: "get_bench (ns/op, lower is better)",
      panels: [toPanel("Effect API, in a running fiber", effect), toPanel("Promise API, one await per call", promise)]
    }],
    notes: goals(effect, promise),
    data: { effect, promise }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const effect = await effectApi()
  const promise = await promiseApi()
  console.log(table("get_bench: Effect API, in a running fiber", effect, "Effect Cache.get hit"))
  console.log(table("get_bench: Promise API, one await per call", promise, "lru-cache await get hit"))
}
