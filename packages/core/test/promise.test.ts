import { describe, expect, it } from "@effect/vitest"
import { Backend, Memory, NearCache, Topology } from "@vela/core"
import type { TelemetryEvent } from "@vela/core/promise"
import { CacheClosed, CodecError, ConfigError, createCache, InvalidKey, NotFound } from "@vela/core/promise"
import { Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A Memory store seen as a remote one (no synchronous reads), with `change` applied to it. */
/** A Memory store seen as a remote one: no synchronous view, every operation an Effect. */
const remoteTopology = (
  change: (store: Backend.Store) => Partial<Pick<Backend.Store, "get" | "getMany">> = () => ({})
) =>
  Layer.effect(
    Topology.Topology,
    Effect.map(Memory.make(), (backend) =>
      Topology.Topology.of({
        name: "remote",
        open: (options) =>
          Effect.map(backend.open(options), (store) =>
            Backend.makeStore({
              get: store.get,
              has: store.has,
              set: store.set,
              delete: store.delete,
              invalidateTag: store.invalidateTag,
              clear: store.clear,
              size: store.size,
              sweep: store.sweep,
              ...change(store)
            }))
      }))
  )

describe("createCache", () => {
  it("puts, gets, deletes, counts and flushes", async () => {
    await using cache = createCache<{ name: string } | null | number>({ name: "users" })
    await cache.put("u1", { name: "Alice" }, { tags: ["users"] })
    await cache.put("u2", null, { tags: ["users"] })
    await cache.put("n", 0)
    expect(await cache.get("u1")).toEqual({ name: "Alice" })
    expect(await cache.get("u2")).toBeNull()
    expect(await cache.get("missing")).toBeUndefined()
    expect(await cache.exists("n")).toBe(true)
    expect(await cache.size()).toBe(3)
    expect(await cache.invalidateTag("users")).toBe(2)
    await cache.delete("n")
    expect(await cache.size()).toBe(0)
    await cache.put("x", 1)
    await cache.flush()
    expect(await cache.exists("x")).toBe(false)
    const stats = await cache.stats()
    expect([stats.hits, stats.misses, stats.writes, stats.deletes]).toEqual([2, 1, 4, 3])
  })

  it("expires entries by ttl on the real clock", async () => {
    await using cache = createCache<string>({ defaultTtl: 30 })
    await cache.put("short", "v")
    await cache.put("long", "v", { ttl: "1 minute" })
    await sleep(60)
    expect(await cache.get("short")).toBeUndefined()
    expect(await cache.get("long")).toBe("v")
  })

  it("rejects with Error subclasses that carry the tagged errors' names and fields", async () => {
    await using cache = createCache<string>()
    const notFound = await cache.getOrThrow("nope").catch((e: unknown) => e)
    expect(notFound).toBeInstanceOf(Error)
    expect(notFound).toBeInstanceOf(NotFound)
    expect(notFound).toMatchObject({ name: "NotFound", _tag: "NotFound", key: "nope" })
    const invalid = await cache.get("").catch((e: unknown) => e)
    expect(invalid).toBeInstanceOf(InvalidKey)
    expect(invalid).toMatchObject({ name: "InvalidKey", key: "" })
    const badTtl = await cache.put("k", "v", { ttl: 0 }).catch((e: unknown) => e)
    expect(badTtl).toBeInstanceOf(ConfigError)
    expect(badTtl).toMatchObject({ field: "ttl" })
    expect(() => createCache({ maxSize: -1 })).toThrow(ConfigError)
  })

  it("runs one fetch for 1,000 concurrent callers of a cold key", async () => {
    await using cache = createCache<string>()
    let runs = 0
    const fetch = async (key: string) => {
      runs++
      await sleep(20)
      return `value of ${key}`
    }
    const values = await Promise.all(Array.from({ length: 1_000 }, () => cache.getOrFetch("hot", fetch)))
    expect(new Set(values)).toEqual(new Set(["value of hot"]))
    expect(runs).toBe(1)
    expect(await cache.getOrFetch("hot", fetch)).toBe("value of hot")
    expect(runs).toBe(1)
    const stats = await cache.stats()
    expect([stats.fetches, stats.coalesced]).toEqual([1, 999])
  })

  for (const [where, topology] of [["in memory", undefined], ["on a remote store", remoteTopology()]] as const) {
    it(`${where}: a hung fetch does not block its key; a put or delete wins over a fetch in flight`, async () => {
      await using cache = createCache<string>({ stampedeTimeout: 100, topology })
      const hung = cache.getOrFetch("k", () => new Promise<string>(() => {}))
      const joined = cache.getOrFetch("k", () => "never runs")
      await expect(hung).rejects.toMatchObject({ _tag: "FetchTimeout", timeout: 100 })
      await expect(joined).rejects.toMatchObject({ _tag: "FetchTimeout" })
      expect(await cache.getOrFetch("k", () => "fresh")).toBe("fresh")

      let finish: (value: string) => void = () => {}
      const slow = cache.getOrFetch("p", () => new Promise<string>((resolve) => finish = resolve))
      await sleep(5)
      await cache.put("p", "put")
      expect(await cache.getOrFetch("p", () => "other")).toBe("put")
      finish("fetched")
      expect(await slow).toBe("fetched")
      expect(await cache.get("p")).toBe("put")

      const deleted = cache.getOrFetch("d", () => new Promise<string>((resolve) => finish = resolve))
      await sleep(5)
      await cache.delete("d")
      finish("fetched")
      expect(await deleted).toBe("fetched")
      expect(await cache.exists("d")).toBe(false)
    })

    it(`${where}: every concurrent getOrFetch counts one miss, joined callers included`, async () => {
      await using cache = createCache<string>({ topology })
      await Promise.all(Array.from({ length: 1_000 }, () => cache.getOrFetch("cold", async () => "v")))
      await cache.getOrFetch("cold", () => "unused")
      const stats = await cache.stats()
      expect([stats.misses, stats.hits, stats.fetches, stats.coalesced]).toEqual([1_000, 1, 1, 999])
    })

    it(`${where}: stampedeProtection false runs every caller's fetch; a fetch may read its own key`, async () => {
      await using cache = createCache<number>({ stampedeProtection: false, topology })
      let runs = 0
      const fetch = async () => {
        runs++
        await sleep(10)
        return runs
      }
      await Promise.all(Array.from({ length: 10 }, () => cache.getOrFetch("k", fetch)))
      expect(runs).toBe(10)
      expect((await cache.stats()).coalesced).toBe(0)
      const outer = await cache.getOrFetch("self", async (key) => (await cache.getOrFetch(key, () => 1)) + 1)
      expect(outer).toBe(2)
    })
  }

  it("bad options reject with a ConfigError naming the field, never a TypeError", async () => {
    await using cache = createCache<number>()
    const cases: ReadonlyArray<[() => Promise<unknown>, string]> = [
      [() => cache.put("k", 1, null as never), "options"],
      [() => cache.put("k", 1, { ttl: 1_000, maxsize: 5 } as never), "maxsize"],
      [() => cache.putMany([null] as never), "entries"],
      [() => cache.putMany([["k", 1, "1 second"]] as never), "options"],
      [() => cache.getOrFetch("k", () => 1, { ttl: 1_000, tagz: [] } as never), "tagz"]
    ]
    for (const [call, field] of cases) {
      const error = await call().catch((e: unknown) => e)
      expect(error).toBeInstanceOf(ConfigError)
      expect(error).toMatchObject({ field })
    }
    expect(() => createCache({ sweepInterval: "1 nanos" })).toThrow(ConfigError)
    expect(() => createCache({ stampedeTimeout: 2 ** 31 })).toThrow(ConfigError)
    expect(() => createCache({ maxsize: 10 } as never)).toThrow(ConfigError)
    expect(await cache.size()).toBe(0)
  })

  it("fails every waiter with the very value the fetch threw, caches nothing, fetches again next time", async () => {
    await using cache = createCache<number>()
    const thrown = new TypeError("source down")
    let runs = 0
    const failing = async () => {
      runs++
      await sleep(5)
      throw thrown
    }
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => cache.getOrFetch("k", failing)))
    expect(results.every((r) => r.status === "rejected" && r.reason === thrown)).toBe(true)
    expect(runs).toBe(1)
    const syncThrow = await cache.getOrFetch("k", () => {
      throw "plain string"
    }).catch((e: unknown) => e)
    expect(syncThrow).toBe("plain string")
    expect(await cache.getOrFetch("k", () => 7)).toBe(7)
    expect((await cache.stats()).fetchErrors).toBe(2)
  })

  it("serves a stale value while it refreshes, with grace", async () => {
    await using cache = createCache<number>({ grace: "10 seconds" })
    let runs = 0
    const fetch = async () => {
      await sleep(20)
      return ++runs
    }
    expect(await cache.getOrFetch("k", fetch, { ttl: 30 })).toBe(1)
    await sleep(40)
    expect(await cache.get("k")).toBeUndefined()
    expect(await cache.getOrFetch("k", fetch, { ttl: 30_000 })).toBe(1)
    await sleep(200)
    expect(await cache.getOrFetch("k", fetch, { ttl: 30_000 })).toBe(2)
    expect((await cache.stats()).staleHits).toBe(1)
  })

  it("reads, writes and deletes in batches", async () => {
    await using cache = createCache<number>()
    await cache.putMany([["a", 1], ["b", 2], ["c", 3, { ttl: 60_000 }]])
    expect(await cache.getMany(["c", "missing", "a"])).toEqual([3, undefined, 1])
    expect(await cache.deleteMany(["a", "b", "missing"])).toBe(2)
    expect(await cache.size()).toBe(1)
  })

  it("delivers telemetry events to subscribers until they unsubscribe", async () => {
    await using cache = createCache<number>({ name: "observed" })
    const events: Array<TelemetryEvent> = []
    const unsubscribe = cache.subscribe((event) => events.push(event))
    await cache.put("a", 1)
    await cache.get("a")
    await cache.get("b")
    unsubscribe()
    await cache.get("a")
    expect(events.map((e) => [e.event.join("."), e.metadata.result ?? null])).toEqual([
      ["vela.cache.put.stop", null],
      ["vela.cache.get.stop", "hit"],
      ["vela.cache.get.stop", "miss"]
    ])
  })

  it("serves hits from a near cache over the given topology", async () => {
    await using cache = createCache<number>({ nearCache: { ttl: 1_000 }, maxSize: 100, evictionPolicy: "lru" })
    await cache.put("a", 1)
    expect(await cache.get("a")).toBe(1)
    expect(await cache.getOrFetch("b", () => 2)).toBe(2)
    expect(await cache.get("b")).toBe(2)
    expect(NearCache.layer).toBeTypeOf("function")
  })

  it("after close every call rejects with CacheClosed; closing twice is harmless", async () => {
    const cache = createCache<number>({ name: "closing" })
    await cache.put("a", 1)
    await cache.close()
    await cache.close()
    for (const call of [cache.get("a"), cache.put("a", 2), cache.size(), cache.getOrFetch("a", () => 1)]) {
      await expect(call).rejects.toBeInstanceOf(CacheClosed)
    }
  })

  it("a fetch still running at close rejects its callers with CacheClosed", async () => {
    const cache = createCache<number>({ name: "closing-mid-fetch" })
    const pending = cache.getOrFetch("k", () => new Promise<number>(() => {}))
    await sleep(5)
    await cache.close()
    await expect(pending).rejects.toBeInstanceOf(CacheClosed)
  })

  it("gathers the gets of one tick to a remote store into one getMany; a failing key fails only its caller", async () => {
    let batches = 0
    const remote = remoteTopology((store) => {
      const broken = (key: string) => new CodecError({ key, direction: "decode", cause: "corrupt" })
      const get = (key: string) => key === "bad" ? Effect.fail(broken(key)) : store.get(key)
      return {
        get,
        getMany: (keys: ReadonlyArray<string>) => {
          batches++
          return keys.includes("bad") ? Effect.fail(broken("bad")) : Effect.forEach(keys, get)
        }
      }
    })
    await using cache = createCache<number>({ name: "remote", topology: remote })
    await cache.putMany(Array.from({ length: 50 }, (_, i) => [`k${i}`, i] as const))
    batches = 0
    const values = await Promise.all(Array.from({ length: 50 }, (_, i) => cache.get(`k${i}`)))
    expect(values).toEqual(Array.from({ length: 50 }, (_, i) => i))
    expect(batches).toBe(1)
    const results = await Promise.allSettled([cache.get("k1"), cache.get("bad"), cache.get("missing")])
    expect(results.map((r) => r.status === "fulfilled" ? r.value : (r.reason as CodecError)._tag)).toEqual([
      1,
      "CodecError",
      undefined
    ])
  })

  it("a program that never closes its cache still exits by itself", async () => {
    const facade = fileURLToPath(new URL("../dist/promise.js", import.meta.url))
    const program = `
      const { createCache } = await import(${JSON.stringify(facade)})
      const cache = createCache({ defaultTtl: 60000, sweepInterval: 50 })
      await cache.put("k", "v", { ttl: 60000 })
      await cache.getOrFetch("f", async () => "x")
      console.log(await cache.get("k"))
    `
    // The child is killed at 10 s; the test waits longer, so a hanging child never outlives it.
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", program], {
      timeout: 10_000
    })
    expect(stdout.trim()).toBe("v")
  }, 20_000)
})
