import { assert, describe, it } from "@effect/vitest"
import { Local, Memory, Telemetry, Vela } from "@vela/core"
import { Chunk, Effect, Fiber, Layer, Metric, Stream, TestClock, Tracer } from "effect"

const memory = Local.layer.pipe(Layer.provide(Memory.layer()))

describe("Telemetry", () => {
  it.scoped("emits the original's four events with their measurements and metadata", () =>
    Effect.gen(function*() {
      const cache = yield* Vela.make<number>({ name: "events", telemetryPrefix: ["app", "cache"] })
      const collected = yield* Effect.fork(Stream.runCollect(Stream.take(Telemetry.events, 6)))
      yield* Effect.repeatN(Effect.yieldNow(), 10)
      yield* cache.put("a", 1, { ttl: 1000, tags: ["t"] })
      yield* cache.get("a")
      yield* Effect.either(cache.get("missing"))
      yield* cache.getOrFetch("f", () => Effect.as(Effect.sleep(5), 2))
        .pipe(Effect.fork, Effect.zipLeft(TestClock.adjust(5)), Effect.flatMap(Fiber.join))
      yield* cache.invalidateTag("t")
      const events = Chunk.toReadonlyArray(yield* Fiber.join(collected))
      assert.deepStrictEqual(events.map((e) => e.event.join(".")), [
        "app.cache.put.stop",
        "app.cache.get.stop",
        "app.cache.get.stop",
        "app.cache.get.stop",
        "app.cache.fetch.stop",
        "app.cache.put.stop"
      ])
      assert.deepStrictEqual(events[0].metadata, { cache: "events", key: "a", ttl: 1000 })
      assert.deepStrictEqual(events[1].metadata, { cache: "events", key: "a", result: "hit" })
      assert.deepStrictEqual(events[2].metadata, { cache: "events", key: "missing", result: "miss" })
      assert.deepStrictEqual(events[4].metadata, { cache: "events", key: "f", result: "ok" })
      assert.strictEqual(events[4].measurements.duration, 5, "the fetch took 5 ms of TestClock time")
      for (const event of events) assert.isNumber(event.measurements.duration)
    }).pipe(Effect.provide(Layer.merge(memory, Telemetry.layer()))))

  it.scoped("invalidate_tag carries the count; coalesced fetches are reported as such", () =>
    Effect.gen(function*() {
      const telemetry = yield* Telemetry.Telemetry
      const seen: Array<Telemetry.TelemetryEvent> = []
      telemetry.subscribe((event) => seen.push(event))
      const cache = yield* Vela.make<number>({ name: "counts" })
      yield* cache.put("a", 1, { tags: ["t"] })
      yield* cache.put("b", 1, { tags: ["t"] })
      yield* cache.invalidateTag("t")
      const fetch = () => Effect.as(Effect.sleep(10), 3)
      const fiber = yield* Effect.fork(Effect.all([cache.getOrFetch("k", fetch), cache.getOrFetch("k", fetch)], {
        concurrency: "unbounded"
      }))
      yield* TestClock.adjust(10)
      yield* Fiber.join(fiber)
      const tagEvent = seen.find((e) => e.event.includes("invalidate_tag"))!
      assert.deepStrictEqual(tagEvent.measurements.count, 2)
      assert.deepStrictEqual(tagEvent.metadata, { cache: "counts", tag: "t" })
      const fetchResults = seen.filter((e) => e.event.includes("fetch")).map((e) => e.metadata.result).sort()
      assert.deepStrictEqual(fetchResults, ["coalesced", "ok"])
    }).pipe(Effect.provide(Layer.merge(memory, Telemetry.layer()))))

  it.scoped("spans wrap operations with the Telemetry layer, and only with it", () =>
    Effect.gen(function*() {
      const base = yield* Effect.tracer
      const names: Array<string> = []
      const recording = Tracer.make({
        span: (name, ...rest) => {
          names.push(name)
          return base.span(name, ...rest)
        },
        context: (f, fiber) => base.context(f, fiber)
      })
      const withTelemetry = yield* Vela.make<number>({ name: "spans" }).pipe(Effect.provide(Telemetry.layer()))
      const without = yield* Vela.make<number>({ name: "plain" })
      yield* Effect.withTracer(Effect.zipRight(withTelemetry.put("a", 1), withTelemetry.get("a")), recording)
      assert.deepStrictEqual(names, ["vela.cache.put", "vela.cache.get"])
      yield* Effect.withTracer(Effect.zipRight(without.put("a", 1), without.get("a")), recording)
      assert.strictEqual(names.length, 2)
    }).pipe(Effect.provide(memory)))

  it.scoped("counters are Effect metrics named from the prefix and tagged with the cache", () =>
    Effect.gen(function*() {
      const cache = yield* Vela.make<number>({ name: "metered", telemetryPrefix: ["shop", "cache"] })
      yield* cache.put("a", 1)
      yield* cache.get("a")
      yield* cache.get("a")
      const hits = yield* Metric.value(Metric.counter("shop_cache_hits").pipe(Metric.tagged("cache", "metered")))
      const writes = yield* Metric.value(Metric.counter("shop_cache_writes").pipe(Metric.tagged("cache", "metered")))
      assert.deepStrictEqual([hits.count, writes.count], [2, 1])
    }).pipe(Effect.provide(memory)))
})
