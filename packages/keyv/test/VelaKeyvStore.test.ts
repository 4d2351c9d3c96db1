import { Sqlite } from "@vela/backend-sqlite"
import { createCache } from "@vela/core/promise"
import { VelaKeyvStore } from "@vela/keyv"
import { createCache as createCacheManager } from "cache-manager"
import Keyv from "keyv"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"

const backends = [
  { name: "Memory", open: () => createCache<unknown>({ name: "keyv" }) },
  { name: "Memory with a near cache", open: () => createCache<unknown>({ name: "keyv", nearCache: true }) },
  {
    name: "SQLite file",
    open: () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vela-keyv-"))
      return createCache<unknown>({ name: "keyv", backend: Sqlite.layer({ filename: path.join(dir, "cache.db") }) })
    }
  }
]

describe.each(backends)("VelaKeyvStore on $name", ({ open }) => {
  let store: VelaKeyvStore
  beforeEach(() => {
    store = new VelaKeyvStore(open())
  })
  afterEach(async () => {
    vi.useRealTimers()
    await store.disconnect()
  })

  it("keeps what Keyv sets, and deletes, checks and reads in batches", async () => {
    const keyv = new Keyv({ store, throwOnErrors: true })
    expect(await keyv.set("a", { n: 1 })).toBe(true)
    await keyv.set("b", [1, "two", null])
    expect(await keyv.get("a")).toEqual({ n: 1 })
    expect(await keyv.get("missing")).toBeUndefined()
    expect(await keyv.has("a")).toBe(true)
    expect(await keyv.getMany(["a", "missing", "b"])).toEqual([{ n: 1 }, undefined, [1, "two", null]])
    expect(await keyv.delete("a")).toBe(true)
    expect(await keyv.delete("a")).toBe(false)
    expect(await keyv.has("a")).toBe(false)
    await keyv.setMany([{ key: "c", value: 3 }, { key: "d", value: 4, ttl: 60_000 }])
    expect(await keyv.deleteMany(["b", "c"])).toBe(true)
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

  it("runs cache-manager: set, get, wrap with one call of the function, mget, del, clear", async () => {
    const manager = createCacheManager({ stores: [new Keyv({ store })] })
    await manager.set("user", { name: "alice" }, 60_000)
    expect(await manager.get("user")).toEqual({ name: "alice" })
    let calls = 0
    const load = async () => {
      calls++
      return "loaded"
    }
    expect(await manager.wrap("lazy", load, 60_000)).toBe("loaded")
    expect(await manager.wrap("lazy", load, 60_000)).toBe("loaded")
    expect(calls).toBe(1)
    expect(await manager.mget(["user", "lazy", "none"])).toEqual([{ name: "alice" }, "loaded", undefined])
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
