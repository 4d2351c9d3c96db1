/** cluster_bench's three clusters of 3 processes, its cases over them, and how a case is timed. */
import type { ClusterNode } from "@vela/cluster"
import { Local, Memory, Topology } from "@vela/core"
import type { Scope } from "effect"
import { Context, Layer } from "effect"
import type { PerformanceEntry } from "node:perf_hooks"
import { performance, PerformanceObserver } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { forkAll } from "./children.js"
import type { ClusterTopology } from "./cluster.js"
import { awaitMembers, startNode, topologies } from "./cluster.js"
import {
  allKeys,
  CONCURRENCY,
  drawn,
  facade,
  inFibers,
  KEYS,
  keys,
  onClose,
  PEERS,
  runPromisePerCall,
  TIMING,
  TTL,
  values
} from "./clusterWorkload.js"
import type { Contender } from "./contenders.js"
import * as Contenders from "./contenders.js"
import * as Drive from "./drive.js"
import type { Env } from "./env.js"
import type { CaseFigure } from "./measure.js"
import { collect, timeInterleaved } from "./measure.js"
import * as RemoteContenders from "./remoteContenders.js"
import { message, progress } from "./report.js"

/** The Partitioned clusters, and how many nodes hold each key. */
const partitioned = [{ topology: "Partitioned r0", holders: 1 }, { topology: "Partitioned r1", holders: 2 }] as const

/**
 * Node A of every topology in this process and `PEERS` peer processes that join them all: one start
 * and one stop for the suite, and the idle clusters cost only their heartbeats. Resolves once every
 * node A sees 3 members. When `scope` closes the peers leave, then the nodes A.
 */
const startClusters = async (scope: Scope.Scope) => {
  const { ClusterNode } = await import("@vela/cluster")
  const nodes = new Map<string, Context.Context<Topology.Topology | ClusterNode.ClusterNode>>()
  for (const topology of topologies) {
    // A secret per cluster, so that nodes of different clusters never talk.
    nodes.set(topology.name, await startNode(scope, topology, { port: 0, seeds: [], secret: secretOf(topology) }))
  }
  const clusters = topologies.map((topology) => ({
    topology: topology.name,
    seed: Context.get(nodes.get(topology.name)!, ClusterNode.ClusterNode).id,
    secret: secretOf(topology)
  }))
  const script = fileURLToPath(new URL("../../scripts/cluster_peer.mjs", import.meta.url))
  const peers = forkAll(script, Array.from({ length: PEERS }, () => [JSON.stringify(clusters)]))
  onClose(scope, () => {
    peers.send({ type: "stop" })
    return peers.stopped(5_000)
  })
  await peers.all("ready")
  for (const context of nodes.values()) await awaitMembers(Context.get(context, ClusterNode.ClusterNode), 1 + PEERS)
  return {
    topology: (name: string) => Context.get(nodes.get(name)!, Topology.Topology),
    node: (name: string) => Context.get(nodes.get(name)!, ClusterNode.ClusterNode)
  }
}

const secretOf = (topology: ClusterTopology) => `vela-bench:${topology.name}`

// Cases

export const IOREDIS_GET = "ioredis GET (default client)"
export const IOREDIS_PIPELINED_GET = "ioredis GET (auto-pipelining)"
export const IOREDIS_SET = "ioredis SET (auto-pipelining)"
export const LOCAL = "Local (Memory)"

export interface Entry {
  readonly name: string
  readonly contender: Contender
  readonly workload: Drive.Workload
}

export interface Case {
  readonly name: string
  /** The entry the ratios are to (absent when it could not run), and how the cells name it. */
  readonly baseline: { readonly entry: string; readonly short: string }
  readonly entries: ReadonlyArray<Entry>
}

/** The garbage collections of this process (node A) while a row's latency pass ran: their pauses, ms. */
export interface Pauses {
  readonly count: number
  readonly total: number
  readonly longest: number
}

export interface Row {
  readonly case: string
  readonly name: string
  readonly concurrency: number
  readonly figure?: CaseFigure | undefined
  readonly failed?: string | undefined
  readonly gc?: Pauses | undefined
}

/** Builds and preloads everything, and the cases over it; what is built closes with `scope`. */
export const setUp = async (env: Env, scope: Scope.Scope, notes: Array<string>) => {
  const { HashRing } = await import("@vela/cluster")
  const preload = Drive.uniform("preload", Drive.SET, keys, values, true, TTL)
  const remoteGet: Array<Entry> = []
  const put: Array<Entry> = []
  const localGet: Array<Entry> = []

  const redis = await env.redis()
  if ("url" in redis) {
    progress("cluster: ioredis, preload")
    const plain = await RemoteContenders.ioredis(redis.url, "ioredis (default client)", false)
    const pipelined = await RemoteContenders.ioredis(redis.url, "ioredis (auto-pipelining)", true)
    onClose(scope, plain.close)
    onClose(scope, pipelined.close)
    const wrong = await Contenders.check(plain) ?? await Contenders.check(pipelined)
    if (wrong === undefined) {
      await Drive.drive(pipelined, preload, KEYS, 64)
      remoteGet.push(
        { name: IOREDIS_GET, contender: plain, workload: drawn(Drive.GET, allKeys, 1) },
        { name: IOREDIS_PIPELINED_GET, contender: pipelined, workload: drawn(Drive.GET, allKeys, 1) }
      )
      put.push({ name: IOREDIS_SET, contender: pipelined, workload: drawn(Drive.SET, allKeys, 2) })
    } else {
      notes.push(`ioredis rows not measured, so no ratios to them: it failed its check: ${wrong}.`)
    }
  } else {
    notes.push(`ioredis rows not measured, so no ratios to them: ${redis.error}.`)
  }

  progress("cluster: Local (Memory), preload")
  const local = inFibers(
    await Contenders.openCache(scope, Local.layer.pipe(Layer.provide(Memory.layer())), { name: "bench" })
  )
  await Drive.drive(local, preload, KEYS, 64)
  localGet.push({ name: LOCAL, contender: local, workload: drawn(Drive.GET, allKeys, 3) })

  progress(`cluster: node A of ${topologies.map((t) => t.name).join(", ")}; ${PEERS} peer processes`)
  const clusters = await startClusters(scope)
  const counts: Record<string, { remote: number; owned: number }> = {}
  for (const [i, { holders, topology }] of partitioned.entries()) {
    progress(`cluster: ${topology}, preload`)
    const cache = await Contenders.openCache(scope, Layer.succeed(Topology.Topology, clusters.topology(topology)), {
      name: "bench"
    })
    const fibers = inFibers(cache)
    await Drive.drive(fibers, preload, KEYS, 64)
    const self = clusters.node(topology).id
    const ring = HashRing.make(clusters.node(topology).currentMembers())
    const remote = allKeys.filter((k) => !HashRing.holders(ring, keys[k], holders).includes(self))
    const owned = allKeys.filter((k) => HashRing.owner(ring, keys[k]) === self)
    counts[topology] = { remote: remote.length, owned: owned.length }
    const remoteDraws = drawn(Drive.GET, remote, 10 + i)
    remoteGet.push(
      { name: `${topology}, facade`, contender: facade(scope, clusters.topology(topology)), workload: remoteDraws },
      { name: `${topology}, fibers`, contender: fibers, workload: remoteDraws },
      { name: `${topology}, runPromise/call`, contender: runPromisePerCall(cache), workload: remoteDraws }
    )
    put.push({
      name: `${topology} (${holders} holder${holders > 1 ? "s" : ""})`,
      contender: fibers,
      workload: drawn(Drive.SET, remote, 20 + i)
    })
    localGet.push({ name: `${topology}, owner`, contender: fibers, workload: drawn(Drive.GET, owned, 30 + i) })
  }
  progress("cluster: Replicated, preload")
  const replicated = inFibers(
    await Contenders.openCache(scope, Layer.succeed(Topology.Topology, clusters.topology("Replicated")), {
      name: "bench"
    })
  )
  await Drive.drive(replicated, preload, KEYS, 64)
  put.push({
    name: `Replicated (${1 + PEERS} holders)`,
    contender: replicated,
    workload: drawn(Drive.SET, allKeys, 40)
  })
  localGet.push({ name: "Replicated", contender: replicated, workload: drawn(Drive.GET, allKeys, 41) })

  const cases: ReadonlyArray<Case> = [
    { name: "remote get", baseline: { entry: IOREDIS_GET, short: "ioredis" }, entries: remoteGet },
    { name: "put", baseline: { entry: IOREDIS_SET, short: "ioredis" }, entries: put },
    { name: "local get", baseline: { entry: LOCAL, short: "Local" }, entries: localGet }
  ]
  return { cases, counts }
}

export const measureCase = async (c: Case, rows: Array<Row>) => {
  // A pause of this process's collector holds every call in flight: the latency tail is read beside them.
  const collections: Array<PerformanceEntry> = []
  const observer = new PerformanceObserver((list) => collections.push(...list.getEntries()))
  observer.observe({ entryTypes: ["gc"] })
  try {
    for (const concurrency of CONCURRENCY) {
      progress(`cluster: ${c.name} · concurrency ${concurrency} (${c.entries.length} rows, interleaved)`)
      const passes: Array<readonly [number, number]> = []
      const figures = await timeInterleaved(
        c.entries.map(({ contender, workload }, i) => ({
          run: (n) => Drive.drive(contender, workload, n, concurrency),
          latency: async (n, samples) => {
            const start = performance.now()
            const wrong = await Drive.drive(contender, workload, n, concurrency, samples)
            passes[i] = [start, performance.now()]
            return wrong
          }
        })),
        TIMING
      )
      // The observer is told on a later turn.
      await new Promise((resolve) => setTimeout(resolve, 10))
      figures.forEach((figure, i) => {
        const base = { case: c.name, name: c.entries[i].name, concurrency }
        rows.push(
          "error" in figure
            ? { ...base, failed: `threw ${message(figure.error)}` }
            : {
              ...base,
              figure,
              failed: figure.wrong > 0 ? `${figure.wrong} wrong answers` : undefined,
              gc: passes[i] === undefined ? undefined : pausesIn(collections, passes[i])
            }
        )
      })
      collect()
    }
  } finally {
    observer.disconnect()
  }
}

const pausesIn = (collections: ReadonlyArray<PerformanceEntry>, [start, end]: readonly [number, number]): Pauses => {
  const within = collections.filter((entry) => entry.startTime >= start && entry.startTime < end)
  return {
    count: within.length,
    total: within.reduce((sum, entry) => sum + entry.duration, 0),
    longest: within.reduce((longest, entry) => Math.max(longest, entry.duration), 0)
  }
}
