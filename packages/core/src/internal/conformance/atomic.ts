/**
 * The conformance suite's cases on the atomic operations (`testing.ts` registers them): `ttl`,
 * `touch`, `take`, `increment` and `update`, each exact under concurrency, or failing with
 * `Unsupported` where the topology says it cannot do it exactly.
 */
import type { Vitest } from "@effect/vitest"
import { assert } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as fc from "effect/FastCheck"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import type { Topology } from "../../Topology.js"
import type * as Vela from "../../Vela.js"
import { failureOf, failureTag, fresh, key as anyKey, keys } from "./model.js"

/** The operations a topology may declare it cannot do exactly. */
export type AtomicOperation = "take" | "increment" | "update" | "touch"

/** The time `key` has left, in milliseconds (`Infinity`: no expiry), or `undefined` on a miss. */
const ttlMillis = (cache: Vela.Cache<any>, key: string) =>
  Effect.map(cache.ttl(key), Option.match({ onNone: () => undefined, onSome: Duration.toMillis }))

const concurrently = <A, E>(count: number, each: (i: number) => Effect.Effect<A, E>) =>
  Effect.all(Array.from({ length: count }, (_, i) => each(i)), { concurrency: "unbounded" })

export const atomic = (
  it: Vitest.MethodsNonLive<Topology>,
  timeout: number,
  runs: number,
  unsupported: ReadonlyArray<AtomicOperation>
): void => {
  const supports = (op: AtomicOperation) => !unsupported.includes(op)

  it.effect(
    "ttl: None on a miss, infinity without expiry, the time left as the clock moves",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const cache = yield* fresh<string>()
        assert.strictEqual(yield* ttlMillis(cache, "missing"), undefined)
        yield* cache.put("forever", "v")
        assert.isTrue(Option.exists(yield* cache.ttl("forever"), Duration.equals(Duration.infinity)))
        yield* cache.put("k", "v", { ttl: "10 seconds" })
        assert.strictEqual(yield* ttlMillis(cache, "k"), 10_000)
        yield* TestClock.adjust("4 seconds")
        assert.strictEqual(yield* ttlMillis(cache, "k"), 6_000)
        yield* TestClock.adjust("6 seconds")
        assert.strictEqual(yield* ttlMillis(cache, "k"), undefined)
        const fetched = yield* fresh<string>()
        yield* fetched.getOrFetch("graced", () => Effect.succeed("v"), { ttl: "1 second", grace: "1 minute" })
        assert.strictEqual(yield* ttlMillis(fetched, "graced"), 1_000, "until it turns stale")
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* ttlMillis(fetched, "graced"), undefined, "stale is no live value")
      })),
    timeout
  )

  it.effect(
    "touch: false on a miss; a new TTL from now; value and tags kept",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const cache = yield* fresh<string>({ defaultTtl: "1 minute" })
        yield* cache.put("k", "v", { ttl: "1 second", tags: ["t"] })
        if (!supports("touch")) {
          assert.strictEqual(yield* failureTag(cache.touch("k", "10 seconds")), "Unsupported")
          return
        }
        assert.isFalse(yield* cache.touch("missing", "10 seconds"))
        assert.isFalse(yield* cache.exists("missing"))
        assert.isTrue(yield* cache.touch("k", "10 seconds"))
        assert.strictEqual(yield* ttlMillis(cache, "k"), 10_000)
        yield* TestClock.adjust("5 seconds")
        assert.strictEqual(yield* cache.get("k"), "v")
        assert.isTrue(yield* cache.touch("k"))
        assert.strictEqual(yield* ttlMillis(cache, "k"), 60_000, "the default is defaultTtl")
        assert.isTrue(yield* cache.touch("k", "infinity"))
        assert.isTrue(Option.exists(yield* cache.ttl("k"), Duration.equals(Duration.infinity)))
        assert.deepStrictEqual(failureOf(yield* Effect.exit(cache.touch("k", -1))), {
          _tag: "ConfigError",
          field: "ttl"
        })
        assert.strictEqual(yield* cache.invalidateTag("t"), 1, "the tags stay")
        assert.isFalse(yield* cache.exists("k"))
        yield* cache.put("shortened", "v", { ttl: "1 hour" })
        assert.strictEqual(yield* cache.get("shortened"), "v")
        assert.isTrue(yield* cache.touch("shortened", 100))
        yield* cache.put("short", "v", { ttl: 100 })
        yield* TestClock.adjust(100)
        assert.deepStrictEqual(
          Option.getOrUndefined(yield* cache.getOption("shortened")),
          undefined,
          "a shorter ttl holds everywhere"
        )
        assert.isFalse(yield* cache.touch("short", "1 hour"), "an expired entry is not revived")
        assert.isFalse(yield* cache.exists("short"))
      })),
    timeout
  )

  it.effect(
    "take: returns and removes; None on a miss; of 50 concurrent takers exactly one wins",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const cache = yield* fresh<string>()
        yield* cache.put("k", "v")
        if (!supports("take")) {
          assert.strictEqual(yield* failureTag(cache.take("k")), "Unsupported")
          return
        }
        assert.strictEqual(yield* cache.get("k"), "v")
        assert.deepStrictEqual(Option.getOrUndefined(yield* cache.take("k")), "v")
        assert.isFalse(yield* cache.exists("k"))
        assert.deepStrictEqual(Option.getOrUndefined(yield* cache.getOption("k")), undefined)
        assert.deepStrictEqual(Option.getOrUndefined(yield* cache.take("k")), undefined)
        yield* cache.put("short", "v", { ttl: 100 })
        yield* TestClock.adjust(100)
        assert.deepStrictEqual(Option.getOrUndefined(yield* cache.take("short")), undefined)
        yield* cache.put("race", "prize")
        const taken = yield* concurrently(50, () => cache.take("race"))
        assert.deepStrictEqual(taken.filter(Option.isSome).map(Option.getOrThrow), ["prize"])
        assert.strictEqual(yield* cache.size(), 0)
      })),
    timeout
  )

  it.effect(
    "increment: starts at 0 with the given ttl and tags; a live counter keeps its own",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const cache = yield* fresh<unknown>()
        if (!supports("increment")) {
          assert.strictEqual(yield* failureTag(cache.increment("c")), "Unsupported")
          return
        }
        assert.strictEqual(yield* cache.increment("c"), 1)
        // Reads between the writes: a near cache holds the key in L1 then, and must not serve it stale.
        assert.strictEqual(yield* cache.get("c"), 1)
        assert.strictEqual(yield* cache.increment("c", 5), 6)
        assert.strictEqual(yield* cache.get("c"), 6)
        assert.strictEqual(yield* cache.increment("c", -2.5), 3.5)
        assert.strictEqual(yield* cache.get("c"), 3.5)
        assert.isTrue(Option.exists(yield* cache.ttl("c"), Duration.equals(Duration.infinity)))
        assert.strictEqual(yield* cache.increment("t", 2, { ttl: "10 seconds", tags: ["counters"] }), 2)
        yield* TestClock.adjust("4 seconds")
        assert.strictEqual(yield* cache.increment("t", 1, { ttl: "1 hour", tags: ["other"] }), 3)
        assert.strictEqual(yield* ttlMillis(cache, "t"), 6_000, "a live counter keeps its ttl")
        assert.strictEqual(yield* cache.invalidateTag("other"), 0, "and its tags")
        yield* TestClock.adjust("6 seconds")
        assert.isFalse(yield* cache.exists("t"))
        assert.strictEqual(yield* cache.increment("t", 1, { ttl: "10 seconds", tags: ["counters"] }), 1)
        assert.strictEqual(yield* cache.invalidateTag("counters"), 1)
        yield* cache.put("s", "text")
        assert.strictEqual(yield* failureTag(cache.increment("s")), "WrongType")
        assert.strictEqual(yield* cache.get("s"), "text")
        for (const by of [NaN, Infinity, -Infinity, "1" as unknown as number]) {
          assert.deepStrictEqual(failureOf(yield* Effect.exit(cache.increment("c", by))), {
            _tag: "ConfigError",
            field: "by"
          })
        }
        yield* cache.put("big", Number.MAX_VALUE)
        assert.strictEqual(yield* failureTag(cache.increment("big", Number.MAX_VALUE)), "WrongType")
        assert.strictEqual(yield* cache.get("big"), Number.MAX_VALUE)
        assert.deepStrictEqual(failureOf(yield* Effect.exit(cache.increment("c", 1, { ttl: 0 }))), {
          _tag: "ConfigError",
          field: "ttl"
        })
        assert.strictEqual(yield* cache.get("c"), 3.5)
      })),
    timeout
  )

  it.effect("increment: 100 concurrent increments add up exactly", () =>
    Effect.scoped(Effect.gen(function*() {
      const cache = yield* fresh<number>()
      if (!supports("increment")) return
      const results = yield* concurrently(100, (i) => cache.increment("sum", i % 3 + 1))
      const total = Array.from({ length: 100 }, (_, i) => i % 3 + 1).reduce((a, b) => a + b, 0)
      assert.strictEqual(yield* cache.get("sum"), total)
      assert.strictEqual(new Set(results).size, 100, "every caller saw its own sum")
      assert.strictEqual(Math.max(...results), total)
    })), timeout)

  it.effect(
    "update: None on a miss; applies f; options replace ttl and tags; a failing f changes nothing",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const cache = yield* fresh<number>()
        yield* cache.put("n", 1, { ttl: "10 seconds", tags: ["a"] })
        if (!supports("update")) {
          assert.strictEqual(yield* failureTag(cache.update("n", (n) => n + 1)), "Unsupported")
          return
        }
        assert.deepStrictEqual(Option.getOrUndefined(yield* cache.update("missing", (n) => n + 1)), undefined)
        assert.isFalse(yield* cache.exists("missing"))
        assert.strictEqual(yield* cache.get("n"), 1)
        assert.deepStrictEqual(Option.getOrUndefined(yield* cache.update("n", (n) => n + 1)), 2)
        assert.strictEqual(yield* cache.get("n"), 2)
        assert.deepStrictEqual(Option.getOrUndefined(yield* cache.update("n", (n) => Effect.succeed(n * 10))), 20)
        assert.strictEqual(yield* cache.get("n"), 20)
        assert.strictEqual(yield* ttlMillis(cache, "n"), 10_000, "without options it keeps its ttl")
        assert.strictEqual(yield* Effect.flip(cache.update("n", () => Effect.fail("nope" as const))), "nope")
        assert.strictEqual(yield* cache.get("n"), 20, "a failing f leaves the value")
        assert.deepStrictEqual(
          Option.getOrUndefined(yield* cache.update("n", (n) => n + 1, { ttl: "1 hour", tags: ["b"] })),
          21
        )
        assert.strictEqual(yield* ttlMillis(cache, "n"), 3_600_000)
        assert.strictEqual(yield* cache.invalidateTag("a"), 0)
        assert.strictEqual(yield* cache.invalidateTag("b"), 1)
        yield* cache.put("short", 1, { ttl: 100 })
        yield* TestClock.adjust(100)
        assert.deepStrictEqual(Option.getOrUndefined(yield* cache.update("short", (n) => n + 1)), undefined)
        assert.deepStrictEqual(failureOf(yield* Effect.exit(cache.update("x", (n) => n, { ttl: -1 }))), {
          _tag: "ConfigError",
          field: "ttl"
        })
      })),
    timeout
  )

  it.effect(
    "update: 50 concurrent n => n + 1 add up exactly (f runs again when it lost a race)",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const cache = yield* fresh<number>()
        if (!supports("update")) return
        yield* cache.put("n", 0)
        let calls = 0
        // f yields, so that the updates interleave even on a store that answers synchronously.
        const results = yield* concurrently(50, () =>
          cache.update("n", (n) => {
            calls++
            return Effect.as(Effect.yieldNow(), n + 1)
          }))
        assert.strictEqual(yield* cache.get("n"), 50)
        assert.deepStrictEqual(
          results.map(Option.getOrThrow).sort((a, b) => a - b),
          Array.from({ length: 50 }, (_, i) => i + 1)
        )
        assert.isAtLeast(calls, 50)
      })),
    timeout
  )

  it.effect(
    "atomic operations check keys and options, and fail with CacheClosed once closed",
    () =>
      Effect.gen(function*() {
        const open = yield* Effect.scoped(Effect.gen(function*() {
          const cache = yield* fresh<number>()
          for (const key of ["", 42 as unknown as string, "\ud800"]) {
            assert.strictEqual(yield* failureTag(cache.ttl(key)), "InvalidKey")
            assert.strictEqual(yield* failureTag(cache.touch(key)), "InvalidKey")
            assert.strictEqual(yield* failureTag(cache.take(key)), "InvalidKey")
            assert.strictEqual(yield* failureTag(cache.increment(key)), "InvalidKey")
            assert.strictEqual(yield* failureTag(cache.update(key, (n) => n)), "InvalidKey")
          }
          assert.deepStrictEqual(
            failureOf(yield* Effect.exit(cache.increment("k", 1, { ttl: 1, typo: 1 } as never))),
            { _tag: "ConfigError", field: "typo" }
          )
          return cache
        }))
        for (
          const call of [
            open.ttl("k"),
            open.touch("k"),
            open.take("k"),
            open.increment("k"),
            open.update("k", (n) => n)
          ]
        ) assert.strictEqual(yield* failureTag(call), "CacheClosed")
      }),
    timeout
  )

  if (unsupported.length === 0) {
    it.effect.prop(
      "increment, take, update, touch and ttl agree with a reference model",
      [fc.array(command, { minLength: 1, maxLength: 30 })],
      ([commands]) => Effect.scoped(runAtomicModel(commands)),
      { timeout, fastCheck: { numRuns: runs } }
    )
  }
}

// The model

type Command =
  | { readonly op: "put"; readonly key: string; readonly value: number; readonly ttl?: number }
  | { readonly op: "increment"; readonly key: string; readonly by: number; readonly ttl?: number }
  | { readonly op: "update"; readonly key: string; readonly add: number; readonly ttl?: number }
  | { readonly op: "touch"; readonly key: string; readonly ttl?: number }
  | { readonly op: "take" | "ttl" | "delete" | "get"; readonly key: string }
  | { readonly op: "adjust"; readonly millis: number }

const ttl = fc.constantFrom(100, 1_000)
const optionalTtl: Array<"op" | "key"> = ["op", "key"]

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ op: fc.constant("put" as const), key: anyKey, value: fc.integer({ min: -5, max: 5 }), ttl }, {
    requiredKeys: [...optionalTtl, "value"]
  }),
  fc.record({ op: fc.constant("increment" as const), key: anyKey, by: fc.integer({ min: -3, max: 3 }), ttl }, {
    requiredKeys: [...optionalTtl, "by"]
  }),
  fc.record({ op: fc.constant("update" as const), key: anyKey, add: fc.integer({ min: -3, max: 3 }), ttl }, {
    requiredKeys: [...optionalTtl, "add"]
  }),
  fc.record({ op: fc.constant("touch" as const), key: anyKey, ttl }, { requiredKeys: optionalTtl }),
  fc.record({ op: fc.constantFrom("take" as const, "ttl" as const, "delete" as const), key: anyKey }),
  // Reads between the writes: a near cache then holds the key in L1, and must not serve it stale.
  fc.record({ op: fc.constant("get" as const), key: anyKey }),
  fc.record({ op: fc.constant("adjust" as const), millis: fc.constantFrom(1, 99, 100, 900) })
)

const runAtomicModel = (commands: ReadonlyArray<Command>) =>
  Effect.gen(function*() {
    const cache = yield* fresh<number>()
    const entries = new Map<string, { value: number; expiresAt: number }>()
    let now = 0
    const live = (key: string) => {
      const entry = entries.get(key)
      if (entry !== undefined && entry.expiresAt <= now) entries.delete(key)
      return entries.get(key)
    }
    const expiresAt = (ttl: number | undefined) => ttl === undefined ? Infinity : now + ttl
    const options = (ttl: number | undefined) => ttl === undefined ? {} : { ttl }
    for (const [step, cmd] of commands.entries()) {
      const where = `step ${step}: ${JSON.stringify(cmd)}`
      switch (cmd.op) {
        case "put":
          yield* cache.put(cmd.key, cmd.value, options(cmd.ttl))
          entries.set(cmd.key, { value: cmd.value, expiresAt: expiresAt(cmd.ttl) })
          break
        case "increment": {
          const entry = live(cmd.key)
          const sum = (entry?.value ?? 0) + cmd.by
          assert.strictEqual(yield* cache.increment(cmd.key, cmd.by, options(cmd.ttl)), sum, where)
          if (entry === undefined) entries.set(cmd.key, { value: sum, expiresAt: expiresAt(cmd.ttl) })
          else entry.value = sum
          break
        }
        case "update": {
          const entry = live(cmd.key)
          const got = yield* cache.update(cmd.key, (n) => n + cmd.add, options(cmd.ttl))
          assert.deepStrictEqual(
            Option.getOrUndefined(got),
            entry === undefined ? undefined : entry.value + cmd.add,
            where
          )
          if (entry !== undefined) {
            entry.value += cmd.add
            if (cmd.ttl !== undefined) entry.expiresAt = expiresAt(cmd.ttl)
          }
          break
        }
        case "touch": {
          const entry = live(cmd.key)
          assert.strictEqual(yield* cache.touch(cmd.key, cmd.ttl ?? "infinity"), entry !== undefined, where)
          if (entry !== undefined) entry.expiresAt = expiresAt(cmd.ttl)
          break
        }
        case "take": {
          const entry = live(cmd.key)
          assert.strictEqual(Option.getOrUndefined(yield* cache.take(cmd.key)), entry?.value, where)
          entries.delete(cmd.key)
          break
        }
        case "ttl": {
          const entry = live(cmd.key)
          assert.strictEqual(yield* ttlMillis(cache, cmd.key), entry && entry.expiresAt - now, where)
          break
        }
        case "delete":
          yield* cache.delete(cmd.key)
          entries.delete(cmd.key)
          break
        case "get":
          assert.strictEqual(Option.getOrUndefined(yield* cache.getOption(cmd.key)), live(cmd.key)?.value, where)
          break
        case "adjust":
          yield* TestClock.adjust(cmd.millis)
          now += cmd.millis
          break
      }
    }
    for (const key of keys) {
      assert.strictEqual(Option.getOrUndefined(yield* cache.getOption(key)), live(key)?.value, `final ${key}`)
    }
  })
