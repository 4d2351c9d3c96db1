import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { StableMap } from "../src/internal/stableMap.js"

describe("StableMap", () => {
  it.prop(
    "agrees with a Map through growth, bursts of deletes and migrations",
    [
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant("add" as const), count: fc.integer({ min: 1, max: 300 }) }),
          fc.record({ op: fc.constant("delete" as const), count: fc.integer({ min: 1, max: 300 }) }),
          fc.record({ op: fc.constant("migrate" as const), budget: fc.integer({ min: 1, max: 50 }) }),
          fc.record({ op: fc.constant("get" as const), key: fc.integer({ min: 0, max: 2_000 }) })
        ),
        { maxLength: 60 }
      )
    ],
    ([ops]) => {
      const map = new StableMap<number>(16)
      const model = new Map<string, number>()
      let next = 0
      let migrations = 0
      for (const op of ops) {
        switch (op.op) {
          case "add":
            for (let i = 0; i < op.count; i++, next++) {
              map.add(`k${next}`, next)
              model.set(`k${next}`, next)
            }
            break
          case "delete":
            for (const key of Array.from(model.keys()).slice(0, op.count)) {
              assert.isTrue(map.delete(key))
              model.delete(key)
              if (map.migrating) migrations++
            }
            assert.isFalse(map.delete("absent"))
            break
          case "migrate":
            map.migrate(op.budget, () => true)
            break
          case "get":
            assert.strictEqual(map.get(`k${op.key}`), model.get(`k${op.key}`))
        }
        assert.strictEqual(map.size, model.size)
      }
      for (const [key, value] of model) assert.strictEqual(map.get(key), value)
      map.migrate(Infinity, () => true)
      assert.isFalse(map.migrating)
      for (const [key, value] of model) assert.strictEqual(map.get(key), value)
      assert.isAtLeast(migrations, 0)
    }
  )

  it("moves to a fresh table before V8 would shrink the old one, dropping what keep rejects", () => {
    const map = new StableMap<number>(16)
    for (let i = 0; i < 1_024; i++) map.add(`k${i}`, i)
    let i = 0
    while (!map.migrating) assert.isTrue(map.delete(`k${i++}`))
    assert.isAtMost(map.size, 1_024 / 4 + 1_024 / 32, "it starts at the point where V8 would shrink")
    let even = 0
    for (let k = i; k < 1_024; k++) if (k % 2 === 0) even++
    map.migrate(Infinity, (value) => value % 2 === 0)
    assert.isFalse(map.migrating)
    assert.strictEqual(map.size, even)
    assert.strictEqual(map.get(`k${1_022}`), 1_022)
    assert.isUndefined(map.get(`k${1_023}`))
  })
})
