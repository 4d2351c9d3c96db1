/** The contenders of the peer comparison over a store outside the process: a Redis server, a SQLite file. */
import { Local, NearCache } from "@vela/core"
import type { Database } from "better-sqlite3"
import { Layer } from "effect"
import type { Contender, Factory, Value } from "./contenders.js"
import { naive, promiseContender, velaEffect, velaFacade } from "./contenders.js"

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

/**
 * The contenders on SQLite files in `dir`, with `synchronous` set on every file when given (otherwise
 * each library's default: Vela's is `"full"`).
 */
export const onSqlite = (dir: string, synchronous?: "full" | "normal"): ReadonlyArray<Factory> => [
  {
    name: "Vela SQLite (facade)",
    group: "sqlite",
    make: async () => {
      const { Sqlite } = await import("@vela/backend-sqlite")
      return velaFacade("Vela SQLite (facade)", "sqlite", "createCache({ backend: Sqlite.layer({ filename }) })", {
        backend: Sqlite.layer({ filename: `${dir}/vela-facade${suffixOf(synchronous)}.db`, synchronous })
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
        Local.layer.pipe(
          Layer.provide(Sqlite.layer({ filename: `${dir}/vela-effect${suffixOf(synchronous)}.db`, synchronous }))
        )
      )
    }
  },
  {
    name: "better-sqlite3 (raw)",
    group: "sqlite",
    make: async () => {
      const { close, get, set } = await rawSqlite(`${dir}/raw${suffixOf(synchronous)}.db`, synchronous)
      return promiseContender(
        "better-sqlite3 (raw)",
        "sqlite",
        "one file, WAL, prepared SELECT / upsert, JSON values, autocommit (no read-through)",
        { get, set, getOrFetch: naive(get, set) },
        close
      )
    }
  }
]

/**
 * Raw better-sqlite3 as a user would write a cache on it: one file, WAL, a table of key, JSON value
 * and expiry, prepared `SELECT` and upsert, autocommit; `synchronous` set when given.
 */
export const rawSqlite = async (filename: string, synchronous?: "full" | "normal"): Promise<{
  readonly db: Database
  readonly get: (key: string) => Value | undefined
  readonly set: (key: string, value: Value, ttl: number) => unknown
  readonly close: () => void
}> => {
  const { default: Database } = await import("better-sqlite3")
  const db = new Database(filename)
  db.pragma("journal_mode = WAL")
  if (synchronous !== undefined) db.pragma(`synchronous = ${synchronous}`)
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
  return { db, get, set, close: () => void db.close() }
}

/** Files of one `synchronous` setting get their own names. */
const suffixOf = (synchronous: string | undefined) => synchronous === undefined ? "" : `-${synchronous}`
