import { assert, describe, it } from "@effect/vitest"
import { Local, Memory, Telemetry, Vela } from "@vela/core"
import { Duration, Effect, Layer, Option, TestClock } from "effect"

const memory = Local.layer.pipe(Layer.provide(Memory.layer()))

const millisLeft = (cache: Vela.Cache<any>, key: string) =>
  Effect.map(cache.ttl(key), (left) => Option.getOrUndefined(Option.map(left, Duration.toMillis)))

describe("atomic operations on an entry fetched with grace", () => {
  it.effect("ttl is the time until stale; take and update see it fresh, then as missing", () =>
    Effect.scoped(Effect.gen(function*() {
      const cache = yield* Vela.make<number>({ name: "graced" })
      const graced = { ttl: "1 second", grace: "1 minute" } as const
      yield* cache.getOrFetch("a", () => Effect.succeed(1), graced)
      yield* cache.getOrFetch("b", () => Effect.succeed(1), graced)
      assert.strictEqual(yield* millisLeft(cache, "a"), 1_000)
      // update keeps its freshness and grace: stale after the same second.
      assert.strictEqual(Option.getOrUndefined(yield* cache.update("a", (n) => n + 1)), 2)
      assert.strictEqual(yield* millisLeft(cache, "a"), 1_000)
      assert.strictEqual(Option.getOrUndefined(yield* cache.take("b")), 1)
      yield* cache.getOrFetch("b", () => Effect.succeed(5), graced)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* millisLeft(cache, "a"), undefined)
      assert.strictEqual(Option.getOrUndefined(yield* cache.update("a", (n) => n + 1)), undefined)
      // The stale value is still there for getOrFetch to serve while it refreshes.
      assert.strictEqual(yield* cache.getOrFetch("a", () => Effect.succeed(10), { ...graced, softTimeout: 0 }), 2)
      assert.strictEqual(Option.getOrUndefined(yield* cache.take("b")), undefined, "a stale value is not taken")
      assert.isFalse(yield* cache.exists("b"), "but it is removed")
      // increment of a value fetched with grace: its value is wrapped, so it is not a counter.
      yield* cache.getOrFetch("c", () => Effect.succeed(1), graced)
      const error = yield* Effect.flip(cache.increment("c"))
      assert.strictEqual(error._tag, "WrongType")
    })).pipe(Effect.provide(memory)))

  it.effect("update with a ttl rewrites it as a plain entry; touch moves when it is dropped, not its freshness", () =>
    Effect.scoped(Effect.gen(function*() {
      const cache = yield* Vela.make<number>({ name: "graced-options" })
      const graced = { ttl: "1 second", grace: "1 minute" } as const
      yield* cache.getOrFetch("a", () => Effect.succeed(1), graced)
      yield* cache.update("a", (n) => n + 1, { ttl: "1 hour" })
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* cache.get("a"), 2)
      assert.strictEqual(yield* millisLeft(cache, "a"), 3_599_000)
      yield* cache.getOrFetch("t", () => Effect.succeed(1), graced)
      assert.isTrue(yield* cache.touch("t", "10 seconds"))
      assert.strictEqual(yield* millisLeft(cache, "t"), 1_000)
      yield* TestClock.adjust("1 second")
      assert.isTrue(Option.isNone(yield* cache.getOption("t")), "stale after its fetch's ttl")
      yield* TestClock.adjust("9 seconds")
      assert.strictEqual(yield* cache.getOrFetch("t", () => Effect.succeed(7), graced), 7, "dropped at the touch's ttl")
    })).pipe(Effect.provide(memory)))
})

describe("stats and telemetry of the atomic operations", () => {
  it.scoped("take and update count hits and misses; take a delete; update and increment a write", () =>
    Effect.gen(function*() {
      const telemetry = yield* Telemetry.Telemetry
      const seen: Array<Telemetry.TelemetryEvent> = []
      telemetry.subscribe((event) => seen.push(event))
      const cache = yield* Vela.make<number>({ name: "atomic-stats" })
      yield* cache.put("a", 1)
      yield* cache.take("a")
      yield* cache.take("a")
      yield* cache.increment("n", 2)
      yield* cache.update("n", (n) => n * 2)
      yield* cache.update("missing", (n) => n)
      yield* cache.touch("n", "1 hour")
      yield* cache.ttl("n")
      const stats = yield* cache.stats()
      assert.deepStrictEqual(
        [stats.hits, stats.misses, stats.writes, stats.deletes],
        [2, 2, 3, 1]
      )
      const events = seen.map((event) => [event.event.join("."), event.metadata, event.measurements] as const)
      const named = (name: string) => events.filter(([event]) => event === `vela.cache.${name}.stop`)
      assert.deepStrictEqual(named("take").map(([, metadata]) => metadata.result), ["hit", "miss"])
      assert.deepStrictEqual(named("update").map(([, metadata]) => metadata.result), ["hit", "miss"])
      assert.deepStrictEqual(named("touch").map(([, metadata]) => metadata.touched), [true])
      assert.deepStrictEqual(named("increment").map(([, , measurements]) => [measurements.by, measurements.value]), [[
        2,
        2
      ]])
    }).pipe(Effect.provide(Layer.merge(memory, Telemetry.layer()))))
})
