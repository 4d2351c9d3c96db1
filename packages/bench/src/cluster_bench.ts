/**
 * cluster_bench: the cluster topologies across 3 processes, against raw ioredis on a local
 * redis-server measured in the same run, in the same interleaved rounds. This process is node A of
 * three clusters (Partitioned with replicas 0 and 1, Replicated); two peer processes
 * (`scripts/cluster_peer.mjs`) are nodes B and C of each, all on 127.0.0.1 with Memory backends.
 * Keys: 10,000 (`user:<i>`, a small object of about 65 bytes of JSON), written through A; every case
 * draws its keys uniformly (seeded). Cases, at concurrency 1 and 64:
 * - remote get: Partitioned keys none of whose holders is A, so every read crosses to a peer, read
 *   three ways: the Promise facade (`await cache.get(k)`, as ioredis is called), the Effect API as a
 *   program runs it (one `Effect.runPromise` of 64 fibers, each `yield* cache.get(k)` in a loop),
 *   and one `Effect.runPromise(cache.get(k))` per call; beside ioredis `GET`. The goal: remote get at
 *   concurrency 64 at least as fast as ioredis `GET` at concurrency 64;
 * - put: the same keys, acknowledged once every holder applied it; beside ioredis `SET`;
 * - local get: keys A owns, and Replicated (every key is local), beside Local (Memory).
 * Put and local get run through the Effect API in fibers. Run: `npm run bench -- cluster`.
 */
import type { ClusterNode } from "@vela/cluster"
import type { Vela } from "@vela/core"
import { Local, Memory, Topology } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { fileURLToPath } from "node:url"
import { forkAll } from "./internal/children.js"
import type { ClusterTopology } from "./internal/cluster.js"
import { awaitMembers, startNode, topologies } from "./internal/cluster.js"
import type { Contender, Value } from "./internal/contenders.js"
import * as Contenders from "./internal/contenders.js"
import * as Drive from "./internal/drive.js"
import type { Env } from "./internal/env.js"
import type { CaseFigure } from "./internal/measure.js"
import { collect, full, stallGoal, timeInterleaved } from "./internal/measure.js"
import * as RemoteContenders from "./internal/remoteContenders.js"
import type { Chart, SuiteResult, Table } from "./internal/report.js"
import { fmtMs, fmtOps, fmtRatio, message, progress } from "./internal/report.js"

const KEYS = 10_000
const DRAWS = 100_000
const TTL = 3_600_000
const PEERS = 2
const CONCURRENCY = [1, 64] as const
const TIMING = { targetMs: full ? 1_000 : 150, rounds: full ? 5 : 3, firstOps: 500, maxOps: 1_000_000 }

/** Key i's value: about 65 bytes of JSON, with the key as `id` for Drive's check of every answer. */
const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`)
const values: ReadonlyArray<Value> = keys.map((id, i) => ({
  id,
  n: i % 90,
  name: `User number ${i}`,
  active: i % 2 === 0
}))
const allKeys = keys.map((_, i) => i)

/** `DRAWS` steps of `code` on keys drawn uniformly from `pool` (indices of `keys`). */
const drawn = (code: number, pool: ReadonlyArray<number>, seed: number): Drive.Workload => {
  const next = Drive.random(seed)
  const picks = Array.from({ length: DRAWS }, () => pool[Math.floor(next() * pool.length)])
  return Drive.uniform("drawn", code, picks.map((i) => keys[i]), picks.map((i) => values[i]), true, TTL)
}

// The ways a program calls a cache, as Drive contenders. `cache.get` fails on a miss, which fails the row.

const contender = (name: string, api: Contender["api"]): Contender => ({
  name,
  group: "in-process",
  usage: name,
  api,
  close: async () => {}
})

/** The Effect API in fibers: Drive runs one `Effect.runPromise` of `concurrency` fibers, each a loop of `yield*`. */
const inFibers = (cache: Vela.Cache<Value>) =>
  contender("fibers", {
    _tag: "effect",
    ops: {
      get: (key) => Effect.asSome(cache.get(key)),
      set: (key, value) => cache.put(key, value),
      getOrFetch: (key, fetch) => cache.getOrFetch(key, fetch)
    }
  })

/** One `Effect.runPromise` per call, awaited. */
const runPromisePerCall = (cache: Vela.Cache<Value>) =>
  contender("runPromise per call", {
    _tag: "promise",
    ops: {
      get: (key) => Effect.runPromise(cache.get(key)),
      set: (key, value) => Effect.runPromise(cache.put(key, value)),
      getOrFetch: (key, fetch) => Effect.runPromise(cache.getOrFetch(key, (k) => Effect.promise(() => fetch(k))))
    }
  })

/** The Promise facade on `topology`, on the namespace of the Effect caches (so it reads what they wrote). */
const facade = (scope: Scope.Scope, topology: Topology.Topology["Type"]) => {
  const cache = createCache<Value>({ name: "bench", topology: Layer.succeed(Topology.Topology, topology) })
  onClose(scope, () => cache.close())
  return contender("facade", {
    _tag: "promise",
    ops: {
      get: (key) => cache.get(key),
      set: (key, value) => cache.put(key, value),
      getOrFetch: (key, fetch) => cache.getOrFetch(key, fetch)
    }
  })
}

/** Runs `f` when `scope` closes (in reverse order of registration); a failure there is not the run's. */
const onClose = (scope: Scope.Scope, f: () => Promise<unknown>) =>
  Effect.runSync(Scope.addFinalizer(scope, Effect.promise(() => f().catch(() => {}))))

// The clusters

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
  const script = fileURLToPath(new URL("../scripts/cluster_peer.mjs", import.meta.url))
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

const IOREDIS_GET = "ioredis GET (default client)"
const IOREDIS_PIPELINED_GET = "ioredis GET (auto-pipelining)"
const IOREDIS_SET = "ioredis SET (auto-pipelining)"
const LOCAL = "Local (Memory)"

interface Entry {
  readonly name: string
  readonly contender: Contender
  readonly workload: Drive.Workload
}

interface Case {
  readonly name: string
  /** The entry the ratios are to (absent when it could not run), and how the cells name it. */
  readonly baseline: { readonly entry: string; readonly short: string }
  readonly entries: ReadonlyArray<Entry>
}

interface Row {
  readonly case: string
  readonly name: string
  readonly concurrency: number
  readonly figure?: CaseFigure | undefined
  readonly failed?: string | undefined
}

/** Builds and preloads everything, and the cases over it; what is built closes with `scope`. */
const setUp = async (env: Env, scope: Scope.Scope, notes: Array<string>) => {
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

const measureCase = async (c: Case, rows: Array<Row>) => {
  for (const concurrency of CONCURRENCY) {
    progress(`cluster: ${c.name} · concurrency ${concurrency} (${c.entries.length} rows, interleaved)`)
    const figures = await timeInterleaved(
      c.entries.map(({ contender, workload }) => ({
        run: (n) => Drive.drive(contender, workload, n, concurrency),
        latency: (n, samples) => Drive.drive(contender, workload, n, concurrency, samples)
      })),
      TIMING
    )
    figures.forEach((figure, i) => {
      const base = { case: c.name, name: c.entries[i].name, concurrency }
      rows.push(
        "error" in figure
          ? { ...base, failed: `threw ${message(figure.error)}` }
          : { ...base, figure, failed: figure.wrong > 0 ? `${figure.wrong} wrong answers` : undefined }
      )
    })
    collect()
  }
}

// Report

const figureOf = (rows: ReadonlyArray<Row>, name: string, concurrency: number) =>
  rows.find((row) => row.name === name && row.concurrency === concurrency && row.failed === undefined)?.figure

const table = (c: Case, rows: ReadonlyArray<Row>): Table => {
  const cells = (name: string, concurrency: number): Array<string> => {
    const row = rows.find((r) => r.name === name && r.concurrency === concurrency)
    if (row?.figure === undefined || row.failed !== undefined) {
      return [`FAILED: ${row?.failed ?? "not run"}`, "", "", "", ""]
    }
    const f = row.figure
    const base = figureOf(rows, c.baseline.entry, concurrency)
    return [
      fmtOps(f.opsPerSec),
      `${fmtOps(f.minOpsPerSec)}–${fmtOps(f.maxOpsPerSec)}`,
      fmtMs(f.p50),
      fmtMs(f.p99),
      name === c.baseline.entry
        ? "(baseline)"
        : base === undefined
        ? ""
        : `${fmtRatio(f.opsPerSec / base.opsPerSec)} ${c.baseline.short}`
    ]
  }
  return {
    title: `cluster_bench · ${c.name}`,
    columns: [
      "",
      "c=1 ops/s",
      "spread",
      "p50",
      "p99",
      "throughput",
      "c=64 ops/s",
      "spread",
      "p50",
      "p99",
      "throughput"
    ],
    rows: c.entries.map(({ name }) => [name, ...CONCURRENCY.flatMap((concurrency) => cells(name, concurrency))])
  }
}

/**
 * The issue's goal: remote get at concurrency 64 at least raw ioredis GET's throughput at 64, same
 * run; raw ioredis taken as `new Redis(url)` gives it (auto-pipelining is a row of its own).
 */
const goal = (rows: ReadonlyArray<Row>): string | undefined => {
  const ioredis = figureOf(rows, IOREDIS_GET, 64)
  if (ioredis === undefined) return undefined
  const ratios = rows.filter((row) =>
    row.case === "remote get" && row.concurrency === 64 && !row.name.startsWith("ioredis")
  )
    .map((row) => ({
      name: row.name,
      ratio: row.figure === undefined ? undefined : row.figure.opsPerSec / ioredis.opsPerSec
    }))
  const met = ratios.filter((r) => r.ratio !== undefined && r.ratio >= 1)
  return `Goal: remote get at concurrency 64 ≥ raw ioredis GET (default client) at concurrency 64 (${
    fmtOps(ioredis.opsPerSec)
  } ops/s) — ${ratios.map((r) => `${r.name} ${r.ratio === undefined ? "FAILED" : fmtRatio(r.ratio)}`).join(", ")} (${
    met.length === ratios.length
      ? "met"
      : met.length === 0
      ? "MISSED"
      : `met by ${met.map((r) => r.name).join(", ")} only`
  }).`
}

/**
 * Issue 18's goals: no round of any case slower than a third of its median (a stall, not a cost);
 * Replicated put at least half Partitioned r1's at concurrency 64; remote get p99 at concurrency 64
 * at most twice raw ioredis GET's.
 */
const issue18Goals = (rows: ReadonlyArray<Row>): Array<string> => {
  const lines = [
    stallGoal(
      rows,
      (row) => `${row.case} · ${row.name} at c=${row.concurrency}`,
      (row) => row.name.startsWith("ioredis") || row.name === LOCAL
    )
  ]
  const replicated = figureOf(rows, `Replicated (${1 + PEERS} holders)`, 64)
  const r1 = figureOf(rows, "Partitioned r1 (2 holders)", 64)
  if (replicated !== undefined && r1 !== undefined) {
    const share = replicated.opsPerSec / r1.opsPerSec
    lines.push(
      `Goal (issue 18): Replicated put ≥ 50% of Partitioned r1 put at concurrency 64 — ${(share * 100).toFixed(0)}% (${
        share >= 0.5 ? "met" : "MISSED"
      }).`
    )
  }
  const ioredis = figureOf(rows, IOREDIS_GET, 64)
  if (ioredis !== undefined) {
    const remote = rows.filter((row) =>
      row.case === "remote get" && row.concurrency === 64 && !row.name.startsWith("ioredis") &&
      row.figure !== undefined && row.failed === undefined
    )
    const over = remote.filter((row) => row.figure!.p99 > 2 * ioredis.p99)
    lines.push(
      `Goal (issue 18): remote get p99 at concurrency 64 ≤ 2× raw ioredis GET's (${fmtMs(ioredis.p99)}) — ${
        remote.map((row) => `${row.name} ${fmtRatio(row.figure!.p99 / ioredis.p99)}`).join(", ")
      } (${over.length === 0 ? "met" : over.length === remote.length ? "MISSED" : "met by some only"}).`
    )
  }
  return lines
}

const chart = (cases: ReadonlyArray<Case>, rows: ReadonlyArray<Row>): Chart => ({
  file: "cluster.svg",
  title: "cluster_bench: 3 processes on loopback, concurrency 64 (ops/s, higher is better)",
  panels: cases.map((c) => ({
    title: c.name,
    unit: "ops/s",
    bars: rows.filter((row) => row.case === c.name && row.concurrency === 64).map((row) => {
      const label = row.name.startsWith("ioredis") ? row.name : `Vela ${row.name}`
      return row.figure === undefined || row.failed !== undefined
        ? { label, value: 0, note: `FAILED: ${row.failed}` }
        : { label, value: row.figure.opsPerSec, lo: row.figure.minOpsPerSec, hi: row.figure.maxOpsPerSec }
    })
  }))
})

export const run = async (env: Env): Promise<SuiteResult> => {
  const rows: Array<Row> = []
  const notes: Array<string> = []
  const scope = Effect.runSync(Scope.make())
  let setup: Awaited<ReturnType<typeof setUp>> | undefined
  try {
    setup = await setUp(env, scope, notes)
    for (const c of setup.cases) await measureCase(c, rows)
  } catch (error) {
    notes.push(`Not measured, or not all: ${message(error)}`)
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
  const cases = setup?.cases ?? []
  const line = goal(rows)
  if (line !== undefined) notes.push(line)
  notes.push(...issue18Goals(rows))
  for (const [topology, { owned, remote }] of Object.entries(setup?.counts ?? {})) {
    notes.push(`${topology}: ${fmtOps(remote)} of the keys are remote to A, ${fmtOps(owned)} are A's own.`)
  }
  notes.push(
    "The 3 nodes are processes of one machine, sharing its cores with each other and with redis-server: on " +
      "separate machines each peer would serve its share in parallel."
  )
  return {
    name: "cluster",
    title: "cluster_bench: Partitioned and Replicated across 3 processes, beside raw ioredis",
    description: `This process is node A of three clusters (Partitioned.layer({ replicas: 0 }), Partitioned.layer({ ` +
      `replicas: 1 }), Replicated.layer()); ${PEERS} peer processes are nodes B and C of each; loopback TCP, Memory ` +
      `backends. ${KEYS.toLocaleString("en-US")} keys of about 65 bytes of JSON written through A; keys drawn ` +
      "uniformly (seeded). Remote get: keys none of whose holders is A, read through the Promise facade " +
      "(createCache({ topology }), await cache.get(k)), through the Effect API in fibers (one Effect.runPromise of " +
      "that many fibers, each yield* cache.get(k) in a loop), and with one Effect.runPromise(cache.get(k)) per " +
      "call. Put: the same keys, acknowledged once every holder applied it (Replicated: every node). Local get: " +
      "keys A owns, and Replicated. Put and local get through the Effect API in fibers. Baselines, in the same " +
      "interleaved rounds: raw ioredis on a local redis-server, GET + JSON.parse / SET PX, as new Redis(url) gives it " +
      "(the goal's baseline) and with enableAutoPipelining (the strongest client), and Vela on Local (Memory). Throughput ratios: above 1 is faster than the baseline.",
    tables: cases.map((c) => table(c, rows.filter((row) => row.case === c.name))),
    charts: cases.length === 0 ? [] : [chart(cases, rows)],
    notes,
    data: { rows, keys: KEYS, peers: PEERS, keysPerTopology: setup?.counts }
  }
}
