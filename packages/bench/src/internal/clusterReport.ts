/** cluster_bench's tables, chart and goal lines from its rows. */
import type { Case, Pauses, Row } from "./clusterCases.js"
import { IOREDIS_GET, LOCAL } from "./clusterCases.js"
import { CONCURRENCY, PEERS } from "./clusterWorkload.js"
import { stallGoal } from "./measure.js"
import type { Chart, Table } from "./report.js"
import { fmtMs, fmtOps, fmtRatio } from "./report.js"

const rowOf = (rows: ReadonlyArray<Row>, name: string, concurrency: number) =>
  rows.find((row) => row.name === name && row.concurrency === concurrency && row.failed === undefined)

const figureOf = (rows: ReadonlyArray<Row>, name: string, concurrency: number) => rowOf(rows, name, concurrency)?.figure

export const table = (c: Case, rows: ReadonlyArray<Row>): Table => {
  const cells = (name: string, concurrency: number): Array<string> => {
    const row = rows.find((r) => r.name === name && r.concurrency === concurrency)
    if (row?.figure === undefined || row.failed !== undefined) {
      return [`FAILED: ${row?.failed ?? "not run"}`, "", "", "", ""]
    }
    const f = row.figure
    const base = figureOf(rows, c.baseline.entry, concurrency)
    return [
      fmtOps(f.opsPerSec),
      `${fmtOps(f.minOpsPerSec)}–${fmtOps(f.maxOpsPerSec)}`,
      fmtMs(f.p50),
      fmtMs(f.p99),
      name === c.baseline.entry
        ? "(baseline)"
        : base === undefined
        ? ""
        : `${fmtRatio(f.opsPerSec / base.opsPerSec)} ${c.baseline.short}`
    ]
  }
  return {
    title: `cluster_bench · ${c.name}`,
    columns: [
      "",
      "c=1 ops/s",
      "spread",
      "p50",
      "p99",
      "throughput",
      "c=64 ops/s",
      "spread",
      "p50",
      "p99",
      "throughput"
    ],
    rows: c.entries.map(({ name }) => [name, ...CONCURRENCY.flatMap((concurrency) => cells(name, concurrency))])
  }
}

/**
 * The issue's goal: remote get at concurrency 64 at least raw ioredis GET's throughput at 64, same
 * run; raw ioredis taken as `new Redis(url)` gives it (auto-pipelining is a row of its own).
 */
export const goal = (rows: ReadonlyArray<Row>): string | undefined => {
  const ioredis = figureOf(rows, IOREDIS_GET, 64)
  if (ioredis === undefined) return undefined
  const ratios = rows.filter((row) =>
    row.case === "remote get" && row.concurrency === 64 && !row.name.startsWith("ioredis")
  )
    .map((row) => ({
      name: row.name,
      ratio: row.figure === undefined ? undefined : row.figure.opsPerSec / ioredis.opsPerSec
    }))
  const met = ratios.filter((r) => r.ratio !== undefined && r.ratio >= 1)
  return `Goal: remote get at concurrency 64 ≥ raw ioredis GET (default client) at concurrency 64 (${
    fmtOps(ioredis.opsPerSec)
  } ops/s) — ${ratios.map((r) => `${r.name} ${r.ratio === undefined ? "FAILED" : fmtRatio(r.ratio)}`).join(", ")} (${
    met.length === ratios.length
      ? "met"
      : met.length === 0
      ? "MISSED"
      : `met by ${met.map((r) => r.name).join(", ")} only`
  }).`
}

/**
 * Issue 18's goals: no round of any case slower than a third of its median (a stall, not a cost);
 * Replicated put at least half Partitioned r1's at concurrency 64; remote get p99 at concurrency 64
 * at most twice raw ioredis GET's.
 */
export const issue18Goals = (rows: ReadonlyArray<Row>): Array<string> => {
  const lines = [
    stallGoal(
      rows,
      (row) => `${row.case} · ${row.name} at c=${row.concurrency}`,
      (row) => row.name.startsWith("ioredis") || row.name === LOCAL
    )
  ]
  const replicated = figureOf(rows, `Replicated (${1 + PEERS} holders)`, 64)
  const r1 = figureOf(rows, "Partitioned r1 (2 holders)", 64)
  if (replicated !== undefined && r1 !== undefined) {
    const share = replicated.opsPerSec / r1.opsPerSec
    lines.push(
      `Goal (issue 18): Replicated put ≥ 50% of Partitioned r1 put at concurrency 64 — ${(share * 100).toFixed(0)}% (${
        share >= 0.5 ? "met" : "MISSED"
      }).`
    )
  }
  const ioredisRow = rowOf(rows, IOREDIS_GET, 64)
  const ioredis = ioredisRow?.figure
  if (ioredis !== undefined) {
    const remote = rows.filter((row) =>
      row.case === "remote get" && row.concurrency === 64 && !row.name.startsWith("ioredis") &&
      row.figure !== undefined && row.failed === undefined
    )
    const over = remote.filter((row) => row.figure!.p99 > 2 * ioredis.p99)
    lines.push(
      `Goal (issue 18): remote get p99 at concurrency 64 ≤ 2× raw ioredis GET's (${fmtMs(ioredis.p99)}) — ${
        remote.map((row) => `${row.name} ${fmtRatio(row.figure!.p99 / ioredis.p99)}`).join(", ")
      } (${over.length === 0 ? "met" : over.length === remote.length ? "MISSED" : "met by some only"}).`
    )
    const paused = [ioredisRow, ...remote].filter((row): row is Row & { gc: Pauses } => row?.gc !== undefined)
    lines.push(
      `Garbage collection in this process (node A) during each latency pass at concurrency 64 (pauses, their sum, ` +
        `the longest): ${
          paused.map((row) => `${row.name} ${row.gc.count}, ${fmtMs(row.gc.total)}, ${fmtMs(row.gc.longest)}`).join(
            "; "
          )
        }. A pause holds every call in flight, so a p99 near the longest pause is the collector's.`
    )
  }
  return lines
}

export const chart = (cases: ReadonlyArray<Case>, rows: ReadonlyArray<Row>): Chart => ({
  file: "cluster.svg",
  title: "cluster_bench: 3 processes on loopback, concurrency 64 (ops/s, higher is better)",
  panels: cases.map((c) => ({
    title: c.name,
    unit: "ops/s",
    bars: rows.filter((row) => row.case === c.name && row.concurrency === 64).map((row) => {
      const label = row.name.startsWith("ioredis") ? row.name : `Vela ${row.name}`
      return row.figure === undefined || row.failed !== undefined
        ? { label, value: 0, note: `FAILED: ${row.failed}` }
        : { label, value: row.figure.opsPerSec, lo: row.figure.minOpsPerSec, hi: row.figure.maxOpsPerSec }
    })
  }))
})
