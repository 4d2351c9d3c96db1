import { describe, expect, it } from "@effect/vitest"
import { Memory, NearCache, Topology } from "@vela/core"
import type { TelemetryEvent } from "@vela/core/promise"
import { CacheClosed, CodecError, ConfigError, createCache, InvalidKey, NotFound } from "@vela/core/promise"
import { Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

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
    await cache.putMany([["a", 1], ["b", 2], ["c", 3, { ttl: 10 }]])
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
    const remote = Layer.effect(
      Topology.Topology,
      Effect.map(Memory.make(), (backend) =>
        Topology.Topology.of({
          name: "remote",
          open: (options) =>
            Effect.map(backend.open(options), (store) => {
              const broken = (key: string) => new CodecError({ key, direction: "decode", cause: "corrupt" })
              const get = (key: string) => key === "bad" ? Effect.fail(broken(key)) : store.get(key)
              return {
                ...store,
                sync: undefined,
                get,
                getMany: (keys: ReadonlyArray<string>) => {
                  batches++
                  return keys.includes("bad") ? Effect.fail(broken("bad")) : Effect.forEach(keys, get)
                }
              }
            })
        }))
    )
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
