import { assert, describe, it } from "@effect/vitest"
import type { Backend } from "@vela/core"
import { Local, Memory, NearCache, Topology, Vela } from "@vela/core"
import { Effect, Layer, Option, PubSub, Stream, TestClock } from "effect"

/**
 * A topology whose store reports invalidations that the test publishes, standing in for the Redis
 * bus or a cluster broadcast: two caches share one Memory backend, as two processes share Redis.
 */
const emitting = Effect.gen(function*() {
  const backend = yield* Memory.make()
  const changes = yield* PubSub.unbounded<Backend.Invalidation>()
  const topology = Topology.Topology.of({
    name: "emitting",
    open: (options) =>
      Effect.map(backend.open(options), (store) => ({ ...store, invalidations: Stream.fromPubSub(changes) }))
  })
  const open = <A>(near: boolean) =>
    Vela.make<A>({ name: "shared" }).pipe(
      Effect.provide(
        near
          ? NearCache.layer({ ttl: "10 seconds" }).pipe(Layer.provide(Layer.succeed(Topology.Topology, topology)))
          : Layer.succeed(Topology.Topology, topology)
      )
    )
  const near = yield* open<string>(true)
  const elsewhere = yield* open<string>(false)
  // Let the near cache subscribe before anything is published.
  yield* Effect.repeatN(Effect.yieldNow(), 20)
  const publish = (change: Backend.Invalidation) =>
    Effect.zipRight(PubSub.publish(changes, change), Effect.repeatN(Effect.yieldNow(), 5))
  return { near, elsewhere, publish }
})

describe("NearCache", () => {
  it.scoped("serves L1 until L2 reports a change, then reads L2 again", () =>
    Effect.gen(function*() {
      const { elsewhere, near, publish } = yield* emitting
      yield* near.put("k", "v1")
      yield* elsewhere.put("k", "v2")
      assert.strictEqual(yield* near.get("k"), "v1", "L1 still holds the old value: nothing was reported yet")
      yield* publish({ _tag: "Keys", keys: ["k"] })
      assert.strictEqual(yield* near.get("k"), "v2")
    }))

  it.scoped("applies tag invalidations and flushes to L1", () =>
    Effect.gen(function*() {
      const { elsewhere, near, publish } = yield* emitting
      yield* near.put("a", "a1", { tags: ["t"] })
      yield* near.put("b", "b1")
      yield* elsewhere.put("a", "a2")
      yield* elsewhere.put("b", "b2")
      yield* publish({ _tag: "Tag", tag: "t" })
      assert.deepStrictEqual([yield* near.get("a"), yield* near.get("b")], ["a2", "b1"])
      yield* publish({ _tag: "Flush" })
      assert.strictEqual(yield* near.get("b"), "b2")
    }))

  it.scoped("a lost connection clears L1 and bypasses it until the connection returns", () =>
    Effect.gen(function*() {
      const { elsewhere, near, publish } = yield* emitting
      yield* near.put("k", "v1")
      yield* publish({ _tag: "Disconnected" })
      yield* elsewhere.put("k", "v2")
      assert.strictEqual(yield* near.get("k"), "v2")
      yield* elsewhere.put("k", "v3")
      assert.strictEqual(yield* near.get("k"), "v3", "no promotion while disconnected")
      yield* publish({ _tag: "Connected" })
      assert.strictEqual(yield* near.get("k"), "v3")
      yield* elsewhere.put("k", "v4")
      assert.strictEqual(yield* near.get("k"), "v3", "promoted again once connected")
    }))

  it.scoped("an L1 entry lives at most the L1 ttl, and never past the entry's own expiry", () =>
    Effect.gen(function*() {
      const { elsewhere, near } = yield* emitting
      yield* near.put("long", "l1")
      yield* near.put("short", "s1", { ttl: "2 seconds" })
      yield* elsewhere.put("long", "l2")
      yield* TestClock.adjust("2 seconds")
      assert.isTrue(Option.isNone(yield* near.getOption("short")))
      assert.strictEqual(yield* near.get("long"), "l1")
      yield* TestClock.adjust("8 seconds")
      assert.strictEqual(yield* near.get("long"), "l2")
    }))

  it.scoped("writes go through to L2", () =>
    Effect.gen(function*() {
      const cache = yield* Vela.make<number>({ name: "through" }).pipe(
        Effect.provide(NearCache.layer().pipe(Layer.provide(Local.layer), Layer.provide(Memory.layer())))
      )
      yield* cache.put("a", 1, { tags: ["t"] })
      assert.strictEqual(yield* cache.size(), 1)
      assert.strictEqual(yield* cache.invalidateTag("t"), 1)
      assert.isFalse(yield* cache.exists("a"))
    }))

  it.effect("a nonsensical L1 config is a ConfigError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.scoped(
          Effect.provide(
            Topology.Topology,
            NearCache.layer({ ttl: 0 }).pipe(Layer.provide(Local.layer), Layer.provide(Memory.layer()))
          )
        )
      )
      assert.strictEqual(error._tag, "ConfigError")
      assert.strictEqual(error.field, "nearCache.ttl")
    }))
})
