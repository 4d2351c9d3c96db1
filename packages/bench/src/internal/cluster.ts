/**
 * The cluster topologies the suites measure, and one node of them on 127.0.0.1 with a Memory
 * backend: started in this process by topology_bench and cluster_bench, and in peer processes by
 * `scripts/cluster_peer.mjs`. `@vela/cluster` is imported at first use, so a run of other suites
 * never loads it.
 */
import type { ClusterNode } from "@vela/cluster"
import type * as ClusterModule from "@vela/cluster"
import type { Backend, Topology } from "@vela/core"
import { Memory } from "@vela/core"
import type { Context, Duration, Scope } from "effect"
import { Effect, Layer } from "effect"

type Cluster = typeof ClusterModule

export interface ClusterTopology {
  readonly name: string
  /** How it is built, for the report. */
  readonly description: string
  readonly layer: (
    cluster: Cluster
  ) => Layer.Layer<Topology.Topology, unknown, Backend.Backend | ClusterNode.ClusterNode>
}

export const topologies: ReadonlyArray<ClusterTopology> = [
  {
    name: "Partitioned r0",
    description: "Partitioned.layer({ replicas: 0 })",
    layer: (cluster) => cluster.Partitioned.layer({ replicas: 0 })
  },
  {
    name: "Partitioned r1",
    description: "Partitioned.layer({ replicas: 1 })",
    layer: (cluster) => cluster.Partitioned.layer({ replicas: 1 })
  },
  { name: "Replicated", description: "Replicated.layer()", layer: (cluster) => cluster.Replicated.layer() }
]

export interface NodeOptions {
  /** 0 picks a free port (read it back from the node's `id`). */
  readonly port: number
  readonly seeds: ReadonlyArray<string>
  readonly secret: string
  readonly heartbeatInterval?: Duration.DurationInput | undefined
}

/** A node of `topology` on 127.0.0.1 over a Memory backend, serving until `scope` closes. */
export const startNode = async (
  scope: Scope.Scope,
  topology: ClusterTopology,
  options: NodeOptions
): Promise<Context.Context<Topology.Topology | ClusterNode.ClusterNode>> => {
  const cluster = await import("@vela/cluster")
  const node = topology.layer(cluster).pipe(
    Layer.provideMerge(cluster.ClusterNode.layer({ host: "127.0.0.1", ...options })),
    Layer.provide(Memory.layer())
  )
  return Effect.runPromise(Layer.buildWithScope(node, scope))
}

/** Resolves once `node` sees `count` members, itself included; rejects after `timeoutMs`. */
export const awaitMembers = async (node: ClusterNode.ClusterNode["Type"], count: number, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs
  while (node.currentMembers().length < count) {
    if (Date.now() > deadline) {
      throw new Error(`${node.id} saw ${node.currentMembers().length} of ${count} nodes after ${timeoutMs / 1000} s`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
