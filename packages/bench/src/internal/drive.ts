/**
 * Workloads and the loops that run them on a contender: `concurrency` async workers (Promise
 * contenders, one `await` per call) or fibers (Effect contenders, one `yield*` per call) that share
 * one counter of calls. Every answer is checked inline (a hit must carry the key it was asked
 * for), at the same cost for every contender; a wrong answer is counted, and a row with any fails.
 */
import { Effect, Option } from "effect"
import { performance } from "node:perf_hooks"
import type { Contender, EffectOps, Fetch, PromiseOps, Value } from "./contenders.js"
import { valueOf } from "./contenders.js"

export const GET = 0
export const SET = 1
export const FETCH = 2

/** Steps replayed in a loop: an operation code, a key and (for SET) a value per step. */
export interface Workload {
  readonly name: string
  readonly codes: Uint8Array
  readonly keys: ReadonlyArray<string>
  readonly values: ReadonlyArray<Value>
  /** GET steps must hit (`true`) or must miss (`false`). */
  readonly hits: boolean
  /** TTL of SET and of what FETCH stores, ms. */
  readonly ttl: number
}

export const workload = (
  name: string,
  codes: Uint8Array,
  keys: ReadonlyArray<string>,
  values: ReadonlyArray<Value>,
  hits: boolean,
  ttl: number
): Workload => ({ name, codes, keys, values, hits, ttl })

/** The same operation on every step. */
export const uniform = (
  name: string,
  code: number,
  keys: ReadonlyArray<string>,
  values: ReadonlyArray<Value>,
  hits: boolean,
  ttl: number
): Workload => workload(name, new Uint8Array(keys.length).fill(code), keys, values, hits, ttl)

/** mulberry32: a small seeded generator, so workloads are the same on every run and for everyone. */
export const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** `length` ranks in [0, n) drawn from a Zipf distribution of exponent `skew`, seeded. */
export const zipfRanks = (n: number, skew: number, length: number, seed: number): Uint32Array => {
  const cdf = new Float64Array(n)
  let total = 0
  for (let rank = 0; rank < n; rank++) cdf[rank] = total += 1 / (rank + 1) ** skew
  const next = random(seed)
  const ranks = new Uint32Array(length)
  for (let i = 0; i < length; i++) {
    const target = next() * total
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cdf[mid] < target) lo = mid + 1
      else hi = mid
    }
    ranks[i] = lo
  }
  return ranks
}

/** Runs `count` steps of `w` over `concurrency` workers; records each call's latency (ms) when asked. Resolves to the number of wrong answers. */
export const drive = (
  contender: Contender,
  w: Workload,
  count: number,
  concurrency: number,
  latencies?: Float64Array
): Promise<number> =>
  contender.api._tag === "promise"
    ? drivePromise(contender.api.ops, w, count, concurrency, latencies)
    : driveEffect(contender.api.ops, w, count, concurrency, latencies)

/**
 * Every contender's loops let timers and I/O run once per `BREATHE` calls: a loop whose calls all
 * complete synchronously would otherwise hold the event loop for seconds, and in-process cluster
 * nodes (whose heartbeats are timers) would stall meanwhile. One macrotask per 4,096 calls, alike
 * for everyone.
 */
const BREATHE = 4_096
const breathe = () => new Promise<void>((resolve) => setImmediate(resolve))
const breatheEffect = Effect.async<void>((resume) => {
  setImmediate(() => resume(Effect.void))
})

const fetchValue: Fetch = (key) => Promise.resolve(valueOf(key, -1))
const fetchValueEffect = (key: string) => Effect.sync(() => valueOf(key, -1))

const drivePromise = async (
  ops: PromiseOps,
  w: Workload,
  count: number,
  concurrency: number,
  latencies: Float64Array | undefined
): Promise<number> => {
  const { codes, hits, keys, ttl, values } = w
  const length = codes.length
  let next = 0
  let wrong = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      const j = i % length
      const key = keys[j]
      const code = codes[j]
      const started = latencies === undefined ? 0 : performance.now()
      if (code === GET) {
        const found = await ops.get(key)
        if (hits ? found === undefined || found.id !== key : found !== undefined) wrong++
      } else if (code === SET) {
        await ops.set(key, values[j], ttl)
      } else {
        const found = await ops.getOrFetch(key, fetchValue, ttl)
        if (found === undefined || found.id !== key) wrong++
      }
      if (latencies !== undefined) latencies[i] = performance.now() - started
      if (i % BREATHE === BREATHE - 1) await breathe()
    }
  }
  const workers: Array<Promise<void>> = []
  for (let k = 0; k < concurrency; k++) workers.push(worker())
  await Promise.all(workers)
  return wrong
}

const driveEffect = (
  ops: EffectOps,
  w: Workload,
  count: number,
  concurrency: number,
  latencies: Float64Array | undefined
): Promise<number> => {
  const { codes, hits, keys, ttl, values } = w
  const length = codes.length
  let next = 0
  let wrong = 0
  const worker = Effect.gen(function*() {
    while (next < count) {
      const i = next++
      const j = i % length
      const key = keys[j]
      const code = codes[j]
      const started = latencies === undefined ? 0 : performance.now()
      if (code === GET) {
        const found = yield* ops.get(key)
        if (hits ? Option.isNone(found) || found.value.id !== key : Option.isSome(found)) wrong++
      } else if (code === SET) {
        yield* ops.set(key, values[j], ttl)
      } else {
        const found = yield* ops.getOrFetch(key, fetchValueEffect, ttl)
        if (found === undefined || found.id !== key) wrong++
      }
      if (latencies !== undefined) latencies[i] = performance.now() - started
      if (i % BREATHE === BREATHE - 1) yield* breatheEffect
    }
  })
  const program = concurrency === 1
    ? worker
    : Effect.all(Array.from({ length: concurrency }, () => worker), { concurrency: "unbounded", discard: true })
  return Effect.runPromise(Effect.as(program, undefined)).then(() => wrong)
}

// Stampede

export interface StampedeRun {
  /** How many times the fetch ran. */
  readonly fetches: number
  /** Callers that got something other than the fetched value, or an error. */
  readonly wrong: number
  readonly errors: ReadonlyArray<string>
  /** Each caller's wait, ms, from its call to its answer. */
  readonly waits: Float64Array
}

/**
 * `callers` concurrent getOrFetch calls of `key`, started in one synchronous burst, each of whose
 * fetches sleeps `fetchMillis`. `onFetch` is called when a fetch of this process starts.
 */
export const stampede = async (
  contender: Contender,
  key: string,
  callers: number,
  fetchMillis: number,
  ttl = 3_600_000
): Promise<StampedeRun> => {
  let fetches = 0
  let wrong = 0
  const errors = new Set<string>()
  const waits = new Float64Array(callers)
  const fetch: Fetch = (k) =>
    new Promise((resolve) => {
      fetches++
      setTimeout(() => resolve(valueOf(k, 1)), fetchMillis)
    })
  const answered = (i: number, started: number) => (value: Value) => {
    waits[i] = performance.now() - started
    if (value === undefined || value.id !== key) wrong++
  }
  const failed = (i: number, started: number) => (error: unknown) => {
    waits[i] = performance.now() - started
    wrong++
    errors.add(error instanceof Error ? `${error.name}: ${error.message}` : String(error))
  }
  const api = contender.api
  if (api._tag === "promise") {
    const all: Array<Promise<void>> = []
    for (let i = 0; i < callers; i++) {
      const started = performance.now()
      let answer: Promise<Value>
      try {
        answer = Promise.resolve(api.ops.getOrFetch(key, fetch, ttl))
      } catch (error) {
        answer = Promise.reject(error)
      }
      all.push(answer.then(answered(i, started), failed(i, started)))
    }
    await Promise.all(all)
  } else {
    const fetchEffect = (k: string) => Effect.promise(() => fetch(k))
    await Effect.runPromise(Effect.forEach(
      Array.from({ length: callers }, (_, i) => i),
      (i) =>
        Effect.suspend(() => {
          const started = performance.now()
          return api.ops.getOrFetch(key, fetchEffect, ttl).pipe(
            Effect.matchEffect({
              onSuccess: (value) => Effect.sync(() => answered(i, started)(value)),
              onFailure: (error) => Effect.sync(() => failed(i, started)(error))
            })
          )
        }),
      { concurrency: "unbounded", discard: true }
    ))
  }
  return { fetches, wrong, errors: [...errors], waits }
}
