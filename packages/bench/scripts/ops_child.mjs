// One process of ops_bench's cross-process cases: builds its targets (over the parent's redis-server,
// or as a node of a Partitioned cluster on 127.0.0.1), says "ready" (with its node id), then answers
// the parent's messages until "stop" or the parent goes away: "prepare" (reset a case's keys), "run"
// (its share of a case's calls, timed, every call's latency sent back) and "read" (a counter's value).
// Started by ops_bench with `fork`; not meant to be run by hand.
// Argument: JSON of { backend: "redis", url } or { backend: "partitioned", seeds, secret, members }.
import { ClusterNode } from "@vela/cluster"
import { Topology } from "@vela/core"
import { Context, Effect, Exit, Scope } from "effect"
import { awaitMembers, startNode, topologies } from "../dist/internal/cluster.js"
import { onPartitioned, onRedis } from "../dist/internal/ops.js"

const options = JSON.parse(process.argv[2])
const scope = Effect.runSync(Scope.make())
let targets = []

let stopping = false
const stop = async (code) => {
  if (stopping) return
  stopping = true
  for (const target of targets) await target.close().catch(() => {})
  await Effect.runPromise(Scope.close(scope, Exit.void))
  process.exit(code)
}
const fail = (error) =>
  process.send({ type: "error", message: error instanceof Error ? error.message : String(error) }, () => stop(1))
process.once("disconnect", () => stop(1))

const target = (name) => {
  const found = targets.find((t) => t.name === name)
  if (found === undefined) throw new Error(`no target ${name} here`)
  return found
}

// A failed request is answered with its reply's type and the error, so the parent collects every
// child's reply to one request before the next, and this process stays up for the next case.
const replies = { prepare: "prepared", run: "result", read: "value" }
process.on("message", async (message) => {
  if (message?.type === "stop") return void stop(0)
  const reply = replies[message?.type]
  if (reply === undefined) return
  try {
    const found = target(message.target)
    if (message.type === "prepare") {
      await found.prepare(message.plan)
      process.send({ type: reply })
    } else if (message.type === "run") {
      const latencies = new Float64Array(message.plan.calls)
      const outcome = await found.run(message.plan, latencies)
      process.send({ type: reply, ...outcome, latencies: Array.from(latencies) })
    } else {
      process.send({ type: reply, value: await found.read(message.key) ?? null })
    }
  } catch (error) {
    process.send({ type: reply, error: error instanceof Error ? error.message : String(error) })
  }
})

try {
  let id
  if (options.backend === "redis") {
    targets = await onRedis(options.url)
  } else {
    const partitioned = topologies.find((t) => t.name === "Partitioned r1")
    const context = await startNode(scope, partitioned, { port: 0, seeds: options.seeds, secret: options.secret })
    const node = Context.get(context, ClusterNode.ClusterNode)
    id = node.id
    if (options.members > 1) await awaitMembers(node, options.members)
    targets = [await onPartitioned(Context.get(context, Topology.Topology))]
  }
  process.send({ type: "ready", id })
} catch (error) {
  fail(error)
}
