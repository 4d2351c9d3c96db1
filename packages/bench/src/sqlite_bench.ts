/**
 * sqlite_bench: the SQLite backend's `synchronous: "normal"` and its group commit, beside raw
 * better-sqlite3, on files in the run's scratch directory (was `packages/backend-sqlite/bench.mjs`).
 *
 * - get hit and put with TTL at concurrency 1 and 64, rounds interleaved (as peer_bench), with every
 *   file at `synchronous = NORMAL`: Vela through the facade and the Effect API beside raw prepared
 *   statements (autocommit). 10,000 keys (`user:<i>`, round-robin), each preloaded with a small
 *   object and a 1 hour TTL. peer_bench measures the same cases on Vela's default, `"full"`.
 * - 10,000 concurrent puts of distinct keys (one operation is one put), through the Effect API and
 *   the facade, with `synchronous` full and normal, beside raw better-sqlite3 putting the same 10,000
 *   in one transaction; with how many transactions Vela's group commit took per burst.
 * Run: `npm run bench -- sqlite` (or `node --expose-gc packages/bench/dist/main.js sqlite [--full]`).
 */
import { Sqlite } from "@vela/backend-sqlite"
import { Local } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Effect, Exit, Layer, Option, Scope } from "effect"
import type { Unavailable, Value } from "./internal/contenders.js"
import * as Contenders from "./internal/contenders.js"
import * as Drive from "./internal/drive.js"
import type { Env } from "./internal/env.js"
import type { Row } from "./internal/groups.js"
import { caseTable, runGroup } from "./internal/groups.js"
import type { Measurement } from "./internal/measure.js"
import { full, measure, toTable } from "./internal/measure.js"
import * as RemoteContenders from "./internal/remoteContenders.js"
import type { SuiteResult, Table } from "./internal/report.js"

const KEYS = 10_000
const TTL = 3_600_000
const BURST = 10_000

const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`)
const values = keys.map((key, i) => Contenders.valueOf(key, i))
const burstKeys = Array.from({ length: BURST }, (_, i) => `c${i}`)
const burstValues = burstKeys.map((key, i) => Contenders.valueOf(key, i))

/** A burst's answers read back: every key holds its own value. */
const verify = (name: string, found: ReadonlyArray<Value | undefined>) => {
  found.forEach((value, i) => {
    if (value?.id !== burstKeys[i]) throw new Error(`${name}: ${burstKeys[i]} read back ${JSON.stringify(value)}`)
  })
}

/** The three writers of one `synchronous` setting, each checked by one burst read back, then timed. */
const bursts = async (dir: string, synchronous: "full" | "normal"): Promise<Array<Measurement>> => {
  const rounds = full ? 7 : 3
  const label = (name: string) => `${name} [synchronous=${synchronous}]`
  const rows: Array<Measurement> = []
  const raw = await RemoteContenders.rawSqlite(`${dir}/burst-raw-${synchronous}.db`, synchronous)
  try {
    const many = raw.db.transaction(() => burstKeys.forEach((key, i) => raw.set(key, burstValues[i], TTL)))
    many()
    verify(label("raw"), burstKeys.map(raw.get))
    rows.push(
      await measure(label(`raw, ${BURST.toLocaleString("en-US")} puts in one transaction`), BURST, many, rounds)
    )
  } finally {
    raw.close()
  }
  let commits = 0
  const backend = (name: string) =>
    Sqlite.layer({ filename: `${dir}/burst-${name}-${synchronous}.db`, synchronous, onCommit: () => commits++ })
  /** Times `burst`, and names in the row how many transactions its last burst took. */
  const timed = async (name: string, burst: () => Promise<unknown>) => {
    const row = await measure(label(name), BURST, async () => {
      commits = 0
      await burst()
    }, rounds)
    return { ...row, name: `${row.name}: ${commits} transaction(s) per burst` }
  }
  const scope = Effect.runSync(Scope.make())
  try {
    const cache = await Contenders.openCache(scope, Local.layer.pipe(Layer.provide(backend("effect"))), {
      name: "burst",
      defaultTtl: TTL
    })
    const burst = () =>
      Effect.runPromise(
        Effect.all(burstKeys.map((key, i) => cache.put(key, burstValues[i])), {
          concurrency: "unbounded",
          discard: true
        })
      )
    await burst()
    verify(label("Vela (Effect)"), (await Effect.runPromise(cache.getMany(burstKeys))).map(Option.getOrUndefined))
    rows.push(await timed(`Vela (Effect), ${BURST.toLocaleString("en-US")} concurrent puts`, burst))
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
  const facade = createCache<Value>({ name: "burst", defaultTtl: TTL, backend: backend("facade") })
  try {
    const burst = () => Promise.all(burstKeys.map((key, i) => facade.put(key, burstValues[i])))
    await burst()
    verify(label("Vela (facade)"), await facade.getMany(burstKeys))
    rows.push(await timed(`Vela (facade), ${BURST.toLocaleString("en-US")} concurrent puts`, burst))
  } finally {
    await facade.close()
  }
  return rows
}

export const run = async (env: Env): Promise<SuiteResult> => {
  const rows: Array<Row> = []
  const unavailable: Array<Unavailable> = []
  const cases = [
    Drive.uniform("get hit", Drive.GET, keys, values, true, TTL),
    Drive.uniform("put with TTL", Drive.SET, keys, values, true, TTL)
  ]
  await runGroup(
    "sqlite",
    RemoteContenders.onSqlite(env.tmpDir, "normal"),
    Drive.uniform("preload", Drive.SET, keys, values, true, TTL),
    cases,
    { rows, unavailable, usages: new Map() }
  )
  const tables: Array<Table> = cases.map((w) =>
    caseTable(`sqlite_bench · ${w.name}, synchronous = NORMAL`, rows.filter((row) => row.case === w.name))
  )
  const burstRows: Array<Measurement> = []
  for (const synchronous of ["full", "normal"] as const) {
    const measured = await bursts(env.tmpDir, synchronous)
    burstRows.push(...measured)
    tables.push(
      toTable(
        `sqlite_bench · ${BURST.toLocaleString("en-US")} puts at once, synchronous = ${synchronous}`,
        measured,
        measured[0].name
      )
    )
  }
  return {
    name: "sqlite",
    title: "sqlite_bench: synchronous = NORMAL and group commit",
    description: "get hit and put with TTL at synchronous = NORMAL (10,000 keys, concurrency 1 and 64, rounds " +
      "interleaved) beside raw better-sqlite3; then 10,000 concurrent puts through the Effect API and the facade, " +
      "with the transactions Vela's group commit took, beside raw better-sqlite3 putting them in one transaction.",
    tables,
    charts: [],
    notes: unavailable.map(({ name, reason }) => `${name} left out: ${reason}`),
    data: { rows, bursts: burstRows }
  }
}
