/**
 * The conformance suite every backend and topology must pass, written once as a function of a
 * `Topology` layer (with its backend provided), as bentocache exports its driver suite. It drives
 * random sequences of operations and `TestClock` moves against a plain reference model, then checks
 * the error cases and the semantics API.md promises.
 *
 * ```ts
 * import { conformance } from "@vela/core/testing"
 * conformance("Sqlite file", Local.layer.pipe(Layer.provide(Sqlite.layer({ filename }))))
 * ```
 *
 * It needs `vitest` and `@effect/vitest` (peer dependencies of this entry only).
 */
import { assert, describe, layer } from "@effect/vitest"
import type { Layer } from "effect"
import { Clock, Deferred, Effect, FastCheck as fc, Fiber, Option, TestClock } from "effect"
import type { EvictionPolicy, OpenOptions } from "./Backend.js"
import * as Codec from "./Codec.js"
import {
  command,
  eventually,
  failureOf,
  failureTag,
  fresh,
  realSleep,
  runModel,
  uniqueName,
  User
} from "./internal/conformance.js"
import type { Topology } from "./Topology.js"
import * as Vela from "./Vela.js"

export interface ConformanceOptions {
  /** Property runs per case (default 40). */
  readonly runs?: number | undefined
  /** Also check eviction against the model, with this bound and policy. */
  readonly eviction?: { readonly maxSize: number; readonly policy: EvictionPolicy } | undefined
  /** Per-test timeout in milliseconds (default 60,000). */
  readonly timeout?: number | undefined
}

/** Registers the suite under `describe(label)`; every case makes caches with fresh names. */
export const conformance = <E>(
  label: string,
  topology: Layer.Layer<Topology, E>,
  options: ConformanceOptions = {}
): void => {
  const runs = options.runs ?? 40
  const timeout = options.timeout ?? 60_000
  const eviction = options.eviction

  describe(label, () => {
    layer(topology, { timeout: "60 seconds" })((it) => {
      it.effect.prop(
        "agrees with a reference model on random operations",
        [fc.array(command, { minLength: 1, maxLength: 60 })],
        ([commands]) => Effect.scoped(runModel(commands, eviction)),
        { timeout, fastCheck: { numRuns: runs } }
      )

      it.effect(
        "keys: empty, too long, not a string are InvalidKey; the cache keeps working",
        () =>
          Effect.scoped(Effect.gen(function*() {
            const cache = yield* fresh<string>()
            for (const key of ["", "x".repeat(8_193), 42 as unknown as string, undefined as unknown as string]) {
              assert.strictEqual(yield* failureTag(cache.get(key)), "InvalidKey")
              assert.strictEqual(yield* failureTag(cache.put(key, "v")), "InvalidKey")
              assert.strictEqual(yield* failureTag(cache.delete(key)), "InvalidKey")
              assert.strictEqual(yield* failureTag(cache.exists(key)), "InvalidKey")
              assert.strictEqual(yield* failureTag(cache.getOrFetch(key, () => Effect.succeed("v"))), "InvalidKey")
            }
            const longest = "k".repeat(8_192)
            yield* cache.put(longest, "v")
            assert.strictEqual(yield* cache.get(longest), "v")
          })),
        timeout
      )

      it.effect(
        "ttl of 0, negative, NaN or malformed is ConfigError { field: ttl }",
        () =>
          Effect.scoped(Effect.gen(function*() {
            const cache = yield* fresh<string>()
            for (const ttl of [0, -5, NaN, "soon", "-1 seconds"]) {
              const exit = yield* Effect.exit(cache.put("k", "v", { ttl: ttl as number }))
              assert.deepStrictEqual(failureOf(exit), { _tag: "ConfigError", field: "ttl" })
            }
            assert.isFalse(yield* cache.exists("k"))
          })),
        timeout
      )

      it.effect(
        "null, 0, empty string and false are values; undefined is a CodecError",
        () =>
          Effect.scoped(Effect.gen(function*() {
            const cache = yield* fresh<unknown>()
            for (const [key, value] of [["null", null], ["zero", 0], ["empty", ""], ["false", false]] as const) {
              yield* cache.put(key, value)
              assert.strictEqual(yield* cache.get(key), value)
              assert.isTrue(yield* cache.exists(key))
            }
            const exit = yield* Effect.exit(cache.put("u", undefined))
            assert.deepStrictEqual(failureOf(exit), { _tag: "CodecError", direction: "encode" })
          })),
        timeout
      )

      it.effect("structured values round-trip", () =>
        Effect.scoped(Effect.gen(function*() {
          const cache = yield* fresh<unknown>()
          const value = {
            name: "Ada",
            born: new Date(Date.UTC(1815, 11, 10)),
            bytes: new Uint8Array([0, 1, 255]),
            big: BigInt("123456789012345678901234567890"),
            map: new Map<unknown, unknown>([["a", 1], [2, ["b"]]]),
            set: new Set(["x", "y"]),
            nested: [{ deep: { deeper: [1, 2.5, -3, "ü 字 🚀"] } }]
          }
          yield* cache.put("v", value)
          assert.deepStrictEqual(yield* cache.get("v"), value)
        })), timeout)

      it.effect("a value Schema round-trips its class instances", () =>
        Effect.scoped(Effect.gen(function*() {
          const cache = yield* fresh<User, { readonly id: string; readonly since: string }>({ value: User })
          const user = new User({ id: "u1", since: new Date(1_700_000_000_000) })
          yield* cache.put("u1", user)
          const back = yield* cache.get("u1")
          assert.instanceOf(back, User)
          assert.deepStrictEqual(back, user)
        })), timeout)

      it.effect(
        "namespaces: cache a key b:c and cache a:b key c are different entries",
        () =>
          Effect.scoped(Effect.gen(function*() {
            const base = uniqueName()
            const a = yield* Vela.make<string>({ name: base })
            const ab = yield* Vela.make<string>({ name: `${base}:b` })
            yield* a.put("b:c", "from a")
            yield* ab.put("c", "from a:b")
            assert.strictEqual(yield* a.get("b:c"), "from a")
            assert.strictEqual(yield* ab.get("c"), "from a:b")
            yield* ab.flush()
            assert.strictEqual(yield* a.get("b:c"), "from a")
            assert.strictEqual(yield* a.size(), 1)
            assert.strictEqual(yield* a.invalidateTag("none"), 0)
          })),
        timeout
      )

      it.effect(
        "keys are compared exactly: separators, spaces and unicode are ordinary characters",
        () =>
          Effect.scoped(Effect.gen(function*() {
            const cache = yield* fresh<string>()
            const keys = ["a", "a ", " a", "a:b", "a:b:", "ä", "a\u0308", "🚀", "a*", "a?", "[a]", "%", "\\"]
            yield* Effect.forEach(keys, (key) => cache.put(key, key))
            for (const key of keys) assert.strictEqual(yield* cache.get(key), key)
            assert.strictEqual(yield* cache.size(), keys.length)
            yield* cache.delete("a*")
            assert.strictEqual(yield* cache.size(), keys.length - 1)
            assert.strictEqual(yield* cache.get("a"), "a")
          })),
        timeout
      )

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

      it.effect(
        "ttl: a finite ttl too long for any clock (over 2^53 - 1 ms) means no expiry, on every backend",
        () =>
          Effect.scoped(Effect.gen(function*() {
            // A sweep every 24 days, so that moving the clock a year runs it only a few times.
            const cache = yield* fresh<string>({ sweepInterval: "24 days" })
            const huge = [2 ** 53, 1e19, 1e308, Number.MAX_VALUE]
            for (const [i, ttl] of huge.entries()) yield* cache.put(`put${i}`, "v", { ttl })
            yield* cache.putMany(huge.map((_, i) => [`many${i}`, "v"] as const), { ttl: 1e19 })
            yield* cache.getOrFetch("fetched", () => Effect.succeed("v"), { ttl: 1e19 })
            const defaulted = yield* fresh<string>({ defaultTtl: 1e308, sweepInterval: "24 days" })
            yield* defaulted.put("k", "v")
            yield* TestClock.adjust("365 days")
            assert.strictEqual(yield* cache.size(), 2 * huge.length + 1)
            assert.strictEqual(yield* defaulted.get("k"), "v")
          })),
        timeout
      )

      it.effect(
        "keys and tags that are not well-formed UTF-16 (a lone surrogate) are InvalidKey and ConfigError",
        () =>
          Effect.scoped(Effect.gen(function*() {
            const cache = yield* fresh<string>()
            for (const key of ["\ud800", "\udfff", "a\ud83d", "\ude80b"]) {
              assert.strictEqual(yield* failureTag(cache.put(key, "v")), "InvalidKey")
              assert.strictEqual(yield* failureTag(cache.get(key)), "InvalidKey")
              assert.strictEqual(yield* failureTag(cache.getOrFetch(key, () => Effect.succeed("v"))), "InvalidKey")
              assert.strictEqual(yield* failureTag(cache.putMany([[key, "v"]])), "InvalidKey")
            }
            const exit = yield* Effect.exit(cache.put("k", "v", { tags: ["\ud800"] }))
            assert.deepStrictEqual(failureOf(exit), { _tag: "ConfigError", field: "tags" })
            yield* cache.put("\ud83d\ude80", "paired")
            assert.strictEqual(yield* cache.get("\ud83d\ude80"), "paired")
            assert.strictEqual(yield* cache.size(), 1)
          })),
        timeout
      )

      it.effect("a value with an own __proto__ key round-trips", () =>
        Effect.scoped(Effect.gen(function*() {
          const cache = yield* fresh<unknown>()
          const value = JSON.parse(`{"__proto__":{"admin":true},"n":1,"list":[{"__proto__":2}]}`)
          yield* cache.put("p", value)
          const back = yield* cache.get("p") as Effect.Effect<Record<string, unknown>, unknown>
          assert.deepStrictEqual(Object.keys(back), ["__proto__", "n", "list"])
          assert.deepStrictEqual(Object.getOwnPropertyDescriptor(back, "__proto__")?.value, { admin: true })
          assert.strictEqual(Object.getPrototypeOf(back), Object.prototype)
          assert.deepStrictEqual(JSON.stringify(back), JSON.stringify(value))
        })), timeout)

      it.effect("a closed cache fails every call with CacheClosed", () =>
        Effect.gen(function*() {
          const cache = yield* Effect.scoped(fresh<string>())
          const calls: ReadonlyArray<Effect.Effect<unknown, unknown>> = [
            cache.get("k"),
            cache.getOption("k"),
            cache.put("k", "v"),
            cache.delete("k"),
            cache.exists("k"),
            cache.flush(),
            cache.size(),
            cache.invalidateTag("t"),
            cache.getOrFetch("k", () => Effect.succeed("v"))
          ]
          for (const call of calls) assert.strictEqual(yield* failureTag(call), "CacheClosed")
        }), timeout)
    })
  })
}

/**
 * A `getOrFetch(key)` on `cache` whose fetch, once running, waits until `finish` and then yields
 * `value`: for tests of what happens while a fetch is in flight. Returns once the fetch runs.
 */
export const fetchInFlight = <V>(cache: Vela.Cache<V>, key: string, value: V) =>
  Effect.gen(function*() {
    const started = yield* Deferred.make<void>()
    const gate = yield* Deferred.make<void>()
    const fiber = yield* Effect.fork(cache.getOrFetch(key, () =>
      Deferred.succeed(started, undefined).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as(value))))
    yield* Deferred.await(started)
    return { fiber, finish: Deferred.succeed(gate, undefined) }
  })

/**
 * The options a cache would open `namespace` with: the JSON codec, no bound, no hooks. For tests that
 * drive a `Store` directly.
 */
export const openOptions = (namespace: string, clock: Clock.Clock = Clock.make()): OpenOptions => ({
  namespace,
  clock,
  codec: Codec.json,
  maxSize: Infinity,
  evictionPolicy: "ttl-only",
  onEvict: () => {},
  onExpire: () => {}
})
