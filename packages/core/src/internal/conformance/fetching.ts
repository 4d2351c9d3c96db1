/** The conformance suite's cases on `getOrFetch` (`testing.ts` registers them). */
import type { Vitest } from "@effect/vitest"
import { assert } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import type { Topology } from "../../Topology.js"
import { eventually, failureTag, fetchInFlight, fresh, realSleep } from "./model.js"

/** A hit never fetches, misses coalesce, failures are shared; ttl, tags and grace apply to what is fetched. */
export const getOrFetch = (it: Vitest.MethodsNonLive<Topology>, timeout: number): void => {
  it.effect(
    "getOrFetch: a hit never fetches; concurrent misses fetch once; failures are shared, not cached",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const cache = yield* fresh<string>()
        let runs = 0
        yield* cache.put("hit", "cached")
        assert.strictEqual(yield* cache.getOrFetch("hit", () => Effect.sync(() => `${++runs}`)), "cached")
        assert.strictEqual(runs, 0)

        // The clock moves only once the fetch is asleep: over a network it starts later.
        const slowStarted = yield* Deferred.make<void>()
        const slow = () =>
          Effect.zipRight(
            Deferred.succeed(slowStarted, undefined),
            Effect.as(Effect.sleep("50 millis"), `${++runs}`)
          )
        const fiber = yield* Effect.fork(Effect.all(
          Array.from({ length: 50 }, () => cache.getOrFetch("cold", slow)),
          { concurrency: "unbounded" }
        ))
        yield* Deferred.await(slowStarted)
        yield* Effect.repeatN(Effect.yieldNow(), 5)
        yield* TestClock.adjust("50 millis")
        const values = yield* fiber
        assert.deepStrictEqual(new Set(values), new Set(["1"]))
        assert.strictEqual(yield* cache.get("cold"), "1")

        const boom = new Error("source down")
        let failures = 0
        const failingStarted = yield* Deferred.make<void>()
        const failing = () =>
          Deferred.succeed(failingStarted, undefined).pipe(
            Effect.zipRight(Effect.sleep("10 millis")),
            Effect.zipRight(Effect.fail(Object.assign(boom, { n: ++failures })))
          )
        const failed = yield* Effect.fork(Effect.all(
          Array.from({ length: 10 }, () => Effect.flip(cache.getOrFetch("bad", failing))),
          { concurrency: "unbounded" }
        ))
        yield* Deferred.await(failingStarted)
        yield* Effect.repeatN(Effect.yieldNow(), 5)
        yield* TestClock.adjust("10 millis")
        const errors = yield* failed
        assert.strictEqual(failures, 1)
        for (const error of errors) assert.strictEqual(error, boom)
        assert.isFalse(yield* cache.exists("bad"))
        assert.strictEqual(yield* cache.getOrFetch("bad", () => Effect.succeed("recovered")), "recovered")

        const stats = yield* cache.stats()
        assert.strictEqual(stats.fetches, 3)
        assert.strictEqual(stats.fetchErrors, 1)
        assert.strictEqual(stats.coalesced, 49 + 9)
      })),
    timeout
  )

  it.effect(
    "getOrFetch applies ttl and tags; an undefined result is returned, not cached",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const cache = yield* fresh<string | undefined>()
        yield* cache.getOrFetch("k", () => Effect.succeed("v"), { ttl: "1 second", tags: ["group"] })
        assert.strictEqual(yield* cache.invalidateTag("group"), 1)
        yield* cache.getOrFetch("k", () => Effect.succeed("v"), { ttl: "1 second" })
        yield* TestClock.adjust("1 second")
        assert.isFalse(yield* cache.exists("k"))
        assert.isUndefined(yield* cache.getOrFetch("u", () => Effect.succeed(undefined)))
        assert.isFalse(yield* cache.exists("u"))
      })),
    timeout
  )

  it.effect(
    "stale-while-revalidate: a stale value kept through the store, then refreshed",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const cache = yield* fresh<{ readonly n: number }>()
        let runs = 0
        const fetch = () => Effect.sync(() => ({ n: ++runs }))
        const options = { ttl: 1_000, grace: "1 minute" } as const
        assert.deepStrictEqual(yield* cache.getOrFetch("k", fetch, options), { n: 1 })
        yield* TestClock.adjust(1_000)
        assert.isTrue(Option.isNone(yield* cache.getOption("k")), "stale is expired for plain reads")
        assert.deepStrictEqual(yield* cache.getOrFetch("k", fetch, options), { n: 1 }, "the stale value")
        // The refresh runs in the background; its write may take real I/O time to land.
        const refreshed = yield* eventually(Effect.flatten(cache.getOption("k")))
        assert.deepStrictEqual(refreshed, { n: 2 })
      })),
    timeout
  )
}

/** Fetches in flight: the stampede timeout lets go of a key, a write wins over a fetch, joined callers count. */
export const inFlight = (it: Vitest.MethodsNonLive<Topology>, timeout: number): void => {
  it.effect(
    "getOrFetch: a fetch still running after stampedeTimeout lets go of its key; its late result is not written",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const cache = yield* fresh<string>({ stampedeTimeout: "1 second" })
        const hungStarted = yield* Deferred.make<void>()
        const hung = yield* Effect.fork(
          cache.getOrFetch("k", () => Effect.zipRight(Deferred.succeed(hungStarted, undefined), Effect.never))
        )
        yield* Deferred.await(hungStarted)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* failureTag(Fiber.join(hung)), "FetchTimeout")
        // The next caller fetches afresh, without waiting for the hung fetch.
        assert.strictEqual(yield* cache.getOrFetch("k", () => Effect.succeed("fresh")), "fresh")
        assert.strictEqual(yield* cache.get("k"), "fresh")

        // A fetch that cannot be interrupted still does not store what it brings back late.
        const lateStarted = yield* Deferred.make<void>()
        const slow = () =>
          Effect.zipRight(
            Deferred.succeed(lateStarted, undefined),
            Effect.uninterruptible(Effect.as(Effect.sleep("3 seconds"), "late"))
          )
        const late = yield* Effect.fork(cache.getOrFetch("late", slow))
        yield* Deferred.await(lateStarted)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* failureTag(Fiber.join(late)), "FetchTimeout")
        yield* TestClock.adjust("2 seconds")
        yield* realSleep(50)
        assert.isFalse(yield* cache.exists("late"))
        assert.strictEqual(yield* cache.getOrFetch("late", () => Effect.succeed("again")), "again")
      })),
    timeout
  )

  it.effect(
    "getOrFetch: a put or delete wins over a fetch already in flight",
    () =>
      Effect.scoped(Effect.gen(function*() {
        for (const protection of [true, false]) {
          const cache = yield* fresh<string>({ stampedeProtection: protection })
          const put = yield* fetchInFlight(cache, "put", "fetched")
          yield* cache.put("put", "written")
          assert.strictEqual(yield* cache.getOrFetch("put", () => Effect.succeed("other")), "written")
          yield* put.finish
          assert.strictEqual(yield* Fiber.join(put.fiber), "fetched", "its own callers get the fetched value")
          assert.strictEqual(yield* cache.get("put"), "written", `protection ${protection}: put kept`)

          const deleted = yield* fetchInFlight(cache, "deleted", "fetched")
          yield* cache.delete("deleted")
          yield* deleted.finish
          yield* Fiber.join(deleted.fiber)
          assert.isFalse(yield* cache.exists("deleted"), `protection ${protection}: delete kept`)
        }
      })),
    timeout
  )

  it.effect(
    "stats: every getOrFetch call counts one hit or one miss, joined callers included",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const cache = yield* fresh<string>()
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const fetch = () =>
          Deferred.succeed(started, undefined).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as("v"))
        const callers = yield* Effect.fork(Effect.all(
          Array.from({ length: 10 }, () => cache.getOrFetch("cold", fetch)),
          { concurrency: "unbounded" }
        ))
        yield* Deferred.await(started)
        // Over a network every caller reads first; open the gate once all ten have joined.
        yield* eventually(Effect.filterOrFail(cache.stats(), (stats) => stats.coalesced === 9))
        yield* Deferred.succeed(gate, undefined)
        assert.deepStrictEqual(yield* Fiber.join(callers), Array(10).fill("v"))
        for (let i = 0; i < 5; i++) yield* cache.getOrFetch("cold", fetch)
        const stats = yield* cache.stats()
        assert.deepStrictEqual(
          [stats.misses, stats.hits, stats.fetches, stats.coalesced, stats.writes],
          [10, 5, 1, 9, 1]
        )
      })),
    timeout
  )
}
