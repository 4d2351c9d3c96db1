/**
 * What a suite hands back (tables, charts, notes, raw figures) and how a run is written out: a
 * text table per suite on stdout, `bench/results.json`, `bench/results.md` and one hand-written SVG
 * bar chart per suite at the repository root.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { fileURLToPath } from "node:url"

export interface Table {
  readonly title: string
  readonly columns: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string>>
}

export interface Bar {
  readonly label: string
  readonly value: number
  /** The spread: smallest and largest round. */
  readonly lo?: number | undefined
  readonly hi?: number | undefined
  /** Shown instead of a bar (a failed row, a case not run). */
  readonly note?: string | undefined
}

export interface Panel {
  readonly title: string
  readonly unit: string
  readonly bars: ReadonlyArray<Bar>
}

export interface Chart {
  /** File name under `bench/`. */
  readonly file: string
  readonly title: string
  readonly panels: ReadonlyArray<Panel>
}

export interface SuiteResult {
  readonly name: string
  readonly title: string
  /** What is measured and how, one paragraph. */
  readonly description: string
  readonly tables: ReadonlyArray<Table>
  readonly charts: ReadonlyArray<Chart>
  /** Lines said under the tables: what was left out and why, goals met or missed. */
  readonly notes: ReadonlyArray<string>
  /** Every figure, with its spread, for results.json. */
  readonly data: unknown
}

export const progress = (line: string) => {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`)
}

// Formatting

export const fmtOps = (n: number) => Math.round(n).toLocaleString("en-US")
export const fmtMs = (ms: number) =>
  ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 1 ? `${ms.toFixed(1)} ms` : `${(ms * 1000).toFixed(ms >= 0.01 ? 1 : 2)} µs`
export const fmtRatio = (r: number) => `${r.toFixed(r >= 10 ? 0 : 2)}×`

/** What an error says, for a FAILED cell or a note. */
export const message = (error: unknown) => error instanceof Error ? error.message : String(error)

export const renderText = (table: Table): string => {
  const widths = table.columns.map((column, i) =>
    Math.max(column.length, ...table.rows.map((row) => (row[i] ?? "").length))
  )
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])).join("  ")
  return [`\n${table.title}`, line(table.columns), ...table.rows.map(line)].join("\n")
}

export const renderMarkdown = (table: Table): string => {
  const escape = (cell: string) => cell.replace(/\|/g, "\\|")
  return [
    `**${table.title}**`,
    "",
    `| ${table.columns.map(escape).join(" | ")} |`,
    `| ${table.columns.map((_, i) => i === 0 ? "---" : "---:").join(" | ")} |`,
    ...table.rows.map((row) => `| ${row.map(escape).join(" | ")} |`)
  ].join("\n")
}

// SVG

const escapeXml = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** Horizontal bars, one panel per case, linear scale from 0, whiskers for the spread; Vela's bars in blue. */
export const renderSvg = (chart: Chart): string => {
  const width = 900
  const labelWidth = 230
  const valueWidth = 150
  const barArea = width - labelWidth - valueWidth - 20
  const barHeight = 16
  const gap = 4
  const parts: Array<string> = []
  let y = 34
  parts.push(
    `<text x="10" y="22" font-size="16" font-weight="bold">${escapeXml(chart.title)}</text>`
  )
  for (const panel of chart.panels) {
    y += 14
    parts.push(
      `<text x="10" y="${y}" font-size="13" font-weight="bold">${escapeXml(panel.title)} (${
        escapeXml(panel.unit)
      })</text>`
    )
    y += 6
    const max = Math.max(...panel.bars.map((bar) => Math.max(bar.hi ?? 0, bar.value)).filter(Number.isFinite), 1e-9)
    for (const bar of panel.bars) {
      const vela = bar.label.startsWith("Vela")
      const mid = y + barHeight / 2 + 4
      parts.push(
        `<text x="${labelWidth - 6}" y="${mid}" font-size="12" text-anchor="end">${escapeXml(bar.label)}</text>`
      )
      if (bar.note !== undefined) {
        parts.push(`<text x="${labelWidth + 4}" y="${mid}" font-size="12" fill="#b00">${escapeXml(bar.note)}</text>`)
      } else {
        const w = Math.max(1, (bar.value / max) * barArea)
        parts.push(
          `<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${
            vela ? "#2f6fd6" : "#9aa3ad"
          }"/>`
        )
        if (bar.lo !== undefined && bar.hi !== undefined) {
          const x1 = labelWidth + (bar.lo / max) * barArea
          const x2 = labelWidth + (bar.hi / max) * barArea
          const cy = y + barHeight / 2
          parts.push(
            `<path d="M${x1.toFixed(1)} ${cy}H${x2.toFixed(1)}M${x1.toFixed(1)} ${cy - 4}v8M${x2.toFixed(1)} ${
              cy - 4
            }v8" stroke="#222" stroke-width="1"/>`
          )
        }
        parts.push(
          `<text x="${
            labelWidth + Math.max(w, bar.hi === undefined ? 0 : (bar.hi / max) * barArea) + 6
          }" y="${mid}" font-size="11">${escapeXml(formatValue(bar.value, panel.unit))}</text>`
        )
      }
      y += barHeight + gap
    }
  }
  y += 16
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    `</svg>`,
    ""
  ].join("\n")
}

const formatValue = (value: number, unit: string) =>
  unit === "ops/s" ? fmtOps(value) : unit === "ms" ? fmtMs(value) : value.toLocaleString("en-US", {
    maximumFractionDigits: 1
  })

// The run

export interface Machine {
  readonly cpu: string
  readonly cores: number
  readonly memoryGiB: number
  readonly node: string
  readonly platform: string
  readonly loadAverage: ReadonlyArray<number>
}

export const machine = (): Machine => ({
  cpu: os.cpus()[0]?.model.trim() ?? "unknown",
  cores: os.cpus().length,
  memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  node: process.version,
  platform: `${os.type()} ${os.release()} ${os.arch()}`,
  loadAverage: os.loadavg().map((n) => Math.round(n * 100) / 100)
})

/** `bench/` at the repository root (this file is `packages/bench/dist/internal/report.js`). */
export const resultsDir = () => fileURLToPath(new URL("../../../../bench/", import.meta.url))

export const writeResults = (
  dir: string,
  run: { readonly mode: string; readonly started: string; readonly before: Machine; readonly after: Machine },
  suites: ReadonlyArray<SuiteResult>
): string => {
  mkdirSync(dir, { recursive: true })
  const { after, before } = run
  writeFileSync(
    `${dir}results.json`,
    `${JSON.stringify({ ...run, suites: suites.map(({ charts: _, ...suite }) => suite) }, null, 2)}\n`
  )
  const md: Array<string> = [
    "# Vela benchmark results",
    "",
    `- machine: ${before.cpu}, ${before.cores} cores, ${before.memoryGiB} GiB, ${before.platform}`,
    `- Node ${before.node}; run ${run.started}; mode: ${run.mode}`,
    `- load average (1, 5, 15 min) at start: ${before.loadAverage.join(", ")}; at end: ${after.loadAverage.join(", ")}`,
    "",
    "Throughput is the median of the rounds; the spread is the slowest and fastest round. Latencies are",
    "from a separate pass that times every call. See packages/bench/README.md for how to read these.",
    ""
  ]
  for (const suite of suites) {
    md.push(`## ${suite.title}`, "", suite.description, "")
    for (const chart of suite.charts) {
      writeFileSync(`${dir}${chart.file}`, renderSvg(chart))
      md.push(`![${chart.title}](${chart.file})`, "")
    }
    for (const table of suite.tables) md.push(renderMarkdown(table), "")
    for (const note of suite.notes) md.push(`- ${note}`)
    if (suite.notes.length > 0) md.push("")
  }
  writeFileSync(`${dir}results.md`, md.join("\n"))
  return dir
}
