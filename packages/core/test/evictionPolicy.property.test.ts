import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import type { EvictionPolicy } from "../src/Backend.js"
import { MemoryStore } from "../src/internal/memoryStore.js"

/** A store whose clock stands still, so that nothing expires and every removal is an eviction or a delete. */
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

type Op = readonly ["set" | "get" | "delete", number, boolean]

/** Few keys for a small bound, so that every path (hit, new write, rewrite, eviction, delete) is taken. */
const operations = fc.array(
  fc.tuple(fc.constantFrom("set", "set", "get", "get", "delete"), fc.integer({ min: 0, max: 30 }), fc.boolean()),
  { maxLength: 300 }
) as fc.Arbitrary<ReadonlyArray<Op>>

/**
 * The reference policies, written plainly: `read` a hit, `rewritten` a new write to a kept key,
 * `inserted` a new key (after the victim left), `victim` the key that leaves a full store.
 */
interface Model {
  readonly read: (key: string, step: number) => void
  readonly rewritten: (key: string, step: number, expiresAt: number | null) => void
  readonly inserted: (key: string, step: number, expiresAt: number | null) => void
  readonly removed: (key: string) => void
  readonly victim: () => string
}

/** The least recently read or written key. */
const lruModel = (): Model => {
  const last = new Map<string, number>()
  return {
    read: (key, step) => last.set(key, step),
    rewritten: (key, step) => last.set(key, step),
    inserted: (key, step) => last.set(key, step),
    removed: (key) => last.delete(key),
    victim: () => [...last].reduce((a, b) => (b[1] < a[1] ? b : a))[0]
  }
}

/** The least frequently read or written key; among equals, the one that reached its count first. */
const lfuModel = (): Model => {
  const counts = new Map<string, { uses: number; since: number }>()
  const used = (key: string, step: number) => counts.set(key, { uses: counts.get(key)!.uses + 1, since: step })
  return {
    read: used,
    rewritten: used,
    inserted: (key, step) => counts.set(key, { uses: 1, since: step }),
    removed: (key) => counts.delete(key),
    victim: () =>
      [...counts].reduce((a, b) =>
        b[1].uses < a[1].uses || (b[1].uses === a[1].uses && b[1].since < a[1].since) ? b : a
      )[0]
  }
}

/** The soonest expiry (every write's expiry is distinct here); without one, the oldest write. Reads do not count. */
const ttlOnlyModel = (): Model => {
  const entries = new Map<string, { expiresAt: number | null; written: number }>()
  const write = (key: string, step: number, expiresAt: number | null) => entries.set(key, { expiresAt, written: step })
  return {
    read: () => {},
    rewritten: write,
    inserted: write,
    removed: (key) => entries.delete(key),
    victim: () => {
      const all = [...entries]
      const expiring = all.filter(([, e]) => e.expiresAt !== null)
      if (expiring.length > 0) return expiring.reduce((a, b) => (b[1].expiresAt! < a[1].expiresAt! ? b : a))[0]
      return all.reduce((a, b) => (b[1].written < a[1].written ? b : a))[0]
    }
  }
}

const models: ReadonlyArray<[EvictionPolicy, () => Model]> = [
  ["lru", lruModel],
  ["lfu", lfuModel],
  ["ttl-only", ttlOnlyModel]
]

const entryOf = (value: number, expiresAt: number | null) => ({ value, expiresAt, tags: [], version: 0 })

describe("eviction policies against a model", () => {
  for (const [policy, makeModel] of models) {
    it.prop(
      `${policy}: keeps exactly the keys the reference policy keeps`,
      [operations, fc.integer({ min: 1, max: 12 })],
      ([ops, maxSize]) => {
        const { memory } = store(policy, maxSize)
        const model = makeModel()
        const kept = new Set<string>()
        ops.forEach(([op, n, expiring], step) => {
          const key = `k${n}`
          // ttl-only orders by expiry: each write's is distinct and far in the future (the clock stays at 0).
          const expiresAt = policy === "ttl-only" && expiring ? 1_000_000 - step : null
          if (op === "get") {
            const hit = memory.get(key) !== undefined
            assert.strictEqual(hit, kept.has(key), `get ${key} at step ${step}`)
            if (hit) model.read(key, step)
          } else if (op === "delete") {
            assert.strictEqual(memory.delete(key), kept.has(key))
            if (kept.delete(key)) model.removed(key)
          } else if (kept.has(key)) {
            memory.set(key, entryOf(step, expiresAt))
            model.rewritten(key, step, expiresAt)
          } else {
            if (kept.size >= maxSize) {
              const victim = model.victim()
              model.removed(victim)
              kept.delete(victim)
            }
            memory.set(key, entryOf(step, expiresAt))
            model.inserted(key, step, expiresAt)
            kept.add(key)
          }
          for (let i = 0; i <= 30; i++) {
            assert.strictEqual(memory.peek(`k${i}`) !== undefined, kept.has(`k${i}`), `k${i} after step ${step}`)
          }
        })
      }
    )
  }

  for (const policy of ["lru", "lfu", "ttl-only", "tinylfu"] as const) {
    it.prop(
      `${policy}: never over the bound; every key written is kept, deleted, or counted as evicted`,
      [operations, fc.integer({ min: 1, max: 12 })],
      ([ops, maxSize]) => {
        const { evictions, memory } = store(policy, maxSize)
        /** The keys believed kept, with their values, and how many left without a delete. */
        const kept = new Map<string, number>()
        let vanished = 0
        ops.forEach(([op, n, expiring], step) => {
          const key = `k${n}`
          if (op === "set") {
            memory.set(key, entryOf(step, expiring ? 1_000_000 + step : null))
            kept.set(key, step)
            assert.strictEqual(memory.peek(key)?.value, step, "the key just written is never the victim")
          } else if (op === "get") {
            assert.strictEqual(memory.get(key)?.value, kept.get(key))
          } else {
            assert.strictEqual(memory.delete(key), kept.delete(key))
          }
          for (const [key, value] of kept) {
            const found = memory.peek(key)
            if (found !== undefined) assert.strictEqual(found.value, value)
            else {
              kept.delete(key)
              vanished++
            }
          }
          assert.isAtMost(memory.size(), maxSize)
          assert.strictEqual(memory.size(), kept.size)
          assert.strictEqual(evictions(), vanished, "each key that left without a delete is one eviction reported")
        })
      }
    )
  }
})
