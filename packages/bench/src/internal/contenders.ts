/**
 * The contenders of the peer comparison behind one interface: `get` (undefined on a miss), `set`
 * with a TTL, and `getOrFetch`. Each peer is used the way its own README shows (its own
 * read-through call where it has one: lru-cache's `fetch` with a `fetchMethod`, cache-manager's
 * `wrap`, cacheable's `getOrSet`, bentocache's `getOrSet`, Effect `Cache`'s `lookup`); peers
 * without one get the read-through a user would write (get, fetch on a miss, set), which runs the
 * fetch once per caller. Promise contenders are awaited once per call; Effect contenders run in
 * fibers. `check` verifies a contender's answers before it is timed.
 */
import type { Topology } from "@vela/core"
import { Vela } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Effect, Exit, Layer, Option, Scope } from "effect"

/** The value every contender stores: a small object, about 40 bytes of JSON. */
export interface Value {
  readonly id: string
  readonly n: number
}

export const valueOf = (key: string, n: number): Value => ({ id: key, n })

export type Group = "in-process" | "redis" | "sqlite"

/** A fetch that answers the value of a key. */
export type Fetch = (key: string) => Promise<Value>

export interface PromiseOps {
  readonly get: (key: string) => Value | undefined | PromiseLike<Value | undefined>
  readonly set: (key: string, value: Value, ttlMillis: number) => unknown
  readonly getOrFetch: (key: string, fetch: Fetch, ttlMillis: number) => Value | PromiseLike<Value>
}

export interface EffectOps {
  readonly get: (key: string) => Effect.Effect<Option.Option<Value>, unknown>
  readonly set: (key: string, value: Value, ttlMillis: number) => Effect.Effect<unknown, unknown>
  readonly getOrFetch: (
    key: string,
    fetch: (key: string) => Effect.Effect<Value>,
    ttlMillis: number
  ) => Effect.Effect<Value, unknown>
}

export interface Contender {
  readonly name: string
  readonly group: Group
  /** A lower bound that is not a cache (a bare Map): shown, never the "fastest". */
  readonly floor?: boolean | undefined
  /** How the peer is used, for the report. */
  readonly usage: string
  readonly api:
    | { readonly _tag: "promise"; readonly ops: PromiseOps }
    | { readonly _tag: "effect"; readonly ops: EffectOps }
  readonly close: () => Promise<void>
}

/** A contender that could not be built, with the reason (a missing package, a failed import). */
export interface Unavailable {
  readonly name: string
  readonly reason: string
}

/** Builds a contender; every factory here is async so that optional packages are imported lazily. */
export interface Factory {
  readonly name: string
  readonly group: Group
  readonly make: () => Promise<Contender>
}

export const HOUR = 3_600_000

/** The read-through a user writes around a cache without one: every concurrent miss fetches. */
export const naive = (
  get: (key: string) => Value | undefined | PromiseLike<Value | undefined>,
  set: (key: string, value: Value, ttlMillis: number) => unknown
) =>
async (key: string, fetch: Fetch, ttlMillis: number): Promise<Value> => {
  const found = await get(key)
  if (found !== undefined) return found
  const value = await fetch(key)
  await set(key, value, ttlMillis)
  return value
}

export const promiseContender = (
  name: string,
  group: Group,
  usage: string,
  ops: PromiseOps,
  close: () => unknown,
  floor = false
): Contender => ({
  name,
  group,
  usage,
  floor,
  api: { _tag: "promise", ops },
  close: async () => {
    await close()
  }
})

/** A Vela cache of the Effect API on `topology`, built in `scope` and open until it closes. */
export const openCache = (
  scope: Scope.Scope,
  topology: Layer.Layer<Topology.Topology, unknown>,
  config: Vela.Config<Value, Value> & { readonly name: string }
): Promise<Vela.Cache<Value>> =>
  Effect.runPromise(
    Effect.flatMap(
      Layer.buildWithScope(topology, scope),
      (context) =>
        Vela.make<Value, Value>(config).pipe(Effect.provide(context), Effect.provideService(Scope.Scope, scope))
    )
  )

/** A Vela cache of the Effect API on `topology`, kept open in a scope of its own (closed by `close`). */
export const velaEffect = async (
  name: string,
  group: Group,
  usage: string,
  topology: Layer.Layer<Topology.Topology, unknown>,
  config: Vela.Config<Value, Value> = {}
): Promise<Contender> => {
  const scope = Effect.runSync(Scope.make())
  try {
    const cache = await openCache(scope, topology, { defaultTtl: HOUR, ...config, name: `bench-${slug(name)}` })
    const options = new Map<number, Vela.PutOptions>()
    const ttl = (millis: number) => {
      let found = options.get(millis)
      if (found === undefined) options.set(millis, found = { ttl: millis })
      return found
    }
    return {
      name,
      group,
      usage,
      api: {
        _tag: "effect",
        ops: {
          get: (key) => cache.getOption(key),
          set: (key, value, millis) => cache.put(key, value, ttl(millis)),
          getOrFetch: (key, fetch, millis) => cache.getOrFetch(key, fetch, ttl(millis))
        }
      },
      close: () => Effect.runPromise(Scope.close(scope, Exit.void))
    }
  } catch (error) {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    throw error
  }
}

/** A Vela cache of the Promise facade. */
export const velaFacade = (
  name: string,
  group: Group,
  usage: string,
  options: Parameters<typeof createCache<Value>>[0] = {}
): Contender => {
  const cache = createCache<Value>({ defaultTtl: HOUR, ...options, name: `bench-${slug(name)}` })
  const puts = new Map<number, Vela.PutOptions>()
  const ttl = (millis: number) => {
    let found = puts.get(millis)
    if (found === undefined) puts.set(millis, found = { ttl: millis })
    return found
  }
  return promiseContender(name, group, usage, {
    get: (key) => cache.get(key),
    set: (key, value, millis) => cache.put(key, value, ttl(millis)),
    getOrFetch: (key, fetch, millis) => cache.getOrFetch(key, fetch, ttl(millis))
  }, () => cache.close())
}

const slug = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, "-")

// Checks

/**
 * Checks a contender before it is timed: a value it was given reads back equal, a missing key
 * reads as a miss, getOrFetch of a missing key runs the fetch once and returns its value, and of a
 * present key does not run it. Returns what was wrong, or `undefined`.
 */
export const check = async (contender: Contender): Promise<string | undefined> => {
  const stamp = `check:${Date.now()}:${Math.random()}`
  const key = `${stamp}:a`
  const value = valueOf(key, 42)
  let fetches = 0
  const fetch: Fetch = async (k) => {
    fetches++
    return valueOf(k, 7)
  }
  const same = (a: Value | undefined, b: Value) => a !== undefined && a.id === b.id && a.n === b.n
  try {
    const api = callable(contender)
    await api.set(key, value, HOUR)
    const read = await api.get(key)
    if (!same(read, value)) return `get after set returned ${JSON.stringify(read)}`
    const missing = await api.get(`${stamp}:missing`)
    if (missing !== undefined) return `get of a missing key returned ${JSON.stringify(missing)}`
    const fetched = await api.getOrFetch(`${stamp}:b`, fetch, HOUR)
    if (!same(fetched, valueOf(`${stamp}:b`, 7)) || fetches !== 1) {
      return `getOrFetch of a missing key returned ${JSON.stringify(fetched)} after ${fetches} fetches`
    }
    const again = await api.getOrFetch(`${stamp}:b`, fetch, HOUR)
    if (!same(again, valueOf(`${stamp}:b`, 7)) || fetches !== 1) {
      return `getOrFetch of a cached key returned ${JSON.stringify(again)} after ${fetches} fetches`
    }
    const hit = await api.getOrFetch(key, fetch, HOUR)
    if (!same(hit, value) || fetches !== 1) return `getOrFetch of a set key returned ${JSON.stringify(hit)}`
    return undefined
  } catch (error) {
    return `threw ${error instanceof Error ? error.message : String(error)}`
  }
}

/** A contender's operations as plain Promises (Effect contenders run one `runPromise` per call): for checks and setup. */
export const callable = (contender: Contender): {
  readonly get: (key: string) => Promise<Value | undefined>
  readonly set: (key: string, value: Value, ttl: number) => Promise<unknown>
  readonly getOrFetch: (key: string, fetch: Fetch, ttl: number) => Promise<Value>
} => {
  const api = contender.api
  if (api._tag === "promise") {
    return {
      get: async (key) => api.ops.get(key),
      set: async (key, value, ttl) => api.ops.set(key, value, ttl),
      getOrFetch: async (key, fetch, ttl) => api.ops.getOrFetch(key, fetch, ttl)
    }
  }
  return {
    get: (key) => Effect.runPromise(Effect.map(api.ops.get(key), Option.getOrUndefined)),
    set: (key, value, ttl) => Effect.runPromise(api.ops.set(key, value, ttl)),
    getOrFetch: (key, fetch, ttl) =>
      Effect.runPromise(api.ops.getOrFetch(key, (k) => Effect.promise(() => fetch(k)), ttl))
  }
}

/** Builds each factory; those that fail to build are reported, not fatal. */
export const build = async (
  factories: ReadonlyArray<Factory>
): Promise<{ contenders: Array<Contender>; unavailable: Array<Unavailable> }> => {
  const contenders: Array<Contender> = []
  const unavailable: Array<Unavailable> = []
  for (const factory of factories) {
    try {
      contenders.push(await factory.make())
    } catch (error) {
      unavailable.push({ name: factory.name, reason: error instanceof Error ? error.message : String(error) })
    }
  }
  return { contenders, unavailable }
}
