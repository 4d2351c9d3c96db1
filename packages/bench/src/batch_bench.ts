/**
 * batch_bench: `getMany` and `putMany` of 100 keys over Redis, through the Effect API and the
 * facade, against one raw ioredis `MGET` of the same 100 keys and a pipelined `SET … PX` of 100 in
 * the same run, on the run's own `redis-server`. One operation is one batch of 100 keys, one at a
 * time. Goals (issue 18): `getMany` within 1.5× of raw `MGET`, `putMany` within 1.5× of the
 * pipelined `SET … PX`.
 */
import { Redis } from "@vela/backend-redis"
import { Local, Vela } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Effect, Layer, Option } from "effect"
import { Redis as IORedis } from "ioredis"
import type * as Env from "./internal/env.js"
import type { Measurement } from "./internal/measure.js"
import { full, measure, toPanel, toTable } from "./internal/measure.js"
import type { SuiteResult } from "./internal/report.js"

const BATCH = 100
const keys = Array.from({ length: BATCH }, (_, i) => `batch:${i}`)
const entries = keys.map((key, i) => [key, i] as const)

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
      "getMany / putMany (Effect API and facade) against one raw ioredis MGET and a pipelined SET … PX of 100."
  }
  if ("error" in server) {
    return { ...base, tables: [], charts: [], notes: [`left out: ${server.error}`], data: null }
  }
  const ops = full ? 5_000 : 1_000
  const raw = new IORedis(server.url, { enableAutoPipelining: true })
  const backend = Redis.layer({ url: server.url, prefix: "bench-batch:" })
  const rows: Array<Measurement> = []
  try {
    await raw.mset(...entries.flatMap(([key, value]) => [`raw:${key}`, String(value)]))
    check("raw MGET", await raw.mget(keys.map((key) => `raw:${key}`)))
    rows.push(
      await measure("raw ioredis MGET ×100", ops, async () => {
        for (let i = 0; i < ops; i++) await raw.mget(keys.map((key) => `raw:${key}`))
      })
    )
    rows.push(
      await measure("raw ioredis pipelined SET PX ×100", ops, async () => {
        for (let i = 0; i < ops; i++) {
          const pipeline = raw.pipeline()
          for (const [key, value] of entries) pipeline.set(`raw:${key}`, String(value), "PX", 60_000)
          await pipeline.exec()
        }
      })
    )
    await Effect.runPromise(
      Effect.scoped(Effect.gen(function*() {
        const cache = yield* Vela.make<number>({ name: "effect" })
        yield* cache.putMany(entries)
        check("Vela (Effect) getMany", (yield* cache.getMany(keys)).map(Option.getOrUndefined))
        rows.push(
          yield* Effect.promise(() =>
            measure("Vela (Effect) getMany ×100", ops, () =>
              Effect.runPromise(Effect.gen(function*() {
                for (let i = 0; i < ops; i++) yield* cache.getMany(keys)
              })))
          ),
          yield* Effect.promise(() =>
            measure("Vela (Effect) putMany ×100", ops, () =>
              Effect.runPromise(Effect.gen(function*() {
                for (let i = 0; i < ops; i++) yield* cache.putMany(entries, { ttl: 60_000 })
              })))
          )
        )
      })).pipe(Effect.provide(Local.layer.pipe(Layer.provide(backend))))
    )
    const facade = createCache<number>({ name: "facade", backend })
    try {
      await facade.putMany(entries)
      check("Vela (facade) getMany", await facade.getMany(keys))
      rows.push(
        await measure("Vela (facade) getMany ×100", ops, async () => {
          for (let i = 0; i < ops; i++) await facade.getMany(keys)
        })
      )
    } finally {
      await facade.close()
    }
  } finally {
    raw.disconnect()
  }
  const nsOf = (name: string) => rows.find((row) => row.name === name)!.nsPerOp
  const goal = (name: string, raw: string) => {
    const ratio = nsOf(name) / nsOf(raw)
    return `${name} at ${ratio.toFixed(2)}× ${raw}: ${ratio <= 1.5 ? "met" : "MISSED"} (goal ≤ 1.5×)`
  }
  return {
    ...base,
    tables: [toTable("batch_bench: one batch of 100 keys over Redis", rows, rows[0].name)],
    charts: [{ file: "batch.svg", title: base.title, panels: [toPanel("one batch of 100 keys", rows)] }],
    notes: [
      goal("Vela (Effect) getMany ×100", "raw ioredis MGET ×100"),
      goal("Vela (Effect) putMany ×100", "raw ioredis pipelined SET PX ×100")
    ],
    data: rows
  }
}
