/**
 * The contenders of the peer comparison behind one interface: `get` (undefined on a miss), `set`
 * with a TTL, and `getOrFetch`. Each peer is used the way its own README shows (its own
 * read-through call where it has one: lru-cache's `fetch` with a `fetchMethod`, cache-manager's
 * `wrap`, cacheable's `getOrSet`, bentocache's `getOrSet`, Effect `Cache`'s `lookup`); peers
 * without one get the read-through a user would write (get, fetch on a miss, set), which runs the
 * fetch once per caller. Promise contenders are awaited once per call; Effect contenders run in
 * fibers. `check` verifies a contender's answers before it is timed.
 */
import TTLCache from "@isaacs/ttlcache"
import type { Topology } from "@vela/core"
import { Local, Memory, NearCache, Vela } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Cache, Duration, Effect, Exit, Layer, Option, Scope } from "effect"
import { LRUCache } from "lru-cache"
import NodeCache from "node-cache"

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

const HOUR = 3_600_000

/** The read-through a user writes around a cache without one: every concurrent miss fetches. */
const naive = (
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

const promiseContender = (
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
const velaFacade = (
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

// In-process

/** The in-process contenders, in the order of the tables. `capacity` bounds the caches that need a bound. */
export const inProcess = (capacity: number): ReadonlyArray<Factory> => [
  {
    name: "Vela (facade)",
    group: "in-process",
    make: async () => velaFacade("Vela (facade)", "in-process", "createCache() (Memory, Local): get / put / getOrFetch")
  },
  {
    name: "Vela (Effect)",
    group: "in-process",
    make: () =>
      velaEffect(
        "Vela (Effect)",
        "in-process",
        "Vela.make on Local + Memory, run in fibers: getOption / put / getOrFetch",
        Local.layer.pipe(Layer.provide(Memory.layer()))
      )
  },
  {
    name: "lru-cache",
    group: "in-process",
    make: async () => {
      const lru = new LRUCache<string, Value, Fetch>({
        max: capacity,
        ttl: HOUR,
        fetchMethod: (key, _stale, { context }) => context(key)
      })
      return promiseContender("lru-cache", "in-process", "new LRUCache({ max, ttl, fetchMethod }): get / set / fetch", {
        get: (key) => lru.get(key),
        set: (key, value, ttl) => lru.set(key, value, { ttl }),
        getOrFetch: (key, fetch) => lru.fetch(key, { context: fetch }) as Promise<Value>
      }, () => lru.clear())
    }
  },
  {
    name: "@isaacs/ttlcache",
    group: "in-process",
    make: async () => {
      const cache = new TTLCache<string, Value>({ max: capacity, ttl: HOUR })
      const get = (key: string) => cache.get(key)
      const set = (key: string, value: Value, ttl: number) => cache.set(key, value, { ttl })
      return promiseContender(
        "@isaacs/ttlcache",
        "in-process",
        "new TTLCache({ max, ttl }): get / set (no read-through)",
        {
          get,
          set,
          getOrFetch: naive(get, set)
        },
        () => cache.clear()
      )
    }
  },
  {
    name: "node-cache",
    group: "in-process",
    make: async () => {
      const cache = new NodeCache({ stdTTL: HOUR / 1000 })
      const get = (key: string) => cache.get<Value>(key)
      const set = (key: string, value: Value, ttl: number) => cache.set(key, value, ttl / 1000)
      return promiseContender(
        "node-cache",
        "in-process",
        "new NodeCache({ stdTTL }) (default useClones: values are copied): get / set (no async read-through)",
        { get, set, getOrFetch: naive(get, set) },
        () => cache.close()
      )
    }
  },
  {
    name: "cache-manager",
    group: "in-process",
    make: async () => {
      const { createCache: createManager } = await import("cache-manager")
      const cache = createManager({ ttl: HOUR })
      return promiseContender(
        "cache-manager",
        "in-process",
        "createCache({ ttl }) (default Keyv memory store): get / set / wrap",
        {
          get: (key) => cache.get<Value>(key),
          set: (key, value, ttl) => cache.set(key, value, ttl),
          getOrFetch: (key, fetch, ttl) => cache.wrap(key, () => fetch(key), ttl)
        },
        () => cache.disconnect()
      )
    }
  },
  {
    name: "cacheable",
    group: "in-process",
    make: async () => {
      const { Cacheable } = await import("cacheable")
      const cache = new Cacheable({ ttl: HOUR })
      return promiseContender(
        "cacheable",
        "in-process",
        "new Cacheable({ ttl }) (default memory primary): get / set / getOrSet",
        {
          get: (key) => cache.get<Value>(key),
          set: (key, value, ttl) => cache.set(key, value, ttl),
          getOrFetch: (key, fetch, ttl) => cache.getOrSet(key, () => fetch(key), { ttl }) as Promise<Value>
        },
        () => cache.disconnect()
      )
    }
  },
  {
    name: "bentocache (memory)",
    group: "in-process",
    make: async () => {
      const { BentoCache, bentostore } = await import("bentocache")
      const { memoryDriver } = await import("bentocache/drivers/memory")
      const bento = new BentoCache({
        default: "cache",
        stores: { cache: bentostore().useL1Layer(memoryDriver({ maxItems: capacity })) }
      })
      return promiseContender(
        "bentocache (memory)",
        "in-process",
        "bentostore().useL1Layer(memoryDriver({ maxItems })) (default serialize): get / set / getOrSet",
        {
          get: (key) => bento.get<Value | undefined>({ key }),
          set: (key, value, ttl) => bento.set({ key, value, ttl }),
          getOrFetch: (key, fetch, ttl) => bento.getOrSet({ key, factory: () => fetch(key), ttl })
        },
        () => bento.disconnectAll()
      )
    }
  },
  {
    name: "Effect Cache",
    group: "in-process",
    make: async () => {
      // `lookup` is fixed when the cache is made; getOrFetch hands it the caller's fetch.
      let current: (key: string) => Effect.Effect<Value> = (key) => Effect.succeed(valueOf(key, -1))
      const cache = Effect.runSync(Cache.make({
        capacity,
        timeToLive: Duration.hours(1),
        lookup: (key: string) => current(key)
      }))
      return {
        name: "Effect Cache",
        group: "in-process",
        usage: "Cache.make({ capacity, timeToLive, lookup }), in fibers: getOption / set / get (lookup)",
        api: {
          _tag: "effect",
          ops: {
            get: (key) => cache.getOption(key),
            set: (key, value) => cache.set(key, value),
            getOrFetch: (key, fetch) => {
              current = fetch
              return cache.get(key)
            }
          }
        },
        close: () => Effect.runPromise(cache.invalidateAll)
      }
    }
  },
  {
    name: "Map (floor)",
    group: "in-process",
    make: async () => {
      const map = new Map<string, Value>()
      const get = (key: string) => map.get(key)
      const set = (key: string, value: Value) => map.set(key, value)
      return promiseContender(
        "Map (floor)",
        "in-process",
        "a bare Map, no TTL, no bound: the floor",
        {
          get,
          set,
          getOrFetch: naive(get, set)
        },
        () => map.clear(),
        true
      )
    }
  }
]

// Remote

/** The contenders on a Redis server at `url`; each uses its own key prefix. */
export const onRedis = (url: string, capacity: number): ReadonlyArray<Factory> => [
  {
    name: "Vela Redis (facade)",
    group: "redis",
    make: async () => {
      const { Redis } = await import("@vela/backend-redis")
      return velaFacade("Vela Redis (facade)", "redis", "createCache({ backend: Redis.layer({ url, prefix }) })", {
        backend: Redis.layer({ url, prefix: "vf:" })
      })
    }
  },
  {
    name: "Vela Redis (Effect)",
    group: "redis",
    make: async () => {
      const { Redis } = await import("@vela/backend-redis")
      return velaEffect(
        "Vela Redis (Effect)",
        "redis",
        "Vela.make on Local + Redis.layer({ url, prefix }), in fibers",
        Local.layer.pipe(Layer.provide(Redis.layer({ url, prefix: "ve:" })))
      )
    }
  },
  {
    name: "Vela near+Redis (facade)",
    group: "redis",
    make: async () => {
      const { Redis } = await import("@vela/backend-redis")
      return velaFacade(
        "Vela near+Redis (facade)",
        "redis",
        "createCache({ backend: Redis.layer(…), nearCache: { ttl: 60 s, maxSize } })",
        { backend: Redis.layer({ url, prefix: "vn:" }), nearCache: { ttl: 60_000, maxSize: capacity } }
      )
    }
  },
  {
    name: "Vela near+Redis (Effect)",
    group: "redis",
    make: async () => {
      const { Redis } = await import("@vela/backend-redis")
      return velaEffect(
        "Vela near+Redis (Effect)",
        "redis",
        "Vela.make on NearCache.layer({ ttl: 60 s, maxSize }) + Local + Redis.layer(…), in fibers",
        NearCache.layer({ ttl: "60 seconds", maxSize: capacity }).pipe(
          Layer.provide(Local.layer),
          Layer.provide(Redis.layer({ url, prefix: "vne:" }))
        )
      )
    }
  },
  { name: "ioredis (raw)", group: "redis", make: () => ioredis(url, "ioredis (raw)", true) },
  {
    name: "bentocache (redis)",
    group: "redis",
    make: async () => bento(url, "bentocache (redis)", false, capacity)
  },
  {
    name: "bentocache (memory+redis)",
    group: "redis",
    make: async () => bento(url, "bentocache (memory+redis)", true, capacity)
  }
]

/** Raw ioredis, GET + JSON.parse / SET PX: with auto-pipelining (the strongest client), or as `new Redis(url)` gives it. */
export const ioredis = async (url: string, name: string, autoPipelining: boolean): Promise<Contender> => {
  const { Redis } = await import("ioredis")
  const redis = new Redis(url, { enableAutoPipelining: autoPipelining })
  const get = (key: string) =>
    redis.get(`raw:${key}`).then((text) => text === null ? undefined : JSON.parse(text) as Value)
  const set = (key: string, value: Value, ttl: number) => redis.set(`raw:${key}`, JSON.stringify(value), "PX", ttl)
  return promiseContender(
    name,
    "redis",
    `new Redis(url${
      autoPipelining ? ", { enableAutoPipelining: true }" : ""
    }): GET + JSON.parse / SET PX (no read-through)`,
    { get, set, getOrFetch: naive(get, set) },
    () => redis.quit()
  )
}

/** bentocache on Redis: L2 only, or the two-tier mode (memory L1 + Redis L2 + Redis bus). */
export const bento = async (url: string, name: string, twoTier: boolean, capacity: number): Promise<Contender> => {
  const { BentoCache, bentostore } = await import("bentocache")
  const { redisBusDriver, redisDriver } = await import("bentocache/drivers/redis")
  const { memoryDriver } = await import("bentocache/drivers/memory")
  const { Redis } = await import("ioredis")
  const connection = new Redis(url)
  const store = twoTier
    ? bentostore()
      .useL1Layer(memoryDriver({ maxItems: capacity }))
      .useL2Layer(redisDriver({ connection }))
      .useBus(redisBusDriver({ connection: { host: new URL(url).hostname, port: Number(new URL(url).port) } }))
    : bentostore().useL2Layer(redisDriver({ connection }))
  const cache = new BentoCache({ default: "cache", prefix: twoTier ? "b2" : "b1", stores: { cache: store } })
  return promiseContender(
    name,
    "redis",
    twoTier
      ? "bentostore().useL1Layer(memoryDriver).useL2Layer(redisDriver).useBus(redisBusDriver): get / set / getOrSet"
      : "bentostore().useL2Layer(redisDriver({ connection })): get / set / getOrSet",
    {
      get: (key) => cache.get<Value | undefined>({ key }),
      set: (key, value, ttl) => cache.set({ key, value, ttl }),
      getOrFetch: (key, fetch, ttl) => cache.getOrSet({ key, factory: () => fetch(key), ttl })
    },
    async () => {
      await cache.disconnectAll()
      connection.disconnect()
    }
  )
}

/** The contenders on SQLite files in `dir`. */
export const onSqlite = (dir: string): ReadonlyArray<Factory> => [
  {
    name: "Vela SQLite (facade)",
    group: "sqlite",
    make: async () => {
      const { Sqlite } = await import("@vela/backend-sqlite")
      return velaFacade("Vela SQLite (facade)", "sqlite", "createCache({ backend: Sqlite.layer({ filename }) })", {
        backend: Sqlite.layer({ filename: `${dir}/vela-facade.db` })
      })
    }
  },
  {
    name: "Vela SQLite (Effect)",
    group: "sqlite",
    make: async () => {
      const { Sqlite } = await import("@vela/backend-sqlite")
      return velaEffect(
        "Vela SQLite (Effect)",
        "sqlite",
        "Vela.make on Local + Sqlite.layer({ filename }), in fibers",
        Local.layer.pipe(Layer.provide(Sqlite.layer({ filename: `${dir}/vela-effect.db` })))
      )
    }
  },
  {
    name: "better-sqlite3 (raw)",
    group: "sqlite",
    make: async () => {
      const { default: Database } = await import("better-sqlite3")
      const db = new Database(`${dir}/raw.db`)
      db.pragma("journal_mode = WAL")
      db.exec("CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER)")
      const select = db.prepare<[string], { value: string; expires_at: number | null }>(
        "SELECT value, expires_at FROM cache WHERE key = ?"
      )
      const upsert = db.prepare<[string, string, number]>(
        "INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
      )
      const get = (key: string) => {
        const row = select.get(key)
        if (row === undefined || (row.expires_at !== null && row.expires_at <= Date.now())) return undefined
        return JSON.parse(row.value) as Value
      }
      const set = (key: string, value: Value, ttl: number) => upsert.run(key, JSON.stringify(value), Date.now() + ttl)
      return promiseContender(
        "better-sqlite3 (raw)",
        "sqlite",
        "one file, WAL, prepared SELECT / upsert, JSON values, autocommit (no read-through)",
        { get, set, getOrFetch: naive(get, set) },
        () => db.close()
      )
    }
  }
]

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
