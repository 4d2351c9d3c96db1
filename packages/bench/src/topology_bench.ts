/**
 * topology_bench: one cache through the Effect API on the Local topology (Memory) against the
 * Partitioned topology of 3 cluster nodes in this process (`@vela/cluster`, Memory backends,
 * replicas 1, loopback TCP), measured from the first node, so about 2 keys in 3 live on a peer.
 * Keys: 10,000 (100,000 with `--full`), preloaded; cases: get hit (round-robin), put with a TTL,
 * and the Zipf(0.99) 90/10 mix, at concurrency 1 and 64. Run: `npm run bench -- topology`.
 */
import { Local, Memory } from "@vela/core"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import type { Contender } from "./internal/contenders.js"
import * as Contenders from "./internal/contenders.js"
import * as Drive from "./internal/drive.js"
import type { CaseFigure } from "./internal/measure.js"
import { collect, full, timeCase } from "./internal/measure.js"
import { freePort } from "./internal/redisServer.js"
import type { SuiteResult, Table } from "./internal/report.js"
import { fmtMs, fmtOps, progress } from "./internal/report.js"

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
        const figure = await timeCase(
          (n) => Drive.drive(contender, w, n, concurrency),
          (n, samples) => Drive.drive(contender, w, n, concurrency, samples),
          { targetMs: full ? 1_000 : 150, rounds: full ? 5 : 3, firstOps: 500, maxOps: 2_000_000 }
        )
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

const message = (error: unknown) => error instanceof Error ? error.message : String(error)

/** Three Partitioned nodes in this process; the Effect cache is opened on the first. */
const partitioned = async (scope: Scope.Scope): Promise<Contender> => {
  const { ClusterNode, Partitioned } = await import("@vela/cluster")
  const ports = [await freePort(), await freePort(), await freePort()]
  const ids = ports.map((port) => `127.0.0.1:${port}`)
  const node = (i: number) =>
    Partitioned.layer({ replicas: 1 }).pipe(
      Layer.provideMerge(ClusterNode.layer({
        host: "127.0.0.1",
        port: ports[i],
        seeds: ids.filter((_, j) => j !== i),
        secret: "vela-bench",
        heartbeatInterval: "100 millis"
      })),
      Layer.provide(Memory.layer())
    )
  const built = await Effect.runPromise(
    Effect.all([0, 1, 2].map((i) => Layer.buildWithScope(node(i), scope)), { concurrency: "unbounded" })
  )
  const first = Context.get(built[0], ClusterNode.ClusterNode)
  const deadline = Date.now() + 15_000
  while (first.currentMembers().length < 3) {
    if (Date.now() > deadline) throw new Error(`the 3 nodes did not see each other within 15 s`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return Contenders.velaEffect(
    "Partitioned, 3 nodes",
    "in-process",
    "Vela.make on Partitioned.layer({ replicas: 1 }) + ClusterNode.layer + Memory, 3 nodes on loopback",
    Layer.succeedContext(built[0])
  )
}

const table = (name: string, rows: ReadonlyArray<Row>): Table => ({
  title: `topology_bench · ${name}`,
  columns: ["topology", "c=1 ops/s", "spread", "p50", "p99", "c=64 ops/s", "spread", "p50", "p99"],
  rows: [...new Set(rows.map((row) => row.topology))].map((topology) => [
    topology,
    ...CONCURRENCY.flatMap((concurrency) => {
      const row = rows.find((r) => r.topology === topology && r.concurrency === concurrency)
      if (row?.figure === undefined || row.failed !== undefined) {
        return [`FAILED: ${row?.failed ?? "not run"}`, "", "", ""]
      }
      const f = row.figure
      return [fmtOps(f.opsPerSec), `${fmtOps(f.minOpsPerSec)}–${fmtOps(f.maxOpsPerSec)}`, fmtMs(f.p50), fmtMs(f.p99)]
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
  const scope = Effect.runSync(Scope.make())
  try {
    const cluster = await partitioned(scope)
    try {
      await measureOn(cluster, rows)
    } finally {
      await cluster.close()
    }
  } catch (error) {
    notes.push(`Partitioned (3 nodes) not measured: ${message(error)}`)
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
  notes.push(
    "The 3 nodes run in this one process and share its event loop and cores: a cluster of separate machines " +
      "would serve each node's share in parallel, so the Partitioned figures are a lower bound."
  )
  const names = [...new Set(rows.map((row) => row.case))]
  return {
    name: "topology",
    title: "topology_bench: Local vs Partitioned (3 nodes)",
    description: `One cache through the Effect API (in fibers) on Local + Memory, and on the Partitioned topology of ` +
      `3 @vela/cluster nodes in this process (Memory backends, replicas 1, loopback TCP), measured from the first ` +
      `node. ${KEYS.toLocaleString("en-US")} keys preloaded${
        full ? "" : " (short mode; 100,000 with --full)"
      }; get hit, put with TTL, Zipf(0.99) 90/10 mix.`,
    tables: names.map((name) => table(name, rows.filter((row) => row.case === name))),
    charts: [{
      file: "topology.svg",
      title: "topology_bench: Local vs Partitioned (3 nodes), concurrency 64 (ops/s, higher is better)",
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
