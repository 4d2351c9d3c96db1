/**
 * The facade's coarse clock (read at most once a millisecond) against fake timers, mocked dates and
 * a blocked event loop: an entry past its TTL must be gone on the next `get` whenever time moved.
 */
import { afterEach, describe, expect, it, vi } from "@effect/vitest"
import { createCache } from "@vela/core/promise"

/** Holds the event loop (no timer can run) until `ms` of real time passed. */
const block = (ms: number) => {
  const end = performance.now() + ms
  while (performance.now() < end) {
    // spin
  }
}

afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

describe("the facade's clock", () => {
  it("expires an entry once fake timers advance past its TTL", async () => {
    await using cache = createCache<string>({ name: "fake-timers", maxSize: 100, evictionPolicy: "lru" })
    vi.useFakeTimers()
    await cache.put("k", "v", { ttl: 1_000 })
    expect(await cache.get("k")).toBe("v")
    vi.advanceTimersByTime(1_001)
    expect(await cache.get("k")).toBeUndefined()
  })

  it("sees a fake Date installed after it kept a reading, and every setSystemTime", async () => {
    await using cache = createCache<string>({ name: "fake-date", maxSize: 100, evictionPolicy: "lru" })
    await cache.put("k", "v", { ttl: 1_000 })
    await cache.put("j", "v", { ttl: 3_000 })
    expect(await cache.get("k")).toBe("v")
    // Only Date is faked: setTimeout stays the one that scheduled the kept reading's clearing.
    vi.useFakeTimers({ toFake: ["Date"] })
    vi.setSystemTime(Date.now() + 1_001)
    expect(await cache.get("k")).toBeUndefined()
    expect(await cache.get("j")).toBe("v")
    vi.setSystemTime(Date.now() + 2_000)
    expect(await cache.get("j")).toBeUndefined()
  })

  it("sees a spy on Date.now", async () => {
    await using cache = createCache<string>({ name: "spied", maxSize: 100, evictionPolicy: "lru" })
    await cache.put("k", "v", { ttl: 1_000 })
    expect(await cache.get("k")).toBe("v")
    const later = Date.now() + 1_001
    vi.spyOn(Date, "now").mockImplementation(() => later)
    expect(await cache.get("k")).toBeUndefined()
  })

  it("reads again once fake timers that held its clearing timer are removed", async () => {
    await using cache = createCache<string>({ name: "timers-removed", maxSize: 100, evictionPolicy: "lru" })
    // Date stays real, so the reading is kept; its clearing timer is a fake one, dropped at removal.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] })
    await cache.put("k", "v", { ttl: 5 })
    expect(await cache.get("k")).toBe("v")
    vi.useRealTimers()
    block(10)
    expect(await cache.get("k")).toBeUndefined()
  })

  it("reads again after a bounded number of reads while the event loop is held", async () => {
    await using cache = createCache<string>({ name: "blocked", maxSize: 100, evictionPolicy: "lru" })
    await cache.put("k", "v", { ttl: 5 })
    expect(await cache.get("k")).toBe("v")
    // No timer runs between these awaits: only the bound on reads can retire the kept reading.
    block(10)
    let hits = 0
    for (let i = 0; i < 100; i++) if (await cache.get("k") !== undefined) hits++
    expect(hits).toBeLessThan(64)
  })
})
