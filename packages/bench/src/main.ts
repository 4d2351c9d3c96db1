/**
 * `npm run bench`: every benchmark of this package in one run (short by default, `--full` for the
 * figures to quote). Progress goes to stderr, one line per case; tables to stdout; and the run is
 * written as `results.json`, `results.md` and one SVG chart per suite: a full run of every suite to
 * `bench/` at the repository root, the committed record, any other run to `bench/partial/`. Pass
 * suite names (`get`, `peer`, `stampede`, `topology`, `cluster`, `memory`, `sweep`, `hitratio`,
 * `attack`, `batch`, `redis`, `sqlite`, `coldstart`, `ops`) to run only those. An unknown flag is an error.
 */
import { parseArgs } from "node:util"
import * as BatchBench from "./batch_bench.js"
import * as ClusterBench from "./cluster_bench.js"
import * as ColdStartBench from "./coldstart_bench.js"
import * as GetBench from "./get_bench.js"
import * as HitRatioBench from "./hitratio_bench.js"
import * as Env from "./internal/env.js"
import { full } from "./internal/measure.js"
import type { SuiteResult } from "./internal/report.js"
import { machine, progress, renderText, resultsDir, writeResults } from "./internal/report.js"
import * as MemoryBench from "./memory_bench.js"
import * as OpsBench from "./ops_bench.js"
import * as PeerBench from "./peer_bench.js"
import * as RedisBench from "./redis_bench.js"
import * as SqliteBench from "./sqlite_bench.js"
import * as StampedeBench from "./stampede_bench.js"
import * as SweepBench from "./sweep_bench.js"
import * as TopologyBench from "./topology_bench.js"

const suites: Record<string, (env: Env.Env) => Promise<SuiteResult>> = {
  get: GetBench.run,
  peer: PeerBench.run,
  stampede: StampedeBench.run,
  topology: TopologyBench.run,
  cluster: ClusterBench.run,
  memory: MemoryBench.run,
  sweep: SweepBench.run,
  hitratio: HitRatioBench.run,
  attack: () => import("./attack_bench.js").then((suite) => suite.run()),
  batch: BatchBench.run,
  redis: RedisBench.run,
  sqlite: SqliteBench.run,
  coldstart: ColdStartBench.run,
  ops: OpsBench.run
}

const usage = `usage: main.js [--full] [suite…]; suites: ${Object.keys(suites).join(", ")}`
const args = (() => {
  try {
    return parseArgs({ options: { full: { type: "boolean" } }, allowPositionals: true, strict: true })
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${usage}`)
    return process.exit(2)
  }
})()
const only = args.positionals
const unknown = only.filter((name) => !(name in suites))
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(", ")}; known: ${Object.keys(suites).join(", ")}`)
  process.exit(2)
}
if ((globalThis as { gc?: unknown }).gc === undefined) {
  console.error("warning: run with node --expose-gc, or the heap figures and rounds are noisier")
}

const before = machine()
const started = new Date().toISOString()
const mode = full ? "full" : "short (pass --full for the figures to quote)"
console.log(`Vela benchmarks — ${before.cpu}, ${before.cores} cores, ${before.memoryGiB} GiB, Node ${before.node}`)
console.log(`${started}, mode: ${mode}, load average at start: ${before.loadAverage.join(", ")}`)

const env = Env.make()
const stop = () => {
  void env.close().finally(() => process.exit(130))
}
process.once("SIGINT", stop)
process.once("SIGTERM", stop)
const results: Array<SuiteResult> = []
try {
  for (const [name, run] of Object.entries(suites)) {
    if (only.length > 0 && !only.includes(name)) continue
    progress(`running ${name}_bench…`)
    const result = await run(env)
    results.push(result)
    for (const table of result.tables) console.log(renderText(table))
    for (const note of result.notes) console.log(`- ${note}`)
  }
} finally {
  await env.close()
}
// Only a full run of every suite replaces the committed record; the rest would overwrite it with figures not to quote.
const record = full && results.length === Object.keys(suites).length
const dir = writeResults(
  record ? resultsDir() : `${resultsDir()}partial/`,
  { mode, started, before, after: machine() },
  results
)
console.log(`\nwritten: ${dir}results.md, results.json and ${results.flatMap((r) => r.charts).length} SVG charts`)
