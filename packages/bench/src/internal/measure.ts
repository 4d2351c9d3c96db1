/** Timing helpers shared by the benchmarks: warm-up, several rounds, median and spread. */
import { performance } from "node:perf_hooks"
import type { Panel, Table } from "./report.js"
import { progress } from "./report.js"

export interface Measurement {
  readonly name: string
  /** Median nanoseconds per operation over the rounds. */
  readonly nsPerOp: number
  /** Smallest and largest round, ns/op. */
  readonly min: number
  readonly max: number
  readonly opsPerSec: number
}

const gc = (globalThis as { gc?: () => void }).gc

/** Runs `round` (which performs `ops` operations) `rounds` times after one warm-up round. */
export const measure = async (
  name: string,
  ops: number,
  round: () => unknown,
  rounds = 7
): Promise<Measurement> => {
  progress(name)
  await round()
  gc?.()
  const samples: Array<number> = []
  for (let i = 0; i < rounds; i++) {
    const start = performance.now()
    await round()
    samples.push(((performance.now() - start) * 1e6) / ops)
  }
  samples.sort((a, b) => a - b)
  const nsPerOp = samples[Math.floor(samples.length / 2)]
  return { name, nsPerOp, min: samples[0], max: samples[samples.length - 1], opsPerSec: 1e9 / nsPerOp }
}

/** `table` as a report table, with the spread of every row. */
export const toTable = (title: string, rows: ReadonlyArray<Measurement>, baseline: string): Table => {
  const base = rows.find((row) => row.name === baseline)?.nsPerOp ?? rows[0].nsPerOp
  return {
    title,
    columns: ["case", "ns/op", "ops/s", "spread ns/op", `× ${baseline}`],
    rows: rows.map((row) => [
      row.name,
      row.nsPerOp.toFixed(1),
      Math.round(row.opsPerSec).toLocaleString("en-US"),
      `${row.min.toFixed(0)}–${row.max.toFixed(0)}`,
      (row.nsPerOp / base).toFixed(2)
    ])
  }
}

/** A chart panel of ns/op (lower is better) with the spread as whiskers. */
export const toPanel = (title: string, rows: ReadonlyArray<Measurement>): Panel => ({
  title,
  unit: "ns/op, lower is better",
  bars: rows.map((row) => ({ label: row.name, value: row.nsPerOp, lo: row.min, hi: row.max }))
})

/** A table with ns/op, ops/s, spread, and the ratio to `baseline` (a row name). */
export const table = (title: string, rows: ReadonlyArray<Measurement>, baseline: string): string => {
  const base = rows.find((row) => row.name === baseline)?.nsPerOp ?? rows[0].nsPerOp
  const width = Math.max(...rows.map((row) => row.name.length), 10)
  const lines = [
    `\n${title}`,
    `${"case".padEnd(width)}  ${"ns/op".padStart(9)}  ${"ops/s".padStart(13)}  ${
      "spread".padStart(15)
    }  ${`× ${baseline}`}`,
    ...rows.map((row) =>
      `${row.name.padEnd(width)}  ${row.nsPerOp.toFixed(1).padStart(9)}  ${
        Math.round(row.opsPerSec).toLocaleString("en-US").padStart(13)
      }  ${`${row.min.toFixed(0)}–${row.max.toFixed(0)}`.padStart(15)}  ${(row.nsPerOp / base).toFixed(2)}`
    )
  ]
  return lines.join("\n")
}

/** `--full` on the command line: longer rounds, more of them, and the full entry counts. */
export const full = process.argv.includes("--full")

export const collect = () => gc?.()

/** The median of `values` (the upper one of an even count). */
export const median = (values: ReadonlyArray<number>): number => [...values].sort((a, b) => a - b)[values.length >> 1]

/** The `p`-th percentile (0–100) of `samples`, which it sorts. */
export const percentile = (samples: Float64Array, p: number): number => {
  if (samples.length === 0) return NaN
  samples.sort()
  return samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))]
}

export interface CaseFigure {
  /** Median of the rounds. */
  readonly opsPerSec: number
  /** Slowest and fastest round. */
  readonly minOpsPerSec: number
  readonly maxOpsPerSec: number
  readonly rounds: number
  readonly opsPerRound: number
  /** Per-call latency from a separate pass, ms. */
  readonly p50: number
  readonly p99: number
  /** Wrong answers seen over every run of the case; any makes the row fail. */
  readonly wrong: number
}

/** Issue 18's test for a stall: a round slower than a third of the median is not a cost but a wait. */
export const stalled = (figure: CaseFigure) => figure.minOpsPerSec < figure.opsPerSec / 3

/**
 * The goal line of issue 18 for stalls over the cluster's `rows` (named by `label`): met, or every
 * stalled row with its slowest round and median. Stalls of the `control` rows (a local cache, raw
 * ioredis) are listed apart: they are the machine's, and any stall of the same run may be too.
 */
export const stallGoal = <R extends { readonly figure?: CaseFigure | undefined; readonly failed?: string | undefined }>(
  rows: ReadonlyArray<R>,
  label: (row: R) => string,
  control: (row: R) => boolean
): string => {
  const measured = rows.filter((row) => row.figure !== undefined && row.failed === undefined)
  const describe = (slow: ReadonlyArray<R>) =>
    slow.map((row) =>
      `${label(row)} (slowest round ${Math.round(row.figure!.minOpsPerSec)} ops/s, median ${
        Math.round(row.figure!.opsPerSec)
      })`
    ).join("; ")
  const cluster = measured.filter((row) => !control(row))
  const slow = cluster.filter((row) => stalled(row.figure!))
  const slowControls = measured.filter((row) => control(row) && stalled(row.figure!))
  return `Goal (issue 18): no round of any cluster case slower than a third of its median — ${
    slow.length === 0 ? `met (${cluster.length} rows)` : `MISSED: ${describe(slow)}`
  }.${
    slowControls.length === 0
      ? " No control row stalled."
      : ` Control rows stalled as well (the machine held this process): ${describe(slowControls)}.`
  }`
}

/**
 * Times `run(n)` (which performs n operations and resolves to its wrong answers): a calibration
 * round that is also the warm-up, then `rounds` rounds sized to about `targetMs` each, then one
 * pass of `latency(n)` that times every call. A full GC runs before the first timed round.
 */
export const timeCase = async (
  run: (n: number) => Promise<number>,
  latency: (n: number, samples: Float64Array) => Promise<number>,
  options: { readonly targetMs: number; readonly rounds: number; readonly firstOps: number; readonly maxOps: number }
): Promise<CaseFigure> => {
  let wrong = 0
  let n = options.firstOps
  for (let i = 0; i < 3; i++) {
    const start = performance.now()
    wrong += await run(n)
    const elapsed = performance.now() - start
    if (elapsed >= options.targetMs / 2 || n >= options.maxOps) break
    n = Math.min(options.maxOps, Math.max(n * 2, Math.round(n * options.targetMs / Math.max(elapsed, 0.05))))
  }
  gc?.()
  const samples: Array<number> = []
  for (let round = 0; round < options.rounds; round++) {
    const start = performance.now()
    wrong += await run(n)
    samples.push(n / ((performance.now() - start) / 1000))
  }
  samples.sort((a, b) => a - b)
  const latencies = new Float64Array(Math.min(n, 200_000))
  wrong += await latency(latencies.length, latencies)
  return {
    opsPerSec: samples[Math.floor(samples.length / 2)],
    minOpsPerSec: samples[0],
    maxOpsPerSec: samples[samples.length - 1],
    rounds: options.rounds,
    opsPerRound: n,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    wrong
  }
}

/** One contender's part of an interleaved case. */
export interface Entrant {
  readonly run: (n: number) => Promise<number>
  readonly latency: (n: number, samples: Float64Array) => Promise<number>
}

/**
 * `timeCase` for several contenders at once, with their rounds interleaved (round 1 of each, then
 * round 2 of each, …), so that a change of load on a shared machine falls on all of them alike.
 * Each entrant is calibrated (and warmed up) on its own first. An entrant that throws gets its
 * error instead of a figure; the others go on.
 */
export const timeInterleaved = async (
  entrants: ReadonlyArray<Entrant>,
  options: { readonly targetMs: number; readonly rounds: number; readonly firstOps: number; readonly maxOps: number }
): Promise<Array<CaseFigure | { readonly error: unknown }>> => {
  const state = entrants.map(() => ({
    n: options.firstOps,
    wrong: 0,
    samples: [] as Array<number>,
    error: undefined as unknown,
    failed: false
  }))
  const guard = async (i: number, f: () => Promise<void>) => {
    if (state[i].failed) return
    try {
      await f()
    } catch (error) {
      state[i].failed = true
      state[i].error = error
    }
  }
  for (let i = 0; i < entrants.length; i++) {
    await guard(i, async () => {
      const s = state[i]
      for (let attempt = 0; attempt < 3; attempt++) {
        const start = performance.now()
        s.wrong += await entrants[i].run(s.n)
        const elapsed = performance.now() - start
        if (elapsed >= options.targetMs / 2 || s.n >= options.maxOps) break
        s.n = Math.min(options.maxOps, Math.max(s.n * 2, Math.round(s.n * options.targetMs / Math.max(elapsed, 0.05))))
      }
    })
  }
  gc?.()
  for (let round = 0; round < options.rounds; round++) {
    for (let i = 0; i < entrants.length; i++) {
      await guard(i, async () => {
        const s = state[i]
        const start = performance.now()
        s.wrong += await entrants[i].run(s.n)
        s.samples.push(s.n / ((performance.now() - start) / 1000))
      })
    }
  }
  const latencies = new Map<number, Float64Array>()
  for (let i = 0; i < entrants.length; i++) {
    await guard(i, async () => {
      const samples = new Float64Array(Math.min(state[i].n, 200_000))
      state[i].wrong += await entrants[i].latency(samples.length, samples)
      latencies.set(i, samples)
    })
  }
  return state.map((s, i) => {
    if (s.failed) return { error: s.error }
    const sorted = [...s.samples].sort((a, b) => a - b)
    const samples = latencies.get(i)!
    return {
      opsPerSec: sorted[Math.floor(sorted.length / 2)],
      minOpsPerSec: sorted[0],
      maxOpsPerSec: sorted[sorted.length - 1],
      rounds: options.rounds,
      opsPerRound: s.n,
      p50: percentile(samples, 50),
      p99: percentile(samples, 99),
      wrong: s.wrong
    }
  })
}
