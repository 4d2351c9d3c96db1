/** The conformance suite's cases on keys, values, TTLs and namespaces (`testing.ts` registers them). */
import type { Vitest } from "@effect/vitest"
import { assert } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import type { Topology } from "../../Topology.js"
import * as Vela from "../../Vela.js"
import { failureOf, failureTag, fresh, uniqueName, User } from "./model.js"

/** Keys, values and namespaces: what one backend accepts, every backend accepts and returns the same. */
export const keysAndValues = (it: Vitest.MethodsNonLive<Topology>, timeout: number): void => {
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
}

/** Limits: the longest TTL, keys that are not well-formed, prototype keys, a closed cache. */
export const limits = (it: Vitest.MethodsNonLive<Topology>, timeout: number): void => {
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
}
