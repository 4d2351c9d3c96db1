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
import { Effect, Exit, Scope } from "effect"
import type { Row } from "./internal/clusterCases.js"
import { measureCase, setUp } from "./internal/clusterCases.js"
import { chart, goal, issue18Goals, table } from "./internal/clusterReport.js"
import { KEYS, PEERS } from "./internal/clusterWorkload.js"
import type { Env } from "./internal/env.js"
import type { SuiteResult } from "./internal/report.js"
import { fmtOps, message } from "./internal/report.js"

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
