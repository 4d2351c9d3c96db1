import { describe, expect, it } from "@effect/vitest"
import { CacheClosed, ConfigError, createCache, InvalidKey, WrongType } from "@vela/core/promise"

const topologies = [["Memory", {}], ["a near cache over Memory", { nearCache: true }]] as const

describe.each(topologies)("the facade's atomic operations on %s", (_, where) => {
  it("ttl: milliseconds left, Infinity without expiry, undefined on a miss", async () => {
    await using cache = createCache<string>({ ...where, name: "ttl" })
    expect(await cache.ttl("missing")).toBeUndefined()
    await cache.put("forever", "v")
    expect(await cache.ttl("forever")).toBe(Infinity)
    await cache.put("k", "v", { ttl: 10_000 })
    const left = await cache.ttl("k")
    expect(left).toBeGreaterThan(9_000)
    expect(left).toBeLessThanOrEqual(10_000)
    await cache.put("short", "v", { ttl: 20 })
    await new Promise((resolve) => setTimeout(resolve, 40))
    expect(await cache.ttl("short")).toBeUndefined()
  })

  it("touch, take, increment and update", async () => {
    await using cache = createCache<number>({ ...where, name: "ops", defaultTtl: 60_000 })
    expect(await cache.touch("missing")).toBe(false)
    await cache.put("n", 1, { ttl: 1_000, tags: ["t"] })
    expect(await cache.touch("n", "infinity")).toBe(true)
    expect(await cache.ttl("n")).toBe(Infinity)
    expect(await cache.touch("n")).toBe(true)
    expect(await cache.ttl("n")).toBeGreaterThan(59_000)
    expect(await cache.update("n", (n) => n + 1)).toBe(2)
    expect(await cache.update("n", async (n) => n * 10)).toBe(20)
    expect(await cache.update("missing", (n) => n + 1)).toBeUndefined()
    expect(await cache.take("n")).toBe(20)
    expect(await cache.take("n")).toBeUndefined()
    expect(await cache.increment("c")).toBe(1)
    expect(await cache.increment("c", 41, { tags: ["counters"] })).toBe(42)
    expect(await cache.get("c")).toBe(42)
    expect(await cache.invalidateTag("counters")).toBe(0)
    expect(await cache.increment("d", 2, { ttl: 10_000, tags: ["counters"] })).toBe(2)
    expect(await cache.ttl("d")).toBeGreaterThan(9_000)
    expect(await cache.invalidateTag("counters")).toBe(1)
  })

  it("update: what f throws or rejects with is what the call rejects with; the value stays", async () => {
    await using cache = createCache<number>({ ...where, name: "throws" })
    await cache.put("n", 1)
    const thrown = new Error("sync")
    await expect(cache.update("n", () => {
      throw thrown
    })).rejects.toBe(thrown)
    const rejected = { reason: "async" }
    await expect(cache.update("n", () => Promise.reject(rejected))).rejects.toBe(rejected)
    expect(await cache.get("n")).toBe(1)
  })

  it("typed rejections: InvalidKey, ConfigError, WrongType, CacheClosed", async () => {
    const cache = createCache<unknown>({ ...where, name: "errors" })
    await expect(cache.take("")).rejects.toBeInstanceOf(InvalidKey)
    await expect(cache.ttl(42 as unknown as string)).rejects.toBeInstanceOf(InvalidKey)
    await expect(cache.touch("k", -1)).rejects.toMatchObject({ _tag: "ConfigError", field: "ttl" })
    await expect(cache.increment("k", NaN)).rejects.toBeInstanceOf(ConfigError)
    await expect(cache.update("k", 1 as never)).rejects.toMatchObject({ _tag: "ConfigError", field: "f" })
    await cache.put("s", "text")
    await expect(cache.increment("s")).rejects.toBeInstanceOf(WrongType)
    await cache.close()
    for (
      const call of [
        cache.ttl("k"),
        cache.touch("k"),
        cache.take("k"),
        cache.increment("k"),
        cache.update("k", (v) => v)
      ]
    ) {
      await expect(call).rejects.toBeInstanceOf(CacheClosed)
    }
  })

  it("exact under concurrency: one taker wins, increments and async updates add up", async () => {
    await using cache = createCache<number>({ ...where, name: "races" })
    await cache.put("prize", 7)
    const taken = await Promise.all(Array.from({ length: 50 }, () => cache.take("prize")))
    expect(taken.filter((value) => value !== undefined)).toEqual([7])
    const sums = await Promise.all(Array.from({ length: 100 }, () => cache.increment("sum", 2)))
    expect(await cache.get("sum")).toBe(200)
    expect(new Set(sums).size).toBe(100)
    await cache.put("n", 0)
    let calls = 0
    const updated = await Promise.all(Array.from({ length: 50 }, () =>
      cache.update("n", async (n) => {
        calls++
        await new Promise((resolve) => setTimeout(resolve, 1))
        return n + 1
      })))
    expect(await cache.get("n")).toBe(50)
    expect(updated.map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))
    expect(calls).toBeGreaterThan(50)
  })
})
