/** cluster_bench's keys, values and workloads, and the ways a program calls a cache, as Drive contenders. */
import type { Vela } from "@vela/core"
import { Topology } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Effect, Layer, Scope } from "effect"
import type { Contender, Value } from "./contenders.js"
import * as Drive from "./drive.js"
import { full } from "./measure.js"

export const KEYS = 10_000
export const DRAWS = 100_000
export const TTL = 3_600_000
export const PEERS = 2
export const CONCURRENCY = [1, 64] as const
export const TIMING = { targetMs: full ? 1_000 : 150, rounds: full ? 5 : 3, firstOps: 500, maxOps: 1_000_000 }

/** Key i's value: about 65 bytes of JSON, with the key as `id` for Drive's check of every answer. */
export const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`)
export const values: ReadonlyArray<Value> = keys.map((id, i) => ({
  id,
  n: i % 90,
  name: `User number ${i}`,
  active: i % 2 === 0
}))
export const allKeys = keys.map((_, i) => i)

/** `DRAWS` steps of `code` on keys drawn uniformly from `pool` (indices of `keys`). */
export const drawn = (code: number, pool: ReadonlyArray<number>, seed: number): Drive.Workload => {
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
export const inFibers = (cache: Vela.Cache<Value>) =>
  contender("fibers", {
    _tag: "effect",
    ops: {
      get: (key) => Effect.asSome(cache.get(key)),
      set: (key, value) => cache.put(key, value),
      getOrFetch: (key, fetch) => cache.getOrFetch(key, fetch)
    }
  })

/** One `Effect.runPromise` per call, awaited. */
export const runPromisePerCall = (cache: Vela.Cache<Value>) =>
  contender("runPromise per call", {
    _tag: "promise",
    ops: {
      get: (key) => Effect.runPromise(cache.get(key)),
      set: (key, value) => Effect.runPromise(cache.put(key, value)),
      getOrFetch: (key, fetch) => Effect.runPromise(cache.getOrFetch(key, (k) => Effect.promise(() => fetch(k))))
    }
  })

/** The Promise facade on `topology`, on the namespace of the Effect caches (so it reads what they wrote). */
export const facade = (scope: Scope.Scope, topology: Topology.Topology["Type"]) => {
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
export const onClose = (scope: Scope.Scope, f: () => Promise<unknown>) =>
  Effect.runSync(Scope.addFinalizer(scope, Effect.promise(() => f().catch(() => {}))))
