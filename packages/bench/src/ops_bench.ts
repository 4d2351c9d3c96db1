/**
 * ops_bench: the atomic operations under contention — `increment` and `update` of one hot counter,
 * `take` of keys every worker reaches at once — at concurrency 1 and 64 (fibers of the Effect API;
 * async workers for ioredis), in one process over Memory, Redis and Partitioned (2 nodes in this
 * process), then across 3 processes (`scripts/ops_child.mjs`) over one Redis and as the 3 nodes of
 * one Partitioned cluster; beside raw ioredis `INCRBY` and `GETDEL`. Reports ops/s and per-call
 * p50/p99, and checks every case exactly: the counter ends at the number of calls made by all the
 * processes, every take key is won by exactly one caller with its own value. Run:
 * `npm run bench -- ops`.
 */
import { Local, Memory, Topology } from "@vela/core"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { fileURLToPath } from "node:url"
import type { Children } from "./internal/children.js"
import { forkAll } from "./internal/children.js"
import { awaitMembers, startNode, topologies } from "./internal/cluster.js"
import type { Env } from "./internal/env.js"
import { collect, full, percentile } from "./internal/measure.js"
import type { Op, Outcome, Plan, Target } from "./internal/ops.js"
import * as Ops from "./internal/ops.js"
import type { Chart, SuiteResult, Table } from "./internal/report.js"
import { fmtMs, fmtOps, message, progress } from "./internal/report.js"

const PROCESSES = 3
const CONCURRENCY = [1, 64] as const
/** Calls per process and case: in memory, and over a network. */
const CALLS = { memory: full ? 200_000 : 20_000, remote: full ? 20_000 : 4_000 }
const WARM_UP = 500
/** A case (and its warm-up) starts no call after this long: contended optimistic loops can be slow. */
const BUDGET_MS = full ? 20_000 : 5_000

interface Row {
  readonly setting: string
  readonly target: string
  readonly op: Op
  readonly concurrency: number
  readonly opsPerSec?: number | undefined
  readonly p50?: number | undefined
  readonly p99?: number | undefined
  /** What the exactness check found: "exact (…)" or what was wrong. */
  readonly check: string
  readonly exact: boolean
}

/** How a case runs: in this process on one target, or on one target of every child. */
interface Runner {
  readonly prepare: (plan: Plan) => Promise<void>
  /** Every process's outcome and call latencies. */
  readonly run: (plan: Plan) => Promise<ReadonlyArray<Outcome & { readonly latencies: Float64Array }>>
  readonly read: (key: string) => Promise<number | undefined>
}

const local = (target: Target): Runner => ({
  prepare: target.prepare,
  run: async (plan) => {
    const latencies = new Float64Array(plan.calls)
    const outcome = await target.run(plan, latencies)
    return [{ ...outcome, latencies: latencies.subarray(0, outcome.calls) }]
  },
  read: target.read
})

/** Every child's reply of `type` to `message`; rejects with the first error a child answered. */
const ask = async (groups: ReadonlyArray<Children>, type: string, message: Record<string, unknown>) => {
  const replies = Promise.all(groups.map((children) => children.all(type)))
  for (const children of groups) children.send(message)
  const all = (await replies).flat()
  const failed = all.find((reply) => reply.error !== undefined)
  if (failed !== undefined) throw new Error(failed.error)
  return all
}

/** `first` prepares and reads; every child runs its share, started by one message. */
const remote = (first: Children, all: ReadonlyArray<Children>, target: string): Runner => ({
  prepare: (plan) => ask([first], "prepared", { type: "prepare", target, plan }).then(() => undefined),
  run: async (plan) =>
    (await ask(all, "result", { type: "run", target, plan })).map((result) => ({
      ...result,
      latencies: Float64Array.from(result.latencies.slice(0, result.calls))
    })),
  read: async (key) => {
    const [{ value }] = await ask([first], "value", { type: "read", target, key })
    return value ?? undefined
  }
})

/** Whether the case came out exact: the counter holds every call of every process, every take key went to one caller. */
const verdict = async (
  runner: Runner,
  plan: Plan,
  outcomes: ReadonlyArray<Outcome>
): Promise<{ readonly check: string; readonly exact: boolean }> => {
  const wrong = outcomes.reduce((n, o) => n + o.wrong, 0)
  const wrongNote = wrong > 0 ? `; ${wrong} wrong answers` : ""
  const calls = outcomes.reduce((n, o) => n + o.calls, 0)
  const stopped = calls < plan.calls * outcomes.length
    ? ` (budget spent after ${fmtOps(calls)} of ${fmtOps(plan.calls * outcomes.length)} calls)`
    : ""
  if (plan.op === "take") {
    // Steps 0 to calls − 1 of each process all ran, so every key up to the last one reached had takers.
    const reached = Math.max(...outcomes.map((o) => Math.ceil(o.calls / plan.concurrency)))
    const wins = new Uint32Array(Ops.takeKeys(plan))
    for (const outcome of outcomes) for (const k of outcome.won) wins[k]++
    const none = wins.subarray(0, reached).filter((n) => n === 0).length
    const many = wins.filter((n) => n > 1).length + wins.subarray(reached).filter((n) => n > 0).length
    const exact = none === 0 && many === 0 && wrong === 0
    return {
      exact,
      check: exact
        ? `exact: ${fmtOps(reached)} keys, one winner each${stopped}`
        : `NOT EXACT: ${none} keys nobody took, ${many} taken more than once${wrongNote}${stopped}`
    }
  }
  const expected = calls
  const found = await runner.read(plan.key)
  const exact = found === expected && wrong === 0
  return {
    exact,
    check: exact
      ? `exact: ${fmtOps(expected)} = ${fmtOps(expected)}${stopped}`
      : `NOT EXACT: ${found === undefined ? "absent" : fmtOps(found)}, expected ${
        fmtOps(expected)
      }${wrongNote}${stopped}`
  }
}

let cases = 0

/** Every op and concurrency of `target` through `runner`: a warm-up run, then one timed run that also times each call. */
const measureTarget = async (
  setting: string,
  target: string,
  runner: Runner,
  calls: number,
  rows: Array<Row>
) => {
  for (const op of Ops.OPS) {
    if (!Ops.supports(target, op)) continue
    for (const concurrency of CONCURRENCY) {
      progress(`ops: ${setting} · ${target} · ${op} · c=${concurrency}`)
      const key = `bench:${op}:${++cases}:${Date.now()}`
      const plan: Plan = { op, key, calls, concurrency, budgetMs: BUDGET_MS }
      try {
        const warm: Plan = { ...plan, key: `${key}:warm`, calls: Math.min(calls, WARM_UP) }
        await runner.prepare(warm)
        await runner.run(warm)
        await runner.prepare(plan)
        collect()
        const outcomes = await runner.run(plan)
        const elapsed = Math.max(...outcomes.map((o) => o.elapsedMs))
        const latencies = new Float64Array(outcomes.reduce((n, o) => n + o.latencies.length, 0))
        let offset = 0
        for (const o of outcomes) {
          latencies.set(o.latencies, offset)
          offset += o.latencies.length
        }
        rows.push({
          setting,
          target,
          op,
          concurrency,
          opsPerSec: outcomes.reduce((n, o) => n + o.calls, 0) / (elapsed / 1000),
          p50: percentile(latencies, 50),
          p99: percentile(latencies, 99),
          ...(await verdict(runner, plan, outcomes))
        })
      } catch (error) {
        rows.push({ setting, target, op, concurrency, check: `FAILED: ${message(error)}`, exact: false })
      }
    }
  }
}

/** Runs `f` when `scope` closes; a failure there is not the run's. */
const onClose = (scope: Scope.Scope, f: () => Promise<unknown>) =>
  Effect.runSync(Scope.addFinalizer(scope, Effect.promise(() => f().catch(() => {}))))

const stopChildren = (scope: Scope.Scope, children: Children) =>
  onClose(scope, () => {
    children.send({ type: "stop" })
    return children.stopped(5_000)
  })

const script = () => fileURLToPath(new URL("../scripts/ops_child.mjs", import.meta.url))

/** In this process: Memory, Redis and ioredis on the run's server, Partitioned on two nodes of this process. */
const inOneProcess = async (env: Env, scope: Scope.Scope, rows: Array<Row>, notes: Array<string>) => {
  const setting = "1 process"
  const memory = await Ops.vela(
    "Vela Memory",
    "Vela.make on Local + Memory, in fibers",
    Local.layer.pipe(Layer.provide(Memory.layer()))
  )
  onClose(scope, memory.close)
  await measureTarget(setting, memory.name, local(memory), CALLS.memory, rows)
  const redis = await env.redis()
  if ("url" in redis) {
    for (const target of await Ops.onRedis(redis.url)) {
      onClose(scope, target.close)
      await measureTarget(setting, target.name, local(target), CALLS.remote, rows)
    }
  } else {
    notes.push(`Redis rows not measured: ${redis.error}.`)
  }
  const partitioned = topologies.find((t) => t.name === "Partitioned r1")!
  const { ClusterNode } = await import("@vela/cluster")
  const secret = "vela-bench:ops"
  const a = await startNode(scope, partitioned, { port: 0, seeds: [], secret })
  const nodeA = Context.get(a, ClusterNode.ClusterNode)
  await startNode(scope, partitioned, { port: 0, seeds: [nodeA.id], secret })
  await awaitMembers(nodeA, 2)
  const target = await Ops.onPartitioned(Context.get(a, Topology.Topology))
  onClose(scope, target.close)
  await measureTarget(`${setting}, Partitioned of 2 nodes`, target.name, local(target), CALLS.remote, rows)
}

/** Across `PROCESSES` children: over the run's Redis, and as the nodes of one Partitioned cluster. */
const acrossProcesses = async (env: Env, scope: Scope.Scope, rows: Array<Row>, notes: Array<string>) => {
  const setting = `${PROCESSES} processes`
  const redis = await env.redis()
  if ("url" in redis) {
    const children = forkAll(
      script(),
      Array.from({ length: PROCESSES }, () => [JSON.stringify({ backend: "redis", url: redis.url })])
    )
    stopChildren(scope, children)
    await children.all("ready")
    for (const name of ["Vela Redis", Ops.IOREDIS]) {
      await measureTarget(`${setting}, one Redis`, name, remote(children, [children], name), CALLS.remote, rows)
    }
  } else {
    notes.push(`Redis rows across processes not measured either: ${redis.error}.`)
  }
  const secret = "vela-bench:ops-x"
  const first = forkAll(script(), [[JSON.stringify({ backend: "partitioned", seeds: [], secret, members: 1 })]])
  stopChildren(scope, first)
  const [{ id }] = await first.all("ready")
  const others = forkAll(
    script(),
    Array.from(
      { length: PROCESSES - 1 },
      () => [JSON.stringify({ backend: "partitioned", seeds: [id], secret, members: PROCESSES })]
    )
  )
  stopChildren(scope, others)
  await others.all("ready")
  await measureTarget(
    `${setting}, Partitioned of ${PROCESSES} nodes`,
    "Vela Partitioned",
    remote(first, [first, others], "Vela Partitioned"),
    CALLS.remote,
    rows
  )
}

const table = (setting: string, rows: ReadonlyArray<Row>): Table => ({
  title: `ops_bench · ${setting}`,
  columns: ["target", "op", "c", "ops/s", "p50", "p99", "exactness"],
  rows: rows.map((row) => [
    row.target,
    row.target === Ops.IOREDIS ? (row.op === "take" ? "GETDEL" : "INCRBY") : row.op,
    String(row.concurrency),
    row.opsPerSec === undefined ? "" : fmtOps(row.opsPerSec),
    row.p50 === undefined ? "" : fmtMs(row.p50),
    row.p99 === undefined ? "" : fmtMs(row.p99),
    row.check
  ])
})

export const run = async (env: Env): Promise<SuiteResult> => {
  const rows: Array<Row> = []
  const notes: Array<string> = []
  const scope = Effect.runSync(Scope.make())
  try {
    // A setting that cannot start (a cluster that does not form) is a note; the other settings still run.
    for (const setting of [inOneProcess, acrossProcesses]) {
      await setting(env, scope, rows, notes).catch((error) => {
        notes.push(`FAILED to set up: ${message(error)}; the rows after it in that setting were not measured.`)
      })
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
  const settings = [...new Set(rows.map((row) => row.setting))]
  const inexact = rows.filter((row) => !row.exact)
  notes.push(
    `Exactness: ${
      inexact.length === 0
        ? `every case exact (${rows.length} cases)`
        : `NOT MET in ${inexact.length} of ${rows.length} cases: ${
          inexact.map((row) => `${row.target} ${row.op} c=${row.concurrency} ${row.setting}: ${row.check}`).join("; ")
        }`
    }.`,
    "ioredis has no read-modify-write of its own (it would be WATCH/MULTI or a script the user writes): no update rows."
  )
  const chart: Chart = {
    file: "ops.svg",
    title: "ops_bench: increment, take and update under contention",
    panels: settings.flatMap((setting) =>
      CONCURRENCY.map((c) => ({
        title: `${setting}, c=${c}`,
        unit: "ops/s",
        bars: rows.filter((row) => row.setting === setting && row.concurrency === c).map((row) => ({
          label: `${row.target} ${row.op}`,
          value: row.opsPerSec ?? 0,
          ...(row.opsPerSec === undefined ? { note: row.check } : {})
        }))
      }))
    )
  }
  return {
    name: "ops",
    title: "ops_bench: atomic operations under contention",
    description: `increment and update of one hot counter, take of keys that every worker reaches together, at ` +
      `concurrency ${CONCURRENCY.join(" and ")} (Effect fibers for Vela, async workers for ioredis); ` +
      `${fmtOps(CALLS.memory)} calls per case in memory, ${fmtOps(CALLS.remote)} per process over Redis or a ` +
      `cluster; across processes, ${PROCESSES} children started by one message, and ops/s counts every ` +
      "process's calls over the slowest one's time. One warm-up run, then one timed run that times each call; " +
      `no call starts after ${BUDGET_MS / 1000} s (the row then says how many were made). Every case is checked: ` +
      "the counter ends at the number of calls made, each take key reached has exactly one winner.",
    tables: settings.map((setting) => table(setting, rows.filter((row) => row.setting === setting))),
    charts: [chart],
    notes,
    data: { rows, calls: CALLS, processes: PROCESSES }
  }
}
