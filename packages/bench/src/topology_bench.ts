/**
 * topology_bench: one cache through the Effect API on the Local topology (Memory) against the
 * Partitioned topology of 3 cluster nodes in this process (`@vela/cluster`, Memory backends,
 * replicas 1, loopback TCP), measured from the first node, so about 2 keys in 3 live on a peer.
 * Keys: 10,000 (100,000 with `--full`), preloaded; cases: get hit (round-robin), getOrFetch of a
 * present key, put with a TTL,
 * and the Zipf(0.99) 90/10 mix, at concurrency 1 and 64, each after one untimed pass over all its
 * steps (which fills a near cache as a running program's reads would). Run: `npm run bench -- topology`.
 */
import { Local, Memory, NearCache } from "@vela/core"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import type { ClusterTopology } from "./internal/cluster.js"
import { awaitMembers, startNode, topologies } from "./internal/cluster.js"
import type { Contender } from "./internal/contenders.js"
import * as Contenders from "./internal/contenders.js"
import * as Drive from "./internal/drive.js"
import type { CaseFigure } from "./internal/measure.js"
import { collect, full, stallGoal, timeCase } from "./internal/measure.js"
import { freePort } from "./internal/redisServer.js"
import type { SuiteResult, Table } from "./internal/report.js"
import { fmtMs, fmtOps, message, progress } from "./internal/report.js"

const KEYS = full ? 100_000 : 10_000
const TTL = 3_600_000
const CONCURRENCY = [1, 64] as const

const cases = (): ReadonlyArray<Drive.Workload> => {
  const keys = Array.from({ length: KEYS }, (_, i) => `key:${i}`)
  const values = keys.map((key, i) => Contenders.valueOf(key, i))
  const ranks = Drive.zipfRanks(KEYS, 0.99, 100_000, 42)
  const coin = Drive.random(7)
  const codes = Uint8Array.from(ranks, () => coin() < 0.1 ? Drive.SET : Drive.GET)
  return [
    Drive.uniform("preload", Drive.SET, keys, values, true, TTL),
    Drive.uniform("get hit", Drive.GET, keys, values, true, TTL),
    Drive.uniform("getOrFetch hit", Drive.FETCH, keys, values, true, TTL),
    Drive.uniform("put with TTL", Drive.SET, keys, values, true, TTL),
    Drive.workload(
      "zipf 90/10 mix",
      codes,
      Array.from(ranks, (rank) => keys[rank]),
      Array.from(ranks, (rank) => values[rank]),
      true,
      TTL
    )
  ]
}

interface Row {
  readonly topology: string
  readonly case: string
  readonly concurrency: number
  readonly figure?: CaseFigure | undefined
  readonly failed?: string | undefined
}

const measureOn = async (contender: Contender, rows: Array<Row>) => {
  const [preload, ...timed] = cases()
  try {
    const wrong = await Contenders.check(contender)
    if (wrong !== undefined) throw new Error(`failed its check: ${wrong}`)
    await Drive.drive(contender, preload, KEYS, 64)
  } catch (error) {
    for (const w of timed) {
      for (const concurrency of CONCURRENCY) {
        rows.push({ topology: contender.name, case: w.name, concurrency, failed: message(error) })
      }
    }
    return
  }
  for (const w of timed) {
    for (const concurrency of CONCURRENCY) {
      progress(`topology: ${contender.name} · ${w.name} · concurrency ${concurrency}`)
      try {
        // One untimed pass over every step first: the near cache's L1 holds only keys this node read or
        // wrote, so without it a round that reaches keys no earlier round touched times remote gets,
        // and calibration sizes the rounds on that cold pass.
        const warm = concurrency === CONCURRENCY[0] ? await Drive.drive(contender, w, w.codes.length, 64) : 0
        const measured = await timeCase(
          (n) => Drive.drive(contender, w, n, concurrency),
          (n, samples) => Drive.drive(contender, w, n, concurrency, samples),
          { targetMs: full ? 1_000 : 150, rounds: full ? 5 : 3, firstOps: 500, maxOps: 2_000_000 }
        )
        const figure = { ...measured, wrong: measured.wrong + warm }
        rows.push({
          topology: contender.name,
          case: w.name,
          concurrency,
          figure,
          failed: figure.wrong > 0 ? `${figure.wrong} wrong answers` : undefined
        })
      } catch (error) {
        rows.push({ topology: contender.name, case: w.name, concurrency, failed: `threw ${message(error)}` })
      }
    }
  }
  collect()
}

/** Three nodes of `topology` in this process; the Effect cache is opened on the first. */
const clusterOf = async (scope: Scope.Scope, topology: ClusterTopology, near: boolean): Promise<Contender> => {
  const { ClusterNode } = await import("@vela/cluster")
  const ports = [await freePort(), await freePort(), await freePort()]
  const ids = ports.map((port) => `127.0.0.1:${port}`)
  const built = await Promise.all(ports.map((port, i) =>
    startNode(scope, topology, {
      port,
      seeds: ids.filter((_, j) => j !== i),
      secret: "vela-bench",
      heartbeatInterval: "100 millis"
    })
  ))
  await awaitMembers(Context.get(built[0], ClusterNode.ClusterNode), 3)
  const onFirst = Layer.succeedContext(built[0])
  return Contenders.velaEffect(
    `${near ? "NearCache + " : ""}${topology.name}, 3 nodes`,
    "in-process",
    `Vela.make on ${near ? "NearCache.layer() + " : ""}${topology.description} + ClusterNode.layer + Memory, 3 nodes`,
    near ? NearCache.layer({ ttl: "1 minute" }).pipe(Layer.provide(onFirst)) : onFirst
  )
}

const table = (name: string, rows: ReadonlyArray<Row>): Table => ({
  title: `topology_bench · ${name}`,
  columns: [
    "topology",
    "c=1 ops/s",
    "spread",
    "p50",
    "p99",
    "× Local",
    "c=64 ops/s",
    "spread",
    "p50",
    "p99",
    "× Local"
  ],
  rows: [...new Set(rows.map((row) => row.topology))].map((topology) => [
    topology,
    ...CONCURRENCY.flatMap((concurrency) => {
      const row = rows.find((r) => r.topology === topology && r.concurrency === concurrency)
      if (row?.figure === undefined || row.failed !== undefined) {
        return [`FAILED: ${row?.failed ?? "not run"}`, "", "", "", ""]
      }
      const f = row.figure
      const local = rows.find((r) => r.topology === "Local" && r.concurrency === concurrency)?.figure
      return [
        fmtOps(f.opsPerSec),
        `${fmtOps(f.minOpsPerSec)}–${fmtOps(f.maxOpsPerSec)}`,
        fmtMs(f.p50),
        fmtMs(f.p99),
        local === undefined ? "" : (f.opsPerSec / local.opsPerSec).toFixed(3)
      ]
    })
  ])
})

export const run = async (): Promise<SuiteResult> => {
  const rows: Array<Row> = []
  const notes: Array<string> = []
  const local = await Contenders.velaEffect(
    "Local",
    "in-process",
    "Vela.make on Local + Memory",
    Local.layer.pipe(Layer.provide(Memory.layer()))
  )
  try {
    await measureOn(local, rows)
  } finally {
    await local.close()
  }
  const nearLocal = await Contenders.velaEffect(
    "NearCache + Local",
    "in-process",
    "Vela.make on NearCache.layer() + Local + Memory",
    NearCache.layer({ ttl: "1 minute" }).pipe(Layer.provide(Local.layer), Layer.provide(Memory.layer()))
  )
  try {
    await measureOn(nearLocal, rows)
  } finally {
    await nearLocal.close()
  }
  for (const topology of topologies) {
    for (const near of [false, true]) {
      const scope = Effect.runSync(Scope.make())
      try {
        const contender = await clusterOf(scope, topology, near)
        try {
          await measureOn(contender, rows)
        } finally {
          await contender.close()
        }
      } catch (error) {
        notes.push(`${near ? "NearCache + " : ""}${topology.name} (3 nodes) not measured: ${message(error)}`)
      } finally {
        await Effect.runPromise(Scope.close(scope, Exit.void))
      }
    }
  }
  notes.push(
    stallGoal(
      rows,
      (row) => `${row.case} · ${row.topology} at c=${row.concurrency}`,
      (row) => row.topology.endsWith("Local")
    )
  )
  notes.push(
    "The 3 nodes run in this one process and share its event loop and cores: a cluster of separate machines " +
      "would serve each node's share in parallel, so the Partitioned figures are a lower bound."
  )
  const names = [...new Set(rows.map((row) => row.case))]
  return {
    name: "topology",
    title: "topology_bench: Local, Partitioned and Replicated (3 nodes), bare and with a near cache",
    description: `One cache through the Effect API (in fibers) on Local + Memory, and on the Partitioned topology of ` +
      `3 @vela/cluster nodes in this process (Memory backends, replicas 1, loopback TCP), measured from the first ` +
      `node. ${KEYS.toLocaleString("en-US")} keys preloaded${
        full ? "" : " (short mode; 100,000 with --full)"
      }; get hit, getOrFetch hit, put with TTL, Zipf(0.99) 90/10 mix.`,
    tables: names.map((name) => table(name, rows.filter((row) => row.case === name))),
    charts: [{
      file: "topology.svg",
      title: "topology_bench: topologies at concurrency 64 (ops/s, higher is better)",
      panels: names.map((name) => ({
        title: name,
        unit: "ops/s",
        bars: rows.filter((row) => row.case === name && row.concurrency === 64).map((row) =>
          row.figure === undefined || row.failed !== undefined
            ? { label: `Vela ${row.topology}`, value: 0, note: `FAILED: ${row.failed}` }
            : {
              label: `Vela ${row.topology}`,
              value: row.figure.opsPerSec,
              lo: row.figure.minOpsPerSec,
              hi: row.figure.maxOpsPerSec
            }
        )
      }))
    }],
    notes,
    data: { rows, keys: KEYS }
  }
}
