// One peer process of cluster_bench and attack_bench: joins each cluster it is given with a node of
// its topology (127.0.0.1, a free port, Memory backend, the parent's node as seed), says "ready" with
// its pid and node ids, and serves until the parent says "stop" or goes away; then its nodes leave
// and it exits. Started by the suites with `fork`; not meant to be run by hand.
// Argument: JSON of [{ topology, seed, secret }], `topology` a name of internal/cluster.ts's list.
import { ClusterNode } from "@vela/cluster"
import { Context, Effect, Exit, Scope } from "effect"
import { startNode, topologies } from "../dist/internal/cluster.js"

const clusters = JSON.parse(process.argv[2])
const scope = Effect.runSync(Scope.make())

let stopping = false
const stop = async (code) => {
  if (stopping) return
  stopping = true
  await Effect.runPromise(Scope.close(scope, Exit.void))
  process.exit(code)
}
process.once("disconnect", () => stop(1))
process.on("message", (message) => {
  if (message?.type === "stop") void stop(0)
})

try {
  const ids = []
  for (const { secret, seed, topology } of clusters) {
    const found = topologies.find((t) => t.name === topology)
    if (found === undefined) throw new Error(`unknown topology ${topology}`)
    const context = await startNode(scope, found, { port: 0, seeds: [seed], secret })
    ids.push(Context.get(context, ClusterNode.ClusterNode).id)
  }
  process.send({ type: "ready", pid: process.pid, ids })
} catch (error) {
  process.send({ type: "error", message: error instanceof Error ? error.message : String(error) }, () => stop(1))
}
