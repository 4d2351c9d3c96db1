/**
 * `npm run bench`: every benchmark of this package in one run, each printing its own table.
 * Pass a name (`get`, `sweep`, `memory`) to run only that one.
 */
import * as GetBench from "./get_bench.js"
import * as MemoryBench from "./memory_bench.js"
import * as SweepBench from "./sweep_bench.js"

const suites: Record<string, { readonly run: () => Promise<string> }> = {
  get: GetBench,
  sweep: SweepBench,
  memory: MemoryBench
}

const only = process.argv.slice(2).filter((arg) => !arg.startsWith("-"))
console.log(`Vela benchmarks — Node ${process.version}, ${new Date().toISOString()}`)
for (const [name, suite] of Object.entries(suites)) {
  if (only.length > 0 && !only.includes(name)) continue
  console.error(`running ${name}_bench…`)
  console.log(await suite.run())
}
