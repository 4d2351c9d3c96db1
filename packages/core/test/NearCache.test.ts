import { assert, describe, it } from "@effect/vitest"
import type { Backend } from "@vela/core"
import { Local, Memory, NearCache, Topology, Vela } from "@vela/core"
import { Deferred, Effect, Fiber, Layer, Option, PubSub, Stream, TestClock } from "effect"

/**
 * A topology whose store reports invalidations that the test publishes, standing in for the Redis
 * bus or a cluster broadcast: two caches share one Memory backend, as two processes share Redis.
 */
const emitting = Effect.gen(function*() {
  const backend = yield* Memory.make()
  const changes = yield* PubSub.unbounded<Backend.Invalidation>()
  // While set, a read of L2 waits for it with its answer: a test holds a near cache's read there while
  // changes land, as a slow network holds an answer that a change overtakes.
  let gate: Deferred.Deferred<void> | undefined
  const topology = Topology.Topology.of({
    name: "emitting",
    open: (options) =>
      Effect.map(backend.open(options), (store) => ({
        ...store,
        get: (key: string) =>
          Effect.suspend(() => {
            const held = gate
            return held ? Effect.tap(store.get(key), () => Deferred.await(held)) : store.get(key)
          }),
        invalidations: Stream.fromPubSub(changes)
      }))
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
  /** Runs `near.getOption(key)` with L2's answer held while `meanwhile` runs; returns what it answered. */
  const readAcross = <E>(key: string, meanwhile: Effect.Effect<void, E>) =>
    Effect.gen(function*() {
      const held = yield* Deferred.make<void>()
      gate = held
      const read = yield* Effect.fork(near.getOption(key))
      yield* Effect.repeatN(Effect.yieldNow(), 5)
      yield* meanwhile
      gate = undefined
      yield* Deferred.succeed(held, undefined)
      return yield* Fiber.join(read)
    })
  return { near, elsewhere, publish, readAcross }
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

  it.scoped("a read keeps what L2 answered when only other keys changed while it waited", () =>
    Effect.gen(function*() {
      const { elsewhere, near, publish, readAcross } = yield* emitting
      yield* elsewhere.put("a", "a1")
      const answered = yield* readAcross(
        "a",
        Effect.zipRight(near.put("b", "b1"), publish({ _tag: "Keys", keys: ["c"] }))
      )
      assert.deepStrictEqual(answered, Option.some("a1"))
      yield* elsewhere.put("a", "a2")
      assert.strictEqual(yield* near.get("a"), "a1", "promoted to L1")
    }))

  it.scoped("a read keeps nothing when its key, or everything, changed while it waited", () =>
    Effect.gen(function*() {
      const { elsewhere, near, publish, readAcross } = yield* emitting
      const changes = {
        "the key reported": publish({ _tag: "Keys", keys: ["a"] }),
        "the key written here": near.delete("a"),
        "a tag": publish({ _tag: "Tag", tag: "t" }),
        "a flush": publish({ _tag: "Flush" }),
        // Past the bound of marked keys, the key's own mark is gone: everything counts as changed.
        "the key, then 2,000 others": Effect.zipRight(
          publish({ _tag: "Keys", keys: ["a"] }),
          Effect.forEach(Array.from({ length: 2_000 }, (_, i) => `other${i}`), (key) => near.put(key, "x"), {
            discard: true
          })
        )
      }
      for (const [name, change] of Object.entries(changes)) {
        yield* elsewhere.put("a", "a1")
        assert.deepStrictEqual(yield* readAcross("a", change), Option.some("a1"), name)
        yield* elsewhere.put("a", "a2")
        assert.strictEqual(yield* near.get("a"), "a2", `${name}: nothing promoted`)
        yield* near.delete("a")
      }
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
