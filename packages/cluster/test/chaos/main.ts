/**
 * `npm run chaos -- --seed S --minutes M --nodes N --topology partitioned|replicated`: one run of
 * the chaos rig (./rig.ts) over the built packages; prints the report and exits 1 if anything was
 * violated. Without `--seed`, a random seed (printed, so the run can be replayed).
 */
import { Effect } from "effect"
import { format, run } from "./rig.js"

const args = process.argv.slice(2)
const option = (name: string) => {
  const at = args.indexOf(`--${name}`)
  return at === -1 ? undefined : args[at + 1]
}
const topology = option("topology") ?? "partitioned"
if (topology !== "partitioned" && topology !== "replicated") {
  console.error(`--topology must be partitioned or replicated, not ${topology}`)
  process.exit(2)
}
const seed = Number(option("seed") ?? Math.floor(Math.random() * 1_000_000))
const minutes = Number(option("minutes") ?? 1)
const nodes = Number(option("nodes") ?? 3)
if (!Number.isInteger(seed) || !(minutes > 0) || !Number.isInteger(nodes) || nodes < 2) {
  console.error("usage: --seed <integer> --minutes <positive number> --nodes <integer of at least 2>")
  process.exit(2)
}

Effect.runPromise(
  run({ seed, millis: minutes * 60_000, nodes, topology, log: (line) => console.log(line) })
).then(
  (report) => {
    for (const line of format(report)) console.log(line)
    process.exit(report.violations.length === 0 ? 0 : 1)
  },
  (error) => {
    console.error(error)
    process.exit(2)
  }
)
