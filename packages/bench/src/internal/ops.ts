/**
 * ops_bench's targets and loops, shared by the suite and its child processes (`scripts/ops_child.mjs`):
 * a Vela cache of the Effect API (`increment`, `take`, `update` in fibers) or raw ioredis (`INCRBY`,
 * `GETDEL` in async workers), each able to set up a case, run its share of the calls and read the
 * result back for the exactness checks.
 */
import { Redis } from "@vela/backend-redis"
import { Local, Topology, Vela } from "@vela/core"
import { Effect, Exit, Layer, Option, Scope } from "effect"
import { performance } from "node:perf_hooks"

export type Op = "increment" | "take" | "update"

export const OPS: ReadonlyArray<Op> = ["increment", "take", "update"]

/**
 * One process's share of a case. Counting ops (`increment`, `update`) make `calls` calls on the hot
 * key `key`; `take` makes `calls` calls on `calls / concurrency` keys (`key:<k>`, holding k), in
 * order, `concurrency` calls per key started together, so that every key has as many takers as
 * there are workers (and as many again in every other process).
 */
export interface Plan {
  readonly op: Op
  readonly key: string
  readonly calls: number
  readonly concurrency: number
  /** No call starts after this many ms (a contended optimistic loop can be slow); those started finish. */
  readonly budgetMs: number
}

export const takeKeys = (plan: Plan) => Math.max(1, Math.floor(plan.calls / plan.concurrency))

export interface Outcome {
  /** Calls made: `plan.calls`, or fewer when the budget ran out (steps 0 to calls − 1, all finished). */
  readonly calls: number
  /** The take keys (their k) this process won. */
  readonly won: ReadonlyArray<number>
  /** Answers that cannot be right: a taken value that is not its key's, an update of a missing counter. */
  readonly wrong: number
  readonly elapsedMs: number
}

export interface Target {
  readonly name: string
  /** How it is called, for the report. */
  readonly usage: string
  /** Resets the case's keys: the counter to 0 (`update` needs it live) or absent, every take key written. */
  readonly prepare: (plan: Plan) => Promise<void>
  /** Runs the plan; with `latencies` (length `plan.calls`), times every call (ms). */
  readonly run: (plan: Plan, latencies?: Float64Array) => Promise<Outcome>
  /** The counter's value now (`undefined` when absent). */
  readonly read: (key: string) => Promise<number | undefined>
  readonly close: () => Promise<void>
}

/** How many steps ran and how long they took. */
interface Ran {
  readonly calls: number
  readonly elapsedMs: number
}

/** `calls` steps over `concurrency` workers sharing one counter of steps, none started past the budget. */
const loop = async (
  plan: Plan,
  latencies: Float64Array | undefined,
  step: (i: number) => Promise<unknown>
): Promise<Ran> => {
  let next = 0
  const started = performance.now()
  const deadline = started + plan.budgetMs
  const worker = async () => {
    while (next < plan.calls && performance.now() < deadline) {
      const i = next++
      const t = latencies === undefined ? 0 : performance.now()
      await step(i)
      if (latencies !== undefined) latencies[i] = performance.now() - t
    }
  }
  await Promise.all(Array.from({ length: plan.concurrency }, worker))
  return { calls: next, elapsedMs: performance.now() - started }
}

/** The same loop in fibers: one `Effect.runPromise` of `concurrency` fibers, each a loop of `yield*`. */
const fibers = (
  plan: Plan,
  latencies: Float64Array | undefined,
  step: (i: number) => Effect.Effect<unknown, unknown>
): Promise<Ran> => {
  let next = 0
  let deadline = Infinity
  const worker = Effect.gen(function*() {
    while (next < plan.calls && performance.now() < deadline) {
      const i = next++
      const t = latencies === undefined ? 0 : performance.now()
      yield* step(i)
      if (latencies !== undefined) latencies[i] = performance.now() - t
    }
  })
  const started = performance.now()
  deadline = started + plan.budgetMs
  return Effect.runPromise(
    Effect.all(Array.from({ length: plan.concurrency }, () => worker), { concurrency: "unbounded", discard: true })
  ).then(() => ({ calls: next, elapsedMs: performance.now() - started }))
}

/** Step i of a take plan: key k = ⌊i / concurrency⌋, so the workers reach each key together. */
const takeIndex = (plan: Plan, i: number) => Math.min(takeKeys(plan) - 1, Math.floor(i / plan.concurrency))

/** A Vela cache of the Effect API named "ops" on `topology`, built in a scope of its own. */
export const vela = async (
  name: string,
  usage: string,
  topology: Layer.Layer<Topology.Topology, unknown>
): Promise<Target> => {
  const scope = Effect.runSync(Scope.make())
  const close = () => Effect.runPromise(Scope.close(scope, Exit.void))
  const cache = await Effect.runPromise(
    Effect.flatMap(
      Layer.buildWithScope(topology, scope),
      (context) =>
        Vela.make<number>({ name: "ops" }).pipe(Effect.provide(context), Effect.provideService(Scope.Scope, scope))
    )
  ).catch(async (error) => {
    await close()
    throw error
  })
  return {
    name,
    usage,
    prepare: (plan) =>
      Effect.runPromise(
        plan.op === "take"
          ? Effect.forEach(
            Array.from({ length: takeKeys(plan) }, (_, k) => k),
            (k) => cache.put(`${plan.key}:${k}`, k),
            { concurrency: 64, discard: true }
          )
          : plan.op === "update"
          ? cache.put(plan.key, 0)
          : cache.delete(plan.key)
      ),
    run: async (plan, latencies) => {
      const won: Array<number> = []
      let wrong = 0
      const step = plan.op === "increment"
        ? () => cache.increment(plan.key, 1)
        : plan.op === "update"
        ? () =>
          Effect.map(cache.update(plan.key, (n) => n + 1), (updated) => {
            if (Option.isNone(updated)) wrong++
          })
        : (i: number) => {
          const k = takeIndex(plan, i)
          return Effect.map(cache.take(`${plan.key}:${k}`), (taken) => {
            if (Option.isNone(taken)) return
            won.push(k)
            if (taken.value !== k) wrong++
          })
        }
      return { ...(await fibers(plan, latencies, step)), won, wrong }
    },
    read: (key) => Effect.runPromise(Effect.map(cache.getOption(key), Option.getOrUndefined)),
    close
  }
}

export const IOREDIS = "ioredis (raw)"

/** Whether `target` has `op`: ioredis has no read-modify-write of its own (it would be WATCH/MULTI or a user's script). */
export const supports = (target: string, op: Op) => target !== IOREDIS || op !== "update"

/** Raw ioredis (auto-pipelining): `INCRBY key 1` for increment, `GETDEL` for take; it has no update. */
export const ioredis = async (url: string): Promise<Target> => {
  const { Redis } = await import("ioredis")
  const redis = new Redis(url, { enableAutoPipelining: true })
  return {
    name: IOREDIS,
    usage: "new Redis(url, { enableAutoPipelining: true }): INCRBY key 1, GETDEL key",
    prepare: async (plan) => {
      if (plan.op !== "take") {
        await redis.del(plan.key)
        return
      }
      const pipeline = redis.pipeline()
      for (let k = 0; k < takeKeys(plan); k++) pipeline.set(`${plan.key}:${k}`, String(k))
      await pipeline.exec()
    },
    run: async (plan, latencies) => {
      const won: Array<number> = []
      let wrong = 0
      const step = plan.op === "take"
        ? async (i: number) => {
          const k = takeIndex(plan, i)
          const taken = await redis.getdel(`${plan.key}:${k}`)
          if (taken === null) return
          won.push(k)
          if (Number(taken) !== k) wrong++
        }
        : () => redis.incrby(plan.key, 1)
      return { ...(await loop(plan, latencies, step)), won, wrong }
    },
    read: async (key) => {
      const value = await redis.get(key)
      return value === null ? undefined : Number(value)
    },
    close: async () => {
      await redis.quit().catch(() => redis.disconnect())
    }
  }
}

/** Vela on Redis (`Local` + `Redis.layer`), and raw ioredis, both on the server at `url`. */
export const onRedis = (url: string): Promise<Array<Target>> =>
  Promise.all([
    vela(
      "Vela Redis",
      "Vela.make on Local + Redis.layer({ url, prefix }), in fibers",
      Local.layer.pipe(Layer.provide(Redis.layer({ url, prefix: "ops:" })))
    ),
    ioredis(url)
  ])

/** Vela on a Partitioned node already running. */
export const onPartitioned = (topology: Topology.Topology["Type"]): Promise<Target> =>
  vela(
    "Vela Partitioned",
    "Vela.make on a Partitioned.layer({ replicas: 1 }) node, in fibers",
    Layer.succeed(Topology.Topology, topology)
  )
