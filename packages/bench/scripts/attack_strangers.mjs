// The strangers of one attack of attack_bench, in a process of their own, so that what they cost is
// not counted against the node whose reads are measured. Started by attack_bench with `fork`; not
// meant to be run by hand. Arguments: the target's port, the index of the attack in `attacks`.
// Says "started" once the connections are being opened, then "closed" with their close times once
// every one is closed or 10 s have passed, and exits (its connections go with it).
import { attacks, strangers } from "../dist/attack_bench.js"

const [port, index] = process.argv.slice(2).map(Number)
const run = strangers(port, attacks[index])
process.send({ type: "started" })
await run.settled
process.send({ type: "closed", ...run.closeTimes() }, () => {
  run.destroy()
  process.exit(0)
})
