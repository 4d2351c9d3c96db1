/**
 * Timing a group of contenders (in process, Redis, SQLite) the way peer_bench does, for every suite
 * that compares contenders behind the adapter: built, checked and preloaded first, then each case
 * timed at concurrency 1 and 64 with the contenders' rounds interleaved, and shown as one table per case.
 */
import type { Contender, Factory, Group, Unavailable } from "./contenders.js"
import * as Contenders from "./contenders.js"
import * as Drive from "./drive.js"
import type { CaseFigure } from "./measure.js"
import { collect, full, timeInterleaved } from "./measure.js"
import type { Table } from "./report.js"
import { fmtMs, fmtOps, fmtRatio, message, progress } from "./report.js"

export const CONCURRENCY = [1, 64] as const

/** One contender on one case at one concurrency: its figure, or why it has none. */
export interface Row {
  readonly contender: string
  readonly group: Group
  readonly floor: boolean
  readonly case: string
  readonly concurrency: number
  readonly figure?: CaseFigure | undefined
  readonly failed?: string | undefined
}

/** Round sizes: short by default, longer with `--full`. */
export const timing = (group: Group) =>
  group === "in-process"
    ? { targetMs: full ? 300 : 60, rounds: full ? 7 : 3, firstOps: 2_000, maxOps: 5_000_000 }
    : { targetMs: full ? 1_000 : 150, rounds: full ? 5 : 3, firstOps: 500, maxOps: 1_000_000 }

/**
 * Builds, checks and preloads every contender of a group, then times them on each case with their
 * rounds interleaved, at concurrency 1 and 64; closes them whatever happens. `preload` runs once on each
 * checked contender. A contender that fails its check fails its rows.
 */
export const runGroup = async (
  suite: string,
  factories: ReadonlyArray<Factory>,
  preload: Drive.Workload,
  cases: ReadonlyArray<Drive.Workload>,
  out: {
    readonly rows: Array<Row>
    readonly unavailable: Array<Unavailable>
    /** How each contender is used, for the report; filled as they are built. */
    readonly usages: Map<string, string>
  }
): Promise<void> => {
  const { rows, unavailable, usages } = out
  const ready: Array<Contender> = []
  const built: Array<Contender> = []
  const failAll = (factory: Factory, floor: boolean, reason: string) => {
    for (const w of cases) {
      for (const concurrency of CONCURRENCY) {
        rows.push({ contender: factory.name, group: factory.group, floor, case: w.name, concurrency, failed: reason })
      }
    }
  }
  try {
    for (const factory of factories) {
      progress(`${suite}: ${factory.name}: build, check, preload ${preload.keys.length.toLocaleString("en-US")} keys`)
      let contender: Contender
      try {
        contender = await factory.make()
      } catch (error) {
        unavailable.push({ name: factory.name, reason: message(error) })
        progress(`${suite}: ${factory.name} left out: ${message(error)}`)
        continue
      }
      built.push(contender)
      usages.set(contender.name, contender.usage)
      const wrong = await Contenders.check(contender)
      if (wrong !== undefined) {
        progress(`${suite}: ${factory.name} FAILED its check: ${wrong}`)
        failAll(factory, contender.floor === true, `failed its check: ${wrong}`)
        continue
      }
      try {
        await Drive.drive(contender, preload, preload.keys.length, 64)
        ready.push(contender)
      } catch (error) {
        failAll(factory, contender.floor === true, `preload threw ${message(error)}`)
      }
    }
    if (ready.length === 0) return
    const group = ready[0].group
    for (const w of cases) {
      for (const concurrency of CONCURRENCY) {
        progress(
          `${suite}: ${group} · ${w.name} · concurrency ${concurrency} (${ready.length} contenders, interleaved)`
        )
        const figures = await timeInterleaved(
          ready.map((contender) => ({
            run: (n) => Drive.drive(contender, w, n, concurrency),
            latency: (n, samples) => Drive.drive(contender, w, n, concurrency, samples)
          })),
          timing(group)
        )
        figures.forEach((figure, i) => {
          const contender = ready[i]
          const base = { contender: contender.name, group, floor: contender.floor === true, case: w.name, concurrency }
          rows.push(
            "error" in figure
              ? { ...base, failed: `threw ${message(figure.error)}` }
              : { ...base, figure, failed: figure.wrong > 0 ? `${figure.wrong} wrong answers` : undefined }
          )
        })
        collect()
      }
    }
  } finally {
    for (const contender of built) await contender.close().catch(() => {})
    collect()
  }
}

const fastest = (rows: ReadonlyArray<Row>) =>
  Math.max(
    ...rows.filter((row) => !row.floor && row.failed === undefined && row.figure !== undefined)
      .map((row) => row.figure!.opsPerSec),
    0
  )

/** One case of one group: a row per contender, concurrency 1 and 64 side by side. */
export const caseTable = (title: string, rows: ReadonlyArray<Row>): Table => {
  const of = (concurrency: number) => rows.filter((row) => row.concurrency === concurrency)
  const best = Object.fromEntries(CONCURRENCY.map((c) => [c, fastest(of(c))]))
  const contenders = [...new Set(rows.map((row) => row.contender))]
  const cells = (row: Row | undefined): Array<string> => {
    if (row === undefined) return ["—", "", "", "", ""]
    if (row.failed !== undefined || row.figure === undefined) return [`FAILED: ${row.failed}`, "", "", "", ""]
    const f = row.figure
    return [
      fmtOps(f.opsPerSec),
      `${fmtOps(f.minOpsPerSec)}–${fmtOps(f.maxOpsPerSec)}`,
      fmtMs(f.p50),
      fmtMs(f.p99),
      row.floor ? "(floor)" : fmtRatio(best[row.concurrency] / f.opsPerSec)
    ]
  }
  return {
    title,
    columns: [
      "contender",
      "c=1 ops/s",
      "spread",
      "p50",
      "p99",
      "× fastest",
      "c=64 ops/s",
      "spread",
      "p50",
      "p99",
      "× fastest"
    ],
    rows: contenders.map((contender) => [
      contender,
      ...cells(rows.find((row) => row.contender === contender && row.concurrency === 1)),
      ...cells(rows.find((row) => row.contender === contender && row.concurrency === 64))
    ])
  }
}
