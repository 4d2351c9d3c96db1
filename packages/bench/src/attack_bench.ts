/**
 * attack_bench: what strangers (who do not know the secret) cost a node by opening connections to
 * its port. Node A runs in this process, B and C in peer processes (`scripts/cluster_peer.mjs`),
 * Partitioned with replicas 1 on 127.0.0.1, default node options. Every attack is aimed at B's
 * port; while it runs, A reads 3,000 keys B owns, one at a time through the Promise facade, and
 * the same reads with no attack are the baseline. B's RSS and CPU time come from /proc. Each
 * stranger's connection is timed from its open to its close by B (at most 10 s, then it is
 * counted as left open). Run: `npm run bench -- attack` (Linux: it reads /proc).
 */
import type { ClusterNode } from "@vela/cluster"
import { Topology } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import { forkAll } from "./internal/children.js"
import { awaitMembers, startNode, topologies } from "./internal/cluster.js"
import { percentile } from "./internal/measure.js"
import type { SuiteResult, Table } from "./internal/report.js"
import { fmtMs, progress } from "./internal/report.js"

const KEYS = 3_000
const READS = 3_000
const SECRET = "vela-bench:attack"
const CLOSE_WAIT_MS = 10_000

/** MessagePack `bin32` announcing 2 GiB - 1 bytes. */
const BIN32_HEADER = Buffer.from([0xc6, 0x7f, 0xff, 0xff, 0xff])
/** The data lane's opening, then a 24-character nonce string as a length-prefixed frame (a lane `Hello`). */
const LANE_HELLO = Buffer.concat([
  Buffer.from([0xc1, 0x56, 0x4c, 0x31, 0x00, 0x00, 0x00, 0x19, 0xb8]),
  Buffer.from("AAAAAAAAAAAAAAAAAAAAAAAA")
])

interface Attack {
  readonly name: string
  readonly connections: number
  /** What each connection sends once open; then it stays open and silent. */
  readonly payload: () => Buffer
}

const attacks: ReadonlyArray<Attack> = [
  {
    name: "bin32 header announcing 2 GB, 15 MB of it, then idle",
    connections: 40,
    payload: () => BIN32_BODY
  },
  { name: "idle connections", connections: 1_000, payload: () => Buffer.alloc(0) },
  { name: "lane Hello, then nothing", connections: 1_000, payload: () => LANE_HELLO },
  { name: "64 KiB of random bytes, then idle", connections: 200, payload: () => garbage() }
]
const BIN32_BODY = Buffer.concat([BIN32_HEADER, Buffer.alloc(15 * 1024 * 1024, 0x41)])
/** Random bytes that do not open a data lane (its first byte is 0xc1). */
const garbage = () => {
  const bytes = randomBytes(64 * 1024)
  if (bytes[0] === 0xc1) bytes[0] = 0
  return bytes
}

// The target process, through /proc

const rssMiB = (pid: number) => {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return match === null ? NaN : Number(match[1]) / 1024
}
/** User + system CPU seconds of `pid` so far (clock ticks of 10 ms). */
const cpuSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

// Strangers

interface Strangers {
  /** Resolves when every connection closed, or after `CLOSE_WAIT_MS` from the start. */
  readonly settled: Promise<void>
  /** Seconds from open to close of the closed ones, and how many are still open. */
  readonly closeTimes: () => { readonly seconds: Array<number>; readonly open: number }
  readonly destroy: () => void
}

const strangers = (port: number, attack: Attack): Strangers => {
  const sockets: Array<Net.Socket> = []
  const seconds: Array<number> = []
  let open = attack.connections
  let resolve!: () => void
  const settled = new Promise<void>((r) => resolve = r)
  const timer = setTimeout(resolve, CLOSE_WAIT_MS)
  for (let i = 0; i < attack.connections; i++) {
    const started = performance.now()
    const socket = Net.connect({ host: "127.0.0.1", port }, () => {
      const payload = attack.payload()
      if (payload.length > 0) socket.write(payload)
    })
    socket.on("error", () => socket.destroy())
    socket.on("close", () => {
      seconds.push((performance.now() - started) / 1000)
      if (--open === 0) {
        clearTimeout(timer)
        resolve()
      }
    })
    sockets.push(socket)
  }
  return {
    settled,
    closeTimes: () => ({ seconds: [...seconds], open }),
    destroy: () => {
      clearTimeout(timer)
      for (const socket of sockets) socket.destroy()
    }
  }
}

// The run

interface Figures {
  readonly attack: string
  readonly p50: number
  readonly p99: number
  readonly totalSeconds: number
  readonly failed: number
  readonly rssBefore: number
  readonly rssPeak: number
  readonly rssAfter: number
  readonly cpuSeconds: number
  readonly closed?: { readonly count: number; readonly of: number; readonly p50: number; readonly max: number }
}

export const run = async (): Promise<SuiteResult> => {
  const scope = Effect.runSync(Scope.make())
  try {
    return await measure(scope)
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const measure = async (scope: Scope.Scope): Promise<SuiteResult> => {
  const cluster = await import("@vela/cluster")
  const topology = topologies.find((t) => t.name === "Partitioned r1")!
  const context = await startNode(scope, topology, { port: 0, seeds: [], secret: SECRET })
  const node: ClusterNode.ClusterNode["Type"] = Context.get(context, cluster.ClusterNode.ClusterNode)
  const script = fileURLToPath(new URL("../scripts/cluster_peer.mjs", import.meta.url))
  const peers = forkAll(
    script,
    [0, 1].map(() => [JSON.stringify([{ topology: topology.name, seed: node.id, secret: SECRET }])])
  )
  Effect.runSync(Scope.addFinalizer(
    scope,
    Effect.promise(() => {
      peers.send({ type: "stop" })
      return peers.stopped(5_000)
    })
  ))
  const [target] = await peers.all("ready") as Array<{ readonly pid: number; readonly ids: ReadonlyArray<string> }>
  await awaitMembers(node, 3)
  const targetId = target.ids[0]
  const port = Number(targetId.split(":").at(-1))

  const cache = createCache<number>({
    name: "attack",
    topology: Layer.succeed(Topology.Topology, Context.get(context, Topology.Topology))
  })
  Effect.runSync(Scope.addFinalizer(scope, Effect.promise(() => cache.close())))
  const ring = cluster.HashRing.make(node.currentMembers())
  const keys = Array.from({ length: KEYS * 4 }, (_, i) => `k:${i}`)
    .filter((key) => cluster.HashRing.owner(ring, key) === targetId)
    .slice(0, KEYS)
  await Promise.all(keys.map((key, i) => cache.put(key, i)))

  /** `READS` reads of B's keys one at a time: latency percentiles, and how many failed. */
  const reads = async () => {
    const latencies = new Float64Array(READS)
    let failed = 0
    const started = performance.now()
    for (let i = 0; i < READS; i++) {
      const t0 = performance.now()
      try {
        await cache.get(keys[i % keys.length])
      } catch {
        failed++
      }
      latencies[i] = performance.now() - t0
    }
    const totalSeconds = (performance.now() - started) / 1000
    return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), totalSeconds, failed }
  }

  const phase = async (attack: Attack | undefined): Promise<Figures> => {
    progress(`attack: ${attack?.name ?? "no attack"}`)
    const rssBefore = rssMiB(target.pid)
    const cpuBefore = cpuSeconds(target.pid)
    let rssPeak = rssBefore
    const sampler = setInterval(() => rssPeak = Math.max(rssPeak, rssMiB(target.pid)), 100)
    const attackers = attack === undefined ? undefined : strangers(port, attack)
    // Let the attack land before the reads start.
    if (attackers !== undefined) await new Promise((resolve) => setTimeout(resolve, 500))
    const read = await reads()
    await attackers?.settled
    clearInterval(sampler)
    const figures: Figures = {
      attack: attack?.name ?? "no attack",
      ...read,
      rssBefore,
      rssPeak: Math.max(rssPeak, rssMiB(target.pid)),
      rssAfter: NaN,
      cpuSeconds: cpuSeconds(target.pid) - cpuBefore,
      ...(attackers === undefined ? {} : { closed: closedFigures(attackers, attack!) })
    }
    attackers?.destroy()
    // Give the node a moment to drop what the strangers left, then read its RSS again.
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    return { ...figures, rssAfter: rssMiB(target.pid) }
  }

  const results: Array<Figures> = [await phase(undefined)]
  for (const attack of attacks) results.push(await phase(attack))
  results.push(await phase(undefined))
  return report(results)
}

const closedFigures = (attackers: Strangers, attack: Attack) => {
  const { open, seconds } = attackers.closeTimes()
  const sorted = Float64Array.from(seconds)
  return {
    count: attack.connections - open,
    of: attack.connections,
    p50: seconds.length === 0 ? NaN : percentile(sorted, 50),
    max: seconds.length === 0 ? NaN : Math.max(...seconds)
  }
}

const mib = (n: number) => `${n.toFixed(0)} MB`

const report = (results: ReadonlyArray<Figures>): SuiteResult => {
  const table: Table = {
    title: `Strangers on a node's port: ${
      READS.toLocaleString("en-US")
    } gets of its keys from another node, one at a time`,
    columns: [
      "attack",
      "get p50",
      "get p99",
      "all gets",
      "failed",
      "RSS before → peak → after",
      "CPU",
      "strangers closed"
    ],
    rows: results.map((r) => [
      r.attack,
      fmtMs(r.p50),
      fmtMs(r.p99),
      `${r.totalSeconds.toFixed(2)} s`,
      String(r.failed),
      `${mib(r.rssBefore)} → ${mib(r.rssPeak)} → ${mib(r.rssAfter)}`,
      `${r.cpuSeconds.toFixed(1)} s`,
      r.closed === undefined
        ? ""
        : `${r.closed.count}/${r.closed.of}` +
          (r.closed.count === 0 ? "" : `, p50 ${r.closed.p50.toFixed(2)} s, max ${r.closed.max.toFixed(2)} s`)
    ])
  }
  return {
    name: "attack",
    title: "Strangers on a node's port",
    description: "Connections from processes that do not know the secret, aimed at one node of three " +
      "(Partitioned, replicas 1, loopback, default options), while another node reads keys it owns.",
    tables: [table],
    charts: [],
    notes: [`A stranger still open ${CLOSE_WAIT_MS / 1000} s after the attack started is counted as not closed.`],
    data: results
  }
}
