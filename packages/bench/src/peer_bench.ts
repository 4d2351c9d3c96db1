/**
 * peer_bench, the peer comparison of issue 8: Vela beside the caches a user would pick instead, in
 * the same run, each behind the adapter of `internal/contenders.ts` (peers in `inProcessContenders.ts` and
 * `remoteContenders.ts`) and checked before it is timed.
 *
 * Keys: 100,000 (`key:0` … `key:99999`), every one preloaded with a small object and a 1 hour TTL
 * before the cases, the same for every contender. Cases: get hit (round-robin over the keys), get
 * miss (`miss:<i>`, never written), getOrFetch of one hot key (always cached), put with a TTL
 * (overwrites, round-robin), and a mix of 90% gets / 10% puts on keys drawn from a Zipf
 * distribution (exponent 0.99, seeded). Each at concurrency 1 and 64: throughput (median of the
 * rounds, which are interleaved across the contenders of a group so that a change of load falls on
 * all alike; spread = slowest–fastest round), p50/p99 latency of a separate pass that times every
 * call, and the time ratio to the fastest contender of the group (1.00 = fastest; the Map floor is
 * not a contender). Then heap per entry for the in-process caches (1,000,000 entries with `--full`,
 * 100,000 by default).
 * Run: `npm run bench -- peer` (or `node --expose-gc packages/bench/dist/main.js peer [--full]`).
 */
import type { Contender, Factory, Group, Unavailable, Value } from "./internal/contenders.js"
import * as Contenders from "./internal/contenders.js"
import * as Drive from "./internal/drive.js"
import type { Env } from "./internal/env.js"
import type { Row } from "./internal/groups.js"
import { caseTable, CONCURRENCY, runGroup, timing } from "./internal/groups.js"
import * as InProcessContenders from "./internal/inProcessContenders.js"
import type { CaseFigure } from "./internal/measure.js"
import { collect, full } from "./internal/measure.js"
import * as RemoteContenders from "./internal/remoteContenders.js"
import type { Chart, SuiteResult, Table } from "./internal/report.js"
import { fmtRatio, message, progress } from "./internal/report.js"

const KEYS = 100_000
const TRACE = 200_000
const TTL = 3_600_000
const MEMORY_ENTRIES = full ? 1_000_000 : 100_000

const keys = Array.from({ length: KEYS }, (_, i) => `key:${i}`)
const values = keys.map((key, i) => Contenders.valueOf(key, i))
const missing = Array.from({ length: KEYS }, (_, i) => `miss:${i}`)

const workloads = (): ReadonlyArray<Drive.Workload> => {
  const ranks = Drive.zipfRanks(KEYS, 0.99, TRACE, 42)
  const coin = Drive.random(7)
  const codes = new Uint8Array(TRACE)
  const zipfKeys: Array<string> = []
  const zipfValues: Array<Value> = []
  for (let i = 0; i < TRACE; i++) {
    codes[i] = coin() < 0.1 ? Drive.SET : Drive.GET
    zipfKeys.push(keys[ranks[i]])
    zipfValues.push(values[ranks[i]])
  }
  return [
    Drive.uniform("get hit", Drive.GET, keys, values, true, TTL),
    Drive.uniform("get miss", Drive.GET, missing, values, false, TTL),
    Drive.uniform("getOrFetch hot key", Drive.FETCH, [keys[0]], [values[0]], true, TTL),
    Drive.uniform("put with TTL", Drive.SET, keys, values, true, TTL),
    Drive.workload("zipf 90/10 mix", codes, zipfKeys, zipfValues, true, TTL)
  ]
}

/** Heap growth per entry after `entries` puts into a fresh cache, after a full GC; keys and values are allocated before. */
const memoryPerEntry = async (factory: Factory, w: Drive.Workload): Promise<number | string> => {
  collect()
  collect()
  const before = process.memoryUsage().heapUsed
  let contender: Contender
  try {
    contender = await factory.make()
  } catch (error) {
    return `left out: ${message(error)}`
  }
  try {
    await Drive.drive(contender, w, w.keys.length, 1)
    collect()
    collect()
    const perEntry = (process.memoryUsage().heapUsed - before) / w.keys.length
    const probe = await Contenders.callable(contender).get(w.keys[w.keys.length - 1])
    if (probe?.id !== w.keys[w.keys.length - 1]) return "lost entries"
    return perEntry
  } catch (error) {
    return `threw ${message(error)}`
  } finally {
    await contender.close().catch(() => {})
  }
}

const chart = (file: string, title: string, rows: ReadonlyArray<Row>, concurrency: number): Chart => {
  const cases = [...new Set(rows.map((row) => row.case))]
  return {
    file,
    title,
    panels: cases.map((name) => ({
      title: `${name}, concurrency ${concurrency}`,
      unit: "ops/s",
      bars: rows.filter((row) => row.case === name && row.concurrency === concurrency).map((row) =>
        row.figure === undefined || row.failed !== undefined
          ? { label: row.contender, value: 0, note: `FAILED: ${row.failed}` }
          : {
            label: row.contender,
            value: row.figure.opsPerSec,
            lo: row.figure.minOpsPerSec,
            hi: row.figure.maxOpsPerSec
          }
      )
    }))
  }
}

const figureOf = (rows: ReadonlyArray<Row>, contender: string, name: string, concurrency: number) =>
  rows.find((row) =>
    row.contender === contender && row.case === name && row.concurrency === concurrency && row.failed === undefined
  )?.figure

/** The goals of issues 8 and 18, met or not, with the figures. */
const goals = (rows: ReadonlyArray<Row>): Array<string> => {
  const lines: Array<string> = []
  const ratio = (a: CaseFigure | undefined, b: CaseFigure | undefined) =>
    a === undefined || b === undefined ? undefined : a.opsPerSec / b.opsPerSec
  const facade = figureOf(rows, "Vela (facade)", "get hit", 1)
  const lru = figureOf(rows, "lru-cache", "get hit", 1)
  const slower = ratio(lru, facade)
  if (slower !== undefined && facade !== undefined) {
    const others = rows.filter((row) =>
      row.group === "in-process" && row.case === "get hit" && row.concurrency === 1 && !row.floor &&
      row.figure !== undefined && row.failed === undefined && row.contender !== "lru-cache" &&
      !row.contender.startsWith("Vela")
    )
    const beaten = others.filter((row) => row.figure!.opsPerSec > facade.opsPerSec).map((row) => row.contender)
    lines.push(
      `Goal: facade get hit within 2× of lru-cache — ${fmtRatio(slower)} (${
        slower <= 2 ? "met" : "MISSED"
      }); faster than every other contender — ${
        beaten.length === 0 ? "met" : `MISSED (slower than ${beaten.join(", ")})`
      }.`
    )
  }
  for (const concurrency of CONCURRENCY) {
    for (const name of ["get hit", "put with TTL"]) {
      const raw = figureOf(rows, "ioredis (raw)", name, concurrency)
      for (const vela of ["Vela Redis (facade)", "Vela Redis (Effect)"]) {
        const r = ratio(figureOf(rows, vela, name, concurrency), raw)
        // Issue 8 asked 80% everywhere; issue 18 asks 90% of the Effect API at concurrency 1.
        const [issue, share] = concurrency === 1 && vela === "Vela Redis (Effect)" ? [18, 0.9] : [8, 0.8]
        if (r !== undefined) {
          lines.push(
            `Goal (issue ${issue}): ${vela} ${name} at concurrency ${concurrency} ≥ ${share * 100}% of raw ioredis — ${
              (r * 100).toFixed(1)
            }% (${r >= share ? "met" : "MISSED"}).`
          )
        }
      }
    }
    const bento = figureOf(rows, "bentocache (memory+redis)", "zipf 90/10 mix", concurrency)
    for (const vela of ["Vela near+Redis (facade)", "Vela near+Redis (Effect)"]) {
      const r = ratio(figureOf(rows, vela, "zipf 90/10 mix", concurrency), bento)
      if (r !== undefined) {
        lines.push(
          `Goal: ${vela} faster than bentocache's two-tier cache on the zipf mix at concurrency ${concurrency} — ${
            fmtRatio(r)
          } its throughput (${r > 1 ? "met" : "MISSED"}).`
        )
      }
    }
  }
  return lines
}

export const run = async (env: Env): Promise<SuiteResult> => {
  const cases = workloads()
  const rows: Array<Row> = []
  const unavailable: Array<Unavailable> = []
  const usages = new Map<string, string>()
  const out = { rows, unavailable, usages }
  const preload = Drive.uniform("preload", Drive.SET, keys, values, true, TTL)
  const notes: Array<string> = []
  await runGroup("peer", InProcessContenders.inProcess(KEYS + 1_000), preload, cases, out)

  const redis = await env.redis()
  if ("url" in redis) {
    await runGroup("peer", RemoteContenders.onRedis(redis.url, KEYS + 1_000), preload, cases, out)
  } else {
    notes.push(`Redis contenders not measured: ${redis.error}.`)
  }
  await runGroup("peer", RemoteContenders.onSqlite(env.tmpDir), preload, cases, out)

  progress(`peer: memory per entry, ${MEMORY_ENTRIES.toLocaleString("en-US")} entries`)
  const memKeys = Array.from({ length: MEMORY_ENTRIES }, (_, i) => `mem:${i}`)
  const memValues = memKeys.map((key, i) => Contenders.valueOf(key, i))
  const memWorkload = Drive.uniform("memory", Drive.SET, memKeys, memValues, true, TTL)
  const memory: Array<{ contender: string; bytesPerEntry: number | string }> = []
  for (const factory of InProcessContenders.inProcess(MEMORY_ENTRIES + 1_000)) {
    progress(`peer: memory · ${factory.name}`)
    memory.push({ contender: factory.name, bytesPerEntry: await memoryPerEntry(factory, memWorkload) })
  }

  const tables: Array<Table> = []
  const groups: ReadonlyArray<Group> = ["in-process", "redis", "sqlite"]
  for (const group of groups) {
    for (const w of cases) {
      const caseRows = rows.filter((row) => row.group === group && row.case === w.name)
      if (caseRows.length > 0) tables.push(caseTable(`peer_bench · ${group} · ${w.name}`, caseRows))
    }
  }
  tables.push({
    title: `peer_bench · heap per entry, ${MEMORY_ENTRIES.toLocaleString("en-US")} entries (1 h TTL${
      full ? "" : "; short mode: pass --full for 1,000,000"
    })`,
    columns: ["contender", "bytes/entry"],
    rows: memory.map(({ bytesPerEntry, contender }) => [
      contender,
      typeof bytesPerEntry === "number" ? bytesPerEntry.toFixed(0) : bytesPerEntry
    ])
  })
  for (const { name, reason } of unavailable) notes.push(`${name} left out of the run: ${reason}`)
  notes.push(...goals(rows))
  if (!full) {
    notes.push(
      `Short mode: ${timing("in-process").rounds} rounds of about ${timing("in-process").targetMs} ms in process, ${
        timing("redis").rounds
      } of about ${timing("redis").targetMs} ms remote; heap per entry at ${
        MEMORY_ENTRIES.toLocaleString("en-US")
      } entries. Pass --full for the figures to quote.`
    )
  }
  const inProcessRows = rows.filter((row) => row.group === "in-process")
  const remoteRows = rows.filter((row) => row.group !== "in-process")
  return {
    name: "peer",
    title: "peer_bench: Vela beside the caches you would use instead",
    description: "100,000 keys preloaded (1 h TTL); get hit, get miss, getOrFetch of a hot key, put with TTL, and a " +
      "Zipf(0.99) 90% get / 10% put mix, at concurrency 1 and 64. Promise contenders are awaited once per call; " +
      "Effect contenders run in fibers. × fastest is the time ratio to the fastest contender of the group " +
      "(1.00 = fastest). Usage of each contender: " +
      [...usages].map(([name, usage]) => `${name}: ${usage}`).join("; ") + ".",
    tables,
    charts: [
      chart("peer_in_process.svg", "peer_bench, in process, concurrency 1 (ops/s, higher is better)", inProcessRows, 1),
      chart("peer_remote.svg", "peer_bench, Redis and SQLite, concurrency 64 (ops/s, higher is better)", remoteRows, 64)
    ],
    notes,
    data: { rows, memory, unavailable, memoryEntries: MEMORY_ENTRIES, keys: KEYS, trace: TRACE }
  }
}
