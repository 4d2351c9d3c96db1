/**
 * batch_bench: `getMany` and `putMany` of 100 keys over Redis, through the Effect API and the
 * facade, against one raw ioredis `MGET` of the same 100 keys and a pipelined `SET … PX` of 100 in
 * the same run, on the run's own `redis-server`. One operation is one batch of 100 keys, one at a
 * time. The cases' rounds are interleaved (round 1 of each, then round 2 of each, …), so a change
 * of load on a shared machine falls on all of them alike; a goal's ratio is the median of the
 * rounds' own ratios. Goals (issue 18): `getMany` within 1.5× of raw `MGET`, `putMany` within 1.5×
 * of the pipelined `SET … PX`.
 */
import { Redis } from "@vela/backend-redis"
import { Local, Vela } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Effect, Layer, Option } from "effect"
import { Redis as IORedis } from "ioredis"
import type * as Env from "./internal/env.js"
import type { Measurement } from "./internal/measure.js"
import { collect, full, median, toPanel, toTable } from "./internal/measure.js"
import type { SuiteResult } from "./internal/report.js"
import { progress } from "./internal/report.js"

const BATCH = 100
const keys = Array.from({ length: BATCH }, (_, i) => `batch:${i}`)
const entries = keys.map((key, i) => [key, i] as const)

/** A case: its name and one round of `ops` batches. */
type Case = readonly [name: string, round: () => Promise<unknown>]

/**
 * Times `cases` with their rounds interleaved, after one warm-up round of each and a full GC.
 * Resolves to each case's measurement (median round, ns per batch) and its rounds in order.
 */
const interleaved = async (
  cases: ReadonlyArray<Case>,
  ops: number,
  rounds: number
): Promise<Array<{ readonly measurement: Measurement; readonly samples: ReadonlyArray<number> }>> => {
  for (const [name, round] of cases) {
    progress(`${name}: warm-up`)
    await round()
  }
  collect()
  progress(`${cases.length} cases, ${rounds} rounds of ${ops} batches each, interleaved`)
  const samples = cases.map((): Array<number> => [])
  for (let r = 0; r < rounds; r++) {
    for (let c = 0; c < cases.length; c++) {
      const start = performance.now()
      await cases[c][1]()
      samples[c].push(((performance.now() - start) * 1e6) / ops)
    }
  }
  return cases.map(([name], c) => {
    const sorted = [...samples[c]].sort((a, b) => a - b)
    const nsPerOp = sorted[Math.floor(sorted.length / 2)]
    return {
      measurement: { name, nsPerOp, min: sorted[0], max: sorted[sorted.length - 1], opsPerSec: 1e9 / nsPerOp },
      samples: samples[c]
    }
  })
}

const floor = "floor: raw MGET ×100 of Vela's entries, parsed"

const check = (name: string, values: ReadonlyArray<unknown>) => {
  values.forEach((value, i) => {
    if (Number(value) !== i) throw new Error(`${name} returned ${String(value)} for ${keys[i]}`)
  })
}

export const run = async (env: Env.Env): Promise<SuiteResult> => {
  const server = await env.redis()
  const base = {
    name: "batch",
    title: "batch_bench: getMany / putMany of 100 keys over Redis",
    description: "One operation is a batch of 100 keys, one batch at a time, on the run's redis-server: Vela's " +
      "getMany / putMany (Effect API and facade) against one raw ioredis MGET and a pipelined SET … PX of 100, " +
      "the cases' rounds interleaved. Floor: raw MGET of the Effect cache's own 100 entries (its namespaced keys " +
      "and headers) with each value parsed, what any client pays for that layout."
  }
  if ("error" in server) {
    return { ...base, tables: [], charts: [], notes: [`left out: ${server.error}`], data: null }
  }
  const ops = full ? 300 : 100
  const rounds = full ? 61 : 41
  const raw = new IORedis(server.url, { enableAutoPipelining: true })
  const backend = Redis.layer({ url: server.url, prefix: "bench-batch:" })
  let results: Array<{ readonly measurement: Measurement; readonly samples: ReadonlyArray<number> }> = []
  const facade = createCache<number>({ name: "facade", backend })
  try {
    await raw.mset(...entries.flatMap(([key, value]) => [`raw:${key}`, String(value)]))
    check("raw MGET", await raw.mget(keys.map((key) => `raw:${key}`)))
    await facade.putMany(entries)
    check("Vela (facade) getMany", await facade.getMany(keys))
    await Effect.runPromise(
      Effect.scoped(Effect.gen(function*() {
        const cache = yield* Vela.make<number>({ name: "effect" })
        yield* cache.putMany(entries)
        check("Vela (Effect) getMany", (yield* cache.getMany(keys)).map(Option.getOrUndefined))
        // The Effect cache's entry keys, in the order of `keys` (the layout is the backend's own).
        const stored = yield* Effect.promise(() => raw.keys("bench-batch:*:effect:k:batch:*"))
        const entryKeys = keys.map((key) => stored.find((name) => name.endsWith(`:k:${key}`))!)
        const parsed = (payloads: ReadonlyArray<string | null>) =>
          payloads.map((payload) => payload === null ? undefined : JSON.parse(payload.slice(payload.indexOf("\n") + 1)))
        check("floor", parsed(yield* Effect.promise(() => raw.mget(entryKeys))))
        const cases: ReadonlyArray<Case> = [
          ["raw ioredis MGET ×100", async () => {
            for (let i = 0; i < ops; i++) await raw.mget(keys.map((key) => `raw:${key}`))
          }],
          [floor, async () => {
            for (let i = 0; i < ops; i++) parsed(await raw.mget(entryKeys))
          }],
          ["raw ioredis pipelined SET PX ×100", async () => {
            for (let i = 0; i < ops; i++) {
              const pipeline = raw.pipeline()
              for (const [key, value] of entries) pipeline.set(`raw:${key}`, String(value), "PX", 60_000)
              await pipeline.exec()
            }
          }],
          ["Vela (Effect) getMany ×100", () =>
            Effect.runPromise(Effect.gen(function*() {
              for (let i = 0; i < ops; i++) yield* cache.getMany(keys)
            }))],
          ["Vela (Effect) putMany ×100", () =>
            Effect.runPromise(Effect.gen(function*() {
              for (let i = 0; i < ops; i++) yield* cache.putMany(entries, { ttl: 60_000 })
            }))],
          ["Vela (facade) getMany ×100", async () => {
            for (let i = 0; i < ops; i++) await facade.getMany(keys)
          }]
        ]
        results = yield* Effect.promise(() => interleaved(cases, ops, rounds))
      })).pipe(Effect.provide(Local.layer.pipe(Layer.provide(backend))))
    )
  } finally {
    await facade.close()
    raw.disconnect()
  }
  const rows = results.map((result) => result.measurement)
  const samplesOf = (name: string) => results.find((result) => result.measurement.name === name)!.samples
  /** The median of the rounds' own ratios of `name` to `base`. */
  const ratio = (name: string, base: string) => {
    const theirs = samplesOf(base)
    return median(samplesOf(name).map((ns, round) => ns / theirs[round]))
  }
  const goal = (name: string, raw: string) => {
    const found = ratio(name, raw)
    return `${name} at ${found.toFixed(2)}× ${raw} (median of the rounds' ratios): ${
      found <= 1.5 ? "met" : "MISSED"
    } (goal ≤ 1.5×)`
  }
  return {
    ...base,
    tables: [toTable("batch_bench: one batch of 100 keys over Redis", rows, rows[0].name)],
    charts: [{ file: "batch.svg", title: base.title, panels: [toPanel("one batch of 100 keys", rows)] }],
    notes: [
      goal("Vela (Effect) getMany ×100", "raw ioredis MGET ×100"),
      goal("Vela (Effect) putMany ×100", "raw ioredis pipelined SET PX ×100"),
      `${floor} at ${ratio(floor, "raw ioredis MGET ×100").toFixed(2)}× raw ioredis MGET ×100; ` +
      `Vela (Effect) getMany ×100 at ${ratio("Vela (Effect) getMany ×100", floor).toFixed(2)}× the floor.`
    ],
    data: rows
  }
}
