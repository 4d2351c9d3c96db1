import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import type { EvictionPolicy } from "../src/Backend.js"
import { MemoryStore } from "../src/internal/memoryStore.js"

const store = (policy: EvictionPolicy, maxSize: number) => {
  let evictions = 0
  const memory = new MemoryStore({
    maxSize,
    evictionPolicy: policy,
    onEvict: (count) => evictions += count,
    onExpire: () => {},
    now: () => 0
  })
  return { memory, evictions: () => evictions }
}

const operations = fc.array(
  fc.tuple(fc.constantFrom("set", "get", "delete"), fc.integer({ min: 0, max: 40 }), fc.integer()),
  { maxLength: 400 }
)

describe("tinylfu", () => {
  it.prop(
    "never holds more than maxSize, never returns a value that was not the last one written",
    [operations, fc.integer({ min: 1, max: 20 })],
    ([ops, maxSize]) => {
      const { evictions, memory } = store("tinylfu", maxSize)
      const written = new Map<string, number>()
      let inserted = 0
      for (const [op, n, value] of ops) {
        const key = `k${n}`
        if (op === "set") {
          if (memory.peek(key) === undefined) inserted++
          memory.set(key, { value, expiresAt: null, tags: [], version: 0 })
          written.set(key, value)
          assert.strictEqual(memory.peek(key)?.value, value, "the entry just written is never the victim")
        } else if (op === "get") {
          const entry = memory.get(key)
          if (entry !== undefined) assert.strictEqual(entry.value, written.get(key))
        } else if (memory.delete(key)) {
          inserted--
        }
        assert.isAtMost(memory.size(), maxSize)
        assert.strictEqual(memory.size(), inserted - evictions())
      }
    }
  )

  it("keeps a hot set that a one-off scan would flush out of an LRU", () => {
    const hits = (policy: EvictionPolicy) => {
      const { memory } = store(policy, 100)
      let hit = 0
      for (let round = 0; round < 50; round++) {
        for (let i = 0; i < 50; i++) {
          const key = `hot${i}`
          if (memory.get(key) !== undefined) hit++
          else memory.set(key, { value: i, expiresAt: null, tags: [], version: 0 })
        }
        // a scan of keys never seen again, twice the cache's size
        for (let i = 0; i < 200; i++) {
          memory.set(`scan${round}-${i}`, { value: i, expiresAt: null, tags: [], version: 0 })
        }
      }
      return hit
    }
    const lru = hits("lru")
    const tinylfu = hits("tinylfu")
    assert.strictEqual(lru, 0, "every scan flushes the LRU")
    assert.isAbove(tinylfu, 40 * 50, "the hot set survives the scans under W-TinyLFU")
  })
})
