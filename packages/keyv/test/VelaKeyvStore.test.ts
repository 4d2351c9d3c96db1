import { Redis } from "@vela/backend-redis"
import { Sqlite } from "@vela/backend-sqlite"
import type { Topology } from "@vela/core"
import type { Cache } from "@vela/core/promise"
import { createCache } from "@vela/core/promise"
import { VelaKeyvStore } from "@vela/keyv"
import { createCache as createCacheManager } from "cache-manager"
import Keyv from "keyv"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest"
import { on, redisAvailable, startCluster, startRedis } from "./servers.js"

/** Where a case runs: what it starts once (a server, a cluster) and how it opens a cache there. */
interface Setup {
  readonly name: string
  readonly skip?: boolean
  readonly start?: () => Promise<() => Promise<void>>
  readonly open: (name: string) => Cache<unknown>
}

let redisUrl = ""
const withRedis = async () => {
  const server = await startRedis()
  redisUrl = server.url
  return server.stop
}
let nodes: ReadonlyArray<Topology.Topology["Type"]> = []
const withCluster = (kind: "Partitioned" | "Replicated") => async () => {
  const cluster = await startCluster(kind, 2)
  nodes = cluster.topologies
  return cluster.close
}

const setups: ReadonlyArray<Setup> = [
  { name: "Memory", open: (name) => createCache<unknown>({ name }) },
  { name: "Memory with a near cache", open: (name) => createCache<unknown>({ name, nearCache: true }) },
  {
    name: "SQLite file",
    open: (name) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vela-keyv-"))
      return createCache<unknown>({ name, backend: Sqlite.layer({ filename: path.join(dir, "cache.db") }) })
    }
  },
  {
    name: "Redis",
    skip: !redisAvailable,
    start: withRedis,
    open: (name) => createCache<unknown>({ name, backend: Redis.layer({ url: redisUrl }) })
  },
  {
    name: "a near cache over Redis",
    skip: !redisAvailable,
    start: withRedis,
    open: (name) => createCache<unknown>({ name, backend: Redis.layer({ url: redisUrl }), nearCache: true })
  },
  {
    name: "Partitioned (2 nodes)",
    start: withCluster("Partitioned"),
    open: (name) => createCache<unknown>({ name, topology: on(nodes[0]) })
  },
  {
    name: "Replicated (2 nodes)",
    start: withCluster("Replicated"),
    open: (name) => createCache<unknown>({ name, topology: on(nodes[0]) })
  }
]

// Every case opens a cache of its own name: the Redis server and the clusters outlive a case.
let opened = 0
const fresh = () => `keyv-${++opened}`

describe.each(setups)("VelaKeyvStore on $name", ({ open, skip, start }) => {
  let store: VelaKeyvStore
  let stop: (() => Promise<void>) | undefined
  beforeAll(async () => {
    if (!skip) stop = await start?.()
  }, 30_000)
  afterAll(() => stop?.())
  beforeEach(({ skip: skipCase }) => {
    if (skip) return skipCase()
    store = new VelaKeyvStore(open(fresh()))
  })
  afterEach(async () => {
    vi.useRealTimers()
    await store?.disconnect()
  })

  it("keeps what Keyv sets, and deletes, checks and reads in batches", async () => {
    const keyv = new Keyv({ store, throwOnErrors: true })
    expect(await keyv.set("a", { n: 1 })).toBe(true)
    await keyv.set("b", [1, "two", null])
    expect(await keyv.get("a")).toEqual({ n: 1 })
    expect(await keyv.get("missing")).toBeUndefined()
    expect(await keyv.has("a")).toBe(true)
    expect(await keyv.hasMany(["a", "missing", "b"])).toEqual([true, false, true])
    expect(await keyv.getMany(["a", "missing", "b"])).toEqual([{ n: 1 }, undefined, [1, "two", null]])
    expect(await keyv.delete("a")).toBe(true)
    expect(await keyv.delete("a")).toBe(false)
    expect(await keyv.has("a")).toBe(false)
    await keyv.setMany([{ key: "c", value: 3 }, { key: "d", value: 4, ttl: 60_000 }])
    expect(await keyv.deleteMany(["b", "c"])).toBe(true)
    expect(await keyv.deleteMany(["b", "c"])).toBe(false)
    expect(await keyv.getMany(["b", "c", "d"])).toEqual([undefined, undefined, 4])
    expect(await store.cache.size()).toBe(1)
  })

  it("expires an entry with the TTL Keyv gives, in Keyv and in the cache", async () => {
    vi.useFakeTimers({ toFake: ["Date"] })
    const keyv = new Keyv({ store, throwOnErrors: true })
    await keyv.set("short", "v", 1_000)
    await keyv.set("long", "v")
    // Keyv prefixes keys with its namespace, "keyv" unless told otherwise.
    expect(await store.cache.exists("keyv:short")).toBe(true)
    vi.setSystemTime(Date.now() + 1_001)
    expect(await store.cache.exists("keyv:short")).toBe(false)
    expect(await keyv.get("short")).toBeUndefined()
    expect(await keyv.get("long")).toBe("v")
  })

  it("clears only its own namespace", async () => {
    const users = new Keyv({ store, namespace: "users" })
    const posts = new Keyv({ store: new VelaKeyvStore(store.cache), namespace: "posts" })
    await users.set("1", "alice")
    await posts.set("1", "hello")
    await users.clear()
    expect(await users.get("1")).toBeUndefined()
    expect(await posts.get("1")).toBe("hello")
  })

  it("runs cache-manager: set, get, ttl, wrap with one call of the function, mget, mset, mdel, del, clear", async () => {
    const manager = createCacheManager({ stores: [new Keyv({ store })] })
    const before = Date.now()
    await manager.set("user", { name: "alice" }, 60_000)
    expect(await manager.get("user")).toEqual({ name: "alice" })
    const expires = await manager.ttl("user")
    expect(expires).toBeGreaterThanOrEqual(before + 60_000)
    expect(expires).toBeLessThanOrEqual(Date.now() + 60_000)
    let calls = 0
    const load = async () => {
      calls++
      return "loaded"
    }
    expect(await manager.wrap("lazy", load, 60_000)).toBe("loaded")
    expect(await manager.wrap("lazy", load, 60_000)).toBe("loaded")
    expect(calls).toBe(1)
    expect(await manager.mget(["user", "lazy", "none"])).toEqual([{ name: "alice" }, "loaded", undefined])
    await manager.mset([{ key: "x", value: 1 }, { key: "y", value: 2, ttl: 60_000 }])
    expect(await manager.mget(["x", "y"])).toEqual([1, 2])
    await manager.mdel(["x", "y"])
    expect(await manager.mget(["x", "y"])).toEqual([undefined, undefined])
    await manager.del("user")
    expect(await manager.get("user")).toBeUndefined()
    await manager.clear()
    expect(await manager.get("lazy")).toBeUndefined()
    expect(await store.cache.size()).toBe(0)
  })

  it("reports a TTL the cache refuses as Keyv's error, and writes nothing", async () => {
    const keyv = new Keyv({ store, throwOnErrors: true })
    await expect(keyv.set("k", "v", Number.NaN)).rejects.toMatchObject({ name: "ConfigError", field: "ttl" })
    expect(await store.cache.size()).toBe(0)
  })
})

/** Polls `check` every 20 ms for up to five seconds (Replicated's writes reach the other node in the background). */
const eventually = async (check: () => Promise<void>) => {
  const deadline = Date.now() + 5_000
  for (;;) {
    try {
      return await check()
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}

describe.each(["Partitioned", "Replicated"] as const)("Keyv on two %s nodes", (kind) => {
  it("reads on one node what Keyv and cache-manager write on the other, and clears on both", async () => {
    const cluster = await startCluster(kind, 2)
    const [a, b] = cluster.topologies.map((topology) =>
      new Keyv({ store: new VelaKeyvStore(createCache<unknown>({ name: "shared", topology: on(topology) })) })
    )
    try {
      const keys = Array.from({ length: 20 }, (_, i) => `k${i}`)
      await a.setMany(keys.map((key, i) => ({ key, value: { i } })))
      await eventually(async () => {
        expect(await b.getMany(keys)).toEqual(keys.map((_, i) => ({ i })))
      })
      await createCacheManager({ stores: [b] }).set("from-b", "hello", 60_000)
      await eventually(async () => {
        expect(await a.get("from-b")).toBe("hello")
      })
      await a.clear()
      await eventually(async () => {
        expect(await b.getMany([...keys, "from-b"])).toEqual([...keys, "from-b"].map(() => undefined))
      })
    } finally {
      await Promise.all([a.disconnect(), b.disconnect()])
      await cluster.close()
    }
  }, 30_000)
})
