/** Timing helpers shared by the benchmarks: warm-up, several rounds, median and spread. */
import { performance } from "node:perf_hooks"

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
