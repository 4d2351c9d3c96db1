import { assert, describe, it } from "@effect/vitest"
import { Memory, Topology, Vela } from "@vela/core"
import type { Duration } from "effect"
import { Deferred, Effect, Fiber, Layer, TestClock } from "effect"

/**
 * A cache whose store answers like a remote one: a Memory store without its synchronous view, whose
 * reads take 1 ms of the test clock (a network round trip) and are counted.
 */
const remote = (config: Vela.Config<string> = {}) =>
  Effect.gen(function*() {
    const backend = yield* Memory.make()
    let reads = 0
    const topology = Topology.Topology.of({
      name: "remote",
      open: (options) =>
        Effect.map(backend.open(options), (store) => ({
          ...store,
          sync: undefined,
          get: (key: string) =>
            Effect.zipRight(
              Effect.sync(() => reads++),
              Effect.delay(store.get(key), "1 millis")
            )
        }))
    })
    const cache = yield* Vela.make<string>({ ...config, name: "remote" }).pipe(
      Effect.provide(Layer.succeed(Topology.Topology, topology))
    )
    return { cache, reads: () => reads }
  })

/** Lets the forked callers run up to their sleeps, then moves the test clock. */
const tick = (duration: Duration.DurationInput) =>
  Effect.zipRight(Effect.repeatN(Effect.yieldNow(), 20), TestClock.adjust(duration))

describe("getOrFetch over a store that must be asked", () => {
  it.scoped("a burst of callers of a cold key reads the store once and fetches once; each caller counted once", () =>
    Effect.gen(function*() {
      const { cache, reads } = yield* remote()
      let fetches = 0
      const started = yield* Deferred.make<void>()
      const fetch = () =>
        Effect.zipRight(Deferred.succeed(started, undefined), Effect.as(Effect.sleep("20 millis"), `v${++fetches}`))
      const burst = yield* Effect.fork(Effect.all(
        Array.from({ length: 100 }, () => cache.getOrFetch("k", fetch)),
        { concurrency: "unbounded" }
      ))
      yield* tick("1 millis")
      yield* Deferred.await(started)
      yield* tick("20 millis")
      assert.deepStrictEqual(new Set(yield* Fiber.join(burst)), new Set(["v1"]))
      assert.strictEqual(fetches, 1)
      assert.strictEqual(reads(), 1, "one read for the whole burst")
      const stats = yield* cache.stats()
      assert.deepStrictEqual([stats.misses, stats.hits, stats.coalesced], [100, 0, 99])
    }))

  it.scoped("callers that join a read that hits count as hits, not misses", () =>
    Effect.gen(function*() {
      const { cache, reads } = yield* remote()
      yield* cache.put("k", "v")
      const burst = yield* Effect.fork(Effect.all(
        Array.from({ length: 10 }, () => cache.getOrFetch("k", () => Effect.succeed("fetched"))),
        { concurrency: "unbounded" }
      ))
      yield* tick("1 millis")
      assert.deepStrictEqual(yield* Fiber.join(burst), Array(10).fill("v"))
      assert.strictEqual(reads(), 1)
      const stats = yield* cache.stats()
      assert.deepStrictEqual([stats.hits, stats.misses, stats.fetches, stats.coalesced], [10, 0, 0, 0])
    }))

  it.scoped("a hung fetch: every caller gets FetchTimeout after stampedeTimeout, and the key is free again", () =>
    Effect.gen(function*() {
      const { cache } = yield* remote({ stampedeTimeout: "1 second" })
      const burst = yield* Effect.fork(Effect.all(
        Array.from({ length: 10 }, () => Effect.flip(cache.getOrFetch("k", () => Effect.never))),
        { concurrency: "unbounded" }
      ))
      yield* tick("1 millis")
      yield* tick("1 second")
      for (const error of yield* Fiber.join(burst)) assert.strictEqual(error._tag, "FetchTimeout")
      const again = yield* Effect.fork(cache.getOrFetch("k", () => Effect.succeed("v")))
      yield* tick("1 millis")
      assert.strictEqual(yield* Fiber.join(again), "v")
    }))

  it.scoped("callers holding a stale value get it when the refresh outlasts stampedeTimeout, not FetchTimeout", () =>
    Effect.gen(function*() {
      const { cache } = yield* remote({ stampedeTimeout: "1 second", softTimeout: "5 seconds" })
      const options = { ttl: 1_000, grace: "1 minute" } as const
      const first = yield* Effect.fork(cache.getOrFetch("k", () => Effect.succeed("v1"), options))
      yield* tick("1 millis")
      assert.strictEqual(yield* Fiber.join(first), "v1")
      yield* tick("1 second")
      const burst = yield* Effect.fork(Effect.all(
        Array.from({ length: 10 }, () => cache.getOrFetch("k", () => Effect.never, options)),
        { concurrency: "unbounded" }
      ))
      yield* tick("1 millis")
      yield* tick("1 second")
      assert.deepStrictEqual(yield* Fiber.join(burst), Array(10).fill("v1"))
    }))

  it.scoped("callers waiting on a read whose caller is interrupted read again themselves", () =>
    Effect.gen(function*() {
      const { cache, reads } = yield* remote()
      yield* cache.put("k", "v")
      const first = yield* Effect.fork(cache.getOrFetch("k", () => Effect.succeed("fetched")))
      yield* Effect.repeatN(Effect.yieldNow(), 20)
      const joiners = yield* Effect.fork(Effect.all(
        Array.from({ length: 5 }, () => cache.getOrFetch("k", () => Effect.succeed("fetched"))),
        { concurrency: "unbounded" }
      ))
      yield* Effect.repeatN(Effect.yieldNow(), 20)
      yield* Fiber.interrupt(first)
      yield* tick("1 millis")
      assert.deepStrictEqual(yield* Fiber.join(joiners), Array(5).fill("v"))
      assert.strictEqual(reads(), 2, "the interrupted read, then one read for the five")
      assert.strictEqual((yield* cache.stats()).hits, 5)
    }))

  it.scoped("a put while a caller waits on its read and fetch: later callers read afresh, the fetch stores nothing", () =>
    Effect.gen(function*() {
      const { cache } = yield* remote()
      const gate = yield* Deferred.make<void>()
      const waiting = yield* Effect.fork(cache.getOrFetch("k", () => Effect.as(Deferred.await(gate), "fetched")))
      yield* tick("1 millis")
      yield* cache.put("k", "written")
      const later = yield* Effect.fork(cache.getOrFetch("k", () => Effect.succeed("other")))
      yield* tick("1 millis")
      assert.strictEqual(yield* Fiber.join(later), "written")
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(waiting), "fetched")
      const stored = yield* Effect.fork(cache.get("k"))
      yield* tick("1 millis")
      assert.strictEqual(yield* Fiber.join(stored), "written", "the fetch let go of by the put stores nothing")
    }))
})
