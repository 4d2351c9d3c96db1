import { assert, describe, it } from "@effect/vitest"
import { Local, Memory, Vela } from "@vela/core"
import { Effect, FastCheck as fc, Fiber, Layer, Option, TestClock } from "effect"

const make = (config: Vela.Config<string> = {}) =>
  Vela.make<string>({ ...config, name: "swr" }).pipe(Effect.provide(Local.layer.pipe(Layer.provide(Memory.layer()))))

/** A source whose answers and delays the test controls, counting its calls. */
const source = () => {
  let calls = 0
  let delay = 0
  let failing = false
  return {
    fetch: () =>
      Effect.suspend(() => {
        const n = ++calls
        const answer = failing ? Effect.fail(new Error("source down")) : Effect.succeed(`v${n}`)
        return delay === 0 ? answer : Effect.zipRight(Effect.sleep(delay), answer)
      }),
    calls: () => calls,
    slow: (millis: number) => delay = millis,
    down: (isDown: boolean) => failing = isDown
  }
}

describe("stale-while-revalidate", () => {
  it.scoped("serves the stale value at once and refreshes it in the background", () =>
    Effect.gen(function*() {
      const cache = yield* make()
      const db = source()
      const options = { ttl: "1 second", grace: "10 seconds" } as const
      assert.strictEqual(yield* cache.getOrFetch("k", db.fetch, options), "v1")
      yield* TestClock.adjust("1 second")
      assert.isTrue(Option.isNone(yield* cache.getOption("k")), "plain reads see a stale entry as expired")
      db.slow(100)
      assert.strictEqual(yield* cache.getOrFetch("k", db.fetch, options), "v1", "stale, without waiting")
      assert.strictEqual(yield* cache.getOrFetch("k", db.fetch, options), "v1", "the refresh is still running")
      yield* TestClock.adjust(100)
      assert.strictEqual(yield* cache.get("k"), "v2")
      assert.strictEqual(db.calls(), 2)
      const stats = yield* cache.stats()
      assert.deepStrictEqual([stats.staleHits, stats.refreshes, stats.fetches], [2, 1, 2])
    }))

  it.scoped("waits up to softTimeout for the refresh, then takes the stale value", () =>
    Effect.gen(function*() {
      const cache = yield* make({ grace: "1 minute", softTimeout: 100 })
      const db = source()
      yield* cache.getOrFetch("k", db.fetch, { ttl: 1_000 })
      yield* TestClock.adjust(1_000)
      db.slow(50)
      const quick = yield* Effect.fork(cache.getOrFetch("k", db.fetch, { ttl: 1_000 }))
      yield* TestClock.adjust(50)
      assert.strictEqual(yield* Fiber.join(quick), "v2", "the refresh finished within softTimeout")
      yield* TestClock.adjust(1_000)
      db.slow(500)
      const slow = yield* Effect.fork(cache.getOrFetch("k", db.fetch, { ttl: 1_000 }))
      yield* TestClock.adjust(100)
      assert.strictEqual(yield* Fiber.join(slow), "v2", "stale after softTimeout")
      yield* TestClock.adjust(400)
      assert.strictEqual(yield* cache.get("k"), "v3")
    }))

  it.scoped("a failed refresh serves the stale value and backs off before trying again", () =>
    Effect.gen(function*() {
      const cache = yield* make({ grace: "1 minute", refreshBackoff: "5 seconds" })
      const db = source()
      yield* cache.getOrFetch("k", db.fetch, { ttl: 1_000 })
      yield* TestClock.adjust(1_000)
      db.down(true)
      assert.strictEqual(yield* cache.getOrFetch("k", db.fetch), "v1")
      yield* Effect.repeatN(Effect.yieldNow(), 5)
      assert.strictEqual(yield* cache.getOrFetch("k", db.fetch), "v1")
      assert.strictEqual(db.calls(), 2, "no retry during the backoff")
      yield* TestClock.adjust("5 seconds")
      db.down(false)
      yield* cache.getOrFetch("k", db.fetch)
      yield* Effect.repeatN(Effect.yieldNow(), 5)
      assert.strictEqual(db.calls(), 3)
      assert.strictEqual(yield* cache.get("k"), "v3")
      const stats = yield* cache.stats()
      assert.deepStrictEqual([stats.refreshErrors, stats.fetchErrors, stats.staleHits], [1, 1, 3])
    }))

  it.scoped("a failed refresh's backoff goes with its entry: delete, deleteMany, flush and a put end it", () =>
    Effect.gen(function*() {
      const cache = yield* make({ grace: "1 minute", refreshBackoff: "1 hour" })
      const db = source()
      const removals = [
        cache.delete("k"),
        cache.deleteMany(["k"]),
        cache.flush(),
        cache.invalidateTag("t"),
        cache.put("k", "put", { ttl: 1 })
      ]
      for (const remove of removals) {
        yield* cache.getOrFetch("k", db.fetch, { ttl: 1_000, tags: ["t"] })
        yield* TestClock.adjust(1_000)
        db.down(true)
        yield* cache.getOrFetch("k", db.fetch)
        yield* Effect.repeatN(Effect.yieldNow(), 5)
        const failed = db.calls()
        yield* remove
        db.down(false)
        // The next stale entry of the key is refreshed at once, not held back by the old backoff.
        yield* TestClock.adjust(1)
        yield* cache.getOrFetch("k", db.fetch, { ttl: 1_000, tags: ["t"] })
        yield* TestClock.adjust(1_000)
        yield* cache.getOrFetch("k", db.fetch, { ttl: 1_000, tags: ["t"] })
        yield* Effect.repeatN(Effect.yieldNow(), 5)
        assert.strictEqual(db.calls(), failed + 2, "fetched after the removal, then refreshed")
        yield* cache.delete("k")
      }
    }))

  it.scoped("once the grace is over the entry is gone and the next call waits for the fetch", () =>
    Effect.gen(function*() {
      const cache = yield* make()
      const db = source()
      yield* cache.getOrFetch("k", db.fetch, { ttl: 1_000, grace: 1_000 })
      yield* TestClock.adjust(2_000)
      assert.strictEqual(yield* cache.getOrFetch("k", db.fetch, { ttl: 1_000, grace: 1_000 }), "v2")
      assert.strictEqual((yield* cache.stats()).staleHits, 0)
    }))

  it.scoped("a fetch slower than hardTimeout fails with FetchTimeout and caches nothing", () =>
    Effect.gen(function*() {
      const cache = yield* make()
      const db = source()
      db.slow(1_000)
      const fiber = yield* Effect.fork(Effect.flip(cache.getOrFetch("k", db.fetch, { hardTimeout: 300 })))
      yield* TestClock.adjust(300)
      const error = (yield* Fiber.join(fiber)) as { _tag?: string; timeout?: number }
      assert.deepStrictEqual([error._tag, error.timeout], ["FetchTimeout", 300])
      yield* TestClock.adjust(1_000)
      assert.isFalse(yield* cache.exists("k"))
    }))

  it.scoped("cacheIf keeps values out, or caches them with their own TTL", () =>
    Effect.gen(function*() {
      const cache = yield* make({ defaultTtl: "1 hour" })
      const empty = () => Effect.succeed("")
      assert.strictEqual(yield* cache.getOrFetch("a", empty, { cacheIf: (v) => v !== "" }), "")
      assert.isFalse(yield* cache.exists("a"))
      yield* cache.getOrFetch("b", empty, { cacheIf: (v) => v === "" ? "10 seconds" : true })
      yield* TestClock.adjust("10 seconds")
      assert.isFalse(yield* cache.exists("b"), "the negative entry had its own TTL")
      const error = (yield* Effect.flip(cache.getOrFetch("c", empty, { grace: -1 }))) as { field?: string }
      assert.strictEqual(error.field, "grace")
    }))
})

describe("stale-while-revalidate against a model", () => {
  it.effect.prop(
    "returns fresh values, stale ones only within grace, and refreshes each stale read once",
    [
      fc.array(
        fc.oneof(
          fc.record({ op: fc.constant("fetch" as const) }),
          fc.record({ op: fc.constant("adjust" as const), millis: fc.constantFrom(1, 50, 99, 100, 150, 400) })
        ),
        { maxLength: 40 }
      )
    ],
    ([ops]) =>
      Effect.scoped(Effect.gen(function*() {
        const ttl = 100
        const grace = 200
        const cache = yield* make({ grace })
        let version = 0
        const fetch = () => Effect.sync(() => `v${++version}`)
        // The model: the stored value, until when it is fresh, until when it is kept.
        let stored: { value: string; freshUntil: number; keptUntil: number } | undefined
        let now = 0
        for (const op of ops) {
          if (op.op === "adjust") {
            yield* TestClock.adjust(op.millis)
            now += op.millis
            continue
          }
          const got = yield* cache.getOrFetch("k", fetch, { ttl })
          if (stored !== undefined && now < stored.freshUntil) {
            assert.strictEqual(got, stored.value, "fresh")
          } else if (stored !== undefined && now < stored.keptUntil) {
            assert.strictEqual(got, stored.value, "stale within grace, served at once")
            yield* Effect.repeatN(Effect.yieldNow(), 10)
            stored = { value: `v${version}`, freshUntil: now + ttl, keptUntil: now + ttl + grace }
            assert.strictEqual(yield* cache.get("k"), stored.value, "refreshed in the background")
          } else {
            assert.strictEqual(got, `v${version}`, "a miss waits for the fetch")
            stored = { value: got, freshUntil: now + ttl, keptUntil: now + ttl + grace }
          }
        }
      })),
    { fastCheck: { numRuns: 60 } }
  )
})
