import { assert, describe, it } from "@effect/vitest"
import { Vela } from "@vela/core"
import { Context, Effect, Layer, TestClock } from "effect"

class C extends Context.Tag("C")<C, Vela.Cache<string>>() {}

describe("smoke", () => {
  it.effect("put/get/ttl", () =>
    Effect.gen(function*() {
      const cache = yield* C
      yield* cache.put("a", "1", { ttl: 1000 })
      assert.strictEqual(yield* cache.get("a"), "1")
      yield* TestClock.adjust(1000)
      const r = yield* Effect.either(cache.get("a"))
      assert.isTrue(r._tag === "Left")
      let runs = 0
      const fetch = () => Effect.sync(() => ++runs).pipe(Effect.delay(10), Effect.as("v"))
      const fiber = yield* Effect.fork(
        Effect.all(Array.from({ length: 100 }, () => cache.getOrFetch("k", fetch)), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust(10)
      const values = yield* fiber
      assert.strictEqual(values.length, 100)
      assert.strictEqual(runs, 1)
      const stats = yield* cache.stats()
      assert.strictEqual(stats.coalesced, 99)
    }).pipe(Effect.provide(Layer.fresh(Vela.layerMemory(C)))))
})
