/**
 * redis_bench: what the Redis backend costs beside raw ioredis, and what its bus and a near cache
 * change, on the run's own `redis-server` (was `packages/backend-redis/bench.mjs`).
 *
 * Keys: 10,000 (`user:<i>`, uniform round-robin), each preloaded with a small object and a 1 hour
 * TTL. Cases, each at concurrency 1 and 64 with the contenders' rounds interleaved (as peer_bench):
 * - put with TTL through the Effect API with the invalidation bus on and off, beside raw ioredis
 *   `SET … PX` (auto-pipelining): the bus's cost is the gap between the two Vela rows;
 * - get hit of a near cache over Redis beside a Memory cache, both through the Effect API: what a
 *   near-cache hit costs beyond an in-process one.
 * Redis `get` beside raw `GET` is peer_bench's (redis group, get hit), so it is not repeated here.
 * Run: `npm run bench -- redis` (or `node --expose-gc packages/bench/dist/main.js redis [--full]`).
 */
import { Local } from "@vela/core"
import { Layer } from "effect"
import type { Factory, Unavailable } from "./internal/contenders.js"
import * as Contenders from "./internal/contenders.js"
import * as Drive from "./internal/drive.js"
import type { Env } from "./internal/env.js"
import type { Row } from "./internal/groups.js"
import { caseTable, runGroup } from "./internal/groups.js"
import * as InProcessContenders from "./internal/inProcessContenders.js"
import * as RemoteContenders from "./internal/remoteContenders.js"
import type { SuiteResult } from "./internal/report.js"
import { fmtRatio } from "./internal/report.js"

const KEYS = 10_000
const TTL = 3_600_000

const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`)
const values = keys.map((key, i) => Contenders.valueOf(key, i))

const pick = (factories: ReadonlyArray<Factory>, name: string): Factory => factories.find((f) => f.name === name)!

const busOff = (url: string): Factory => ({
  name: "Vela Redis (Effect, bus off)",
  group: "redis",
  make: async () => {
    const { Redis } = await import("@vela/backend-redis")
    return Contenders.velaEffect(
      "Vela Redis (Effect, bus off)",
      "redis",
      "Vela.make on Local + Redis.layer({ url, prefix, bus: false }), in fibers",
      Local.layer.pipe(Layer.provide(Redis.layer({ url, prefix: "rb-off:", bus: false })))
    )
  }
})

export const run = async (env: Env): Promise<SuiteResult> => {
  const base = {
    name: "redis",
    title: "redis_bench: the Redis backend's bus and near cache",
    description: "10,000 keys preloaded (1 h TTL), at concurrency 1 and 64, rounds interleaved: put with TTL through " +
      "the Effect API with the invalidation bus on and off beside raw ioredis SET PX; get hit of a near cache over " +
      "Redis beside a Memory cache (Effect API)."
  }
  const server = await env.redis()
  if ("error" in server) return { ...base, tables: [], charts: [], notes: [`left out: ${server.error}`], data: null }
  const rows: Array<Row> = []
  const unavailable: Array<Unavailable> = []
  const out = { rows, unavailable, usages: new Map<string, string>() }
  const preload = Drive.uniform("preload", Drive.SET, keys, values, true, TTL)
  const onRedis = RemoteContenders.onRedis(server.url, KEYS + 1_000)
  const put = Drive.uniform("put with TTL", Drive.SET, keys, values, true, TTL)
  await runGroup(
    "redis",
    [pick(onRedis, "Vela Redis (Effect)"), busOff(server.url), pick(onRedis, "ioredis (raw)")],
    preload,
    [put],
    out
  )
  const hit = Drive.uniform("get hit", Drive.GET, keys, values, true, TTL)
  // Both are served in this process: timed with the in-process round sizes.
  const near = pick(onRedis, "Vela near+Redis (Effect)")
  await runGroup(
    "redis",
    [{ ...near, group: "in-process" }, pick(InProcessContenders.inProcess(KEYS + 1_000), "Vela (Effect)")],
    preload,
    [hit],
    out
  )
  const figure = (contender: string, concurrency: number) =>
    rows.find((row) => row.contender === contender && row.concurrency === concurrency && row.failed === undefined)
      ?.figure
  const notes = unavailable.map(({ name, reason }) => `${name} left out: ${reason}`)
  for (const concurrency of [1, 64]) {
    const on = figure("Vela Redis (Effect)", concurrency)
    const off = figure("Vela Redis (Effect, bus off)", concurrency)
    const raw = figure("ioredis (raw)", concurrency)
    if (concurrency === 1 && on !== undefined && raw !== undefined) {
      const share = on.opsPerSec / raw.opsPerSec
      notes.push(
        `Goal (issue 18): Vela Redis (Effect) put at concurrency 1 ≥ 90% of raw ioredis — ${
          (share * 100).toFixed(1)
        }% (${share >= 0.9 ? "met" : "MISSED"}).`
      )
    }
    if (on !== undefined && off !== undefined) {
      notes.push(
        `put at concurrency ${concurrency}: bus on runs at ${
          fmtRatio(on.opsPerSec / off.opsPerSec)
        } bus off's throughput.`
      )
    }
  }
  return {
    ...base,
    tables: [
      caseTable("redis_bench · put with TTL, bus on and off", rows.filter((row) => row.case === put.name)),
      caseTable("redis_bench · get hit, near cache over Redis and Memory", rows.filter((row) => row.case === hit.name))
    ],
    charts: [],
    notes,
    data: { rows, keys: KEYS }
  }
}
