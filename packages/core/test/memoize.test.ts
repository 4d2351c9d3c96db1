import { assert, describe, expect, it } from "@effect/vitest"
import { Local, Memory, Vela } from "@vela/core"
import { createCache, InvalidKey } from "@vela/core/promise"
import { Deferred, Duration, Effect, Exit, Fiber, Layer, Option, TestClock } from "effect"

const memory = Local.layer.pipe(Layer.provide(Memory.layer()))

const tagOf = (self: Effect.Effect<unknown, unknown>) =>
  Effect.map(Effect.flip(self), (error) => (error as { _tag?: string; field?: string }))

describe("memoize (Effect API)", () => {
  it.effect("runs fn once per distinct arguments, shares concurrent calls, honours ttl", () =>
    Effect.scoped(Effect.gen(function*() {
      const cache = yield* Vela.make<string>({ name: "memo" })
      const calls: Array<ReadonlyArray<unknown>> = []
      const gate = yield* Deferred.make<void>()
      const slow = cache.memoize((id: number, lang: string) =>
        Effect.zipRight(
          Effect.sync(() => calls.push([id, lang])),
          Effect.as(Deferred.await(gate), `${id}-${lang}`)
        ), { ttl: "1 minute" })
      const fiber = yield* Effect.fork(
        Effect.all(Array.from({ length: 10 }, () => slow(1, "en")), { concurrency: "unbounded" })
      )
      yield* Effect.repeatN(Effect.yieldNow(), 5)
      yield* Deferred.succeed(gate, undefined)
      assert.deepStrictEqual(new Set(yield* Fiber.join(fiber)), new Set(["1-en"]))
      assert.strictEqual(yield* slow(1, "en"), "1-en")
      assert.strictEqual(yield* slow(2, "en"), "2-en")
      assert.deepStrictEqual(calls, [[1, "en"], [2, "en"]])
      // The default key is the arguments' JSON encoding: 1 and "1" differ.
      const echo = cache.memoize((x: unknown) => Effect.succeed(typeof x))
      assert.strictEqual(yield* echo(1), "number")
      assert.strictEqual(yield* echo("1"), "string")
      assert.isTrue(yield* cache.exists(JSON.stringify([1, "en"])))
      assert.isTrue(Option.exists(yield* cache.ttl(JSON.stringify([1, "en"])), Duration.equals(Duration.minutes(1))))
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* slow(1, "en"), "1-en")
      assert.strictEqual(calls.length, 3)
    })).pipe(Effect.provide(memory)))

  it.effect("a custom key; arguments that do not encode are InvalidKey; failures are not cached", () =>
    Effect.scoped(Effect.gen(function*() {
      const cache = yield* Vela.make<string>({ name: "memo-keys" })
      let runs = 0
      const byId = cache.memoize((user: { readonly id: string }) => Effect.sync(() => `${user.id}:${++runs}`), {
        key: (user) => `user:${user.id}`
      })
      assert.strictEqual(yield* byId({ id: "a" }), "a:1")
      assert.strictEqual(yield* cache.get("user:a"), "a:1")
      const bad = cache.memoize((_: unknown) => Effect.succeed("v"))
      assert.strictEqual((yield* tagOf(bad(() => 1)))._tag, "InvalidKey")
      assert.strictEqual((yield* tagOf(bad(Symbol("s"))))._tag, "InvalidKey")
      const throwing = cache.memoize((_: number) => Effect.succeed("v"), {
        key: () => {
          throw new Error("no key")
        }
      })
      assert.strictEqual((yield* tagOf(throwing(1)))._tag, "InvalidKey")
      let attempts = 0
      const flaky = cache.memoize(() => ++attempts === 1 ? Effect.fail("down" as const) : Effect.succeed("up"))
      assert.isTrue(Exit.isFailure(yield* Effect.exit(flaky())))
      assert.strictEqual(yield* flaky(), "up")
      assert.strictEqual(yield* flaky(), "up")
      assert.strictEqual(attempts, 2)
    })).pipe(Effect.provide(memory)))
})

describe("memoize (facade)", () => {
  it("caches per arguments, rejects with InvalidKey, passes options on", async () => {
    await using cache = createCache<number>({ name: "memo-facade" })
    let runs = 0
    const square = cache.memoize(async (n: number) => {
      runs++
      return n * n
    }, { ttl: 60_000, tags: ["squares"] })
    expect(await Promise.all([square(3), square(3), square(4)])).toEqual([9, 9, 16])
    expect(runs).toBe(2)
    expect(await cache.invalidateTag("squares")).toBe(2)
    expect(await square(3)).toBe(9)
    expect(runs).toBe(3)
    const bad = cache.memoize((_: unknown) => 1)
    await expect(bad(undefined)).rejects.toBeInstanceOf(InvalidKey)
    const custom = cache.memoize((a: number, b: number) => a + b, { key: (a, b) => `sum:${a}+${b}` })
    expect(await custom(1, 2)).toBe(3)
    expect(await cache.get("sum:1+2")).toBe(3)
  })
})

interface User {
  readonly id: string
  readonly admin: boolean
}

describe("getOrFetch with ttl and tags as functions of the fetched value", () => {
  it.effect("each value gets its own ttl and tags; with grace and cacheIf", () =>
    Effect.scoped(Effect.gen(function*() {
      const cache = yield* Vela.make<User>({ name: "adaptive" })
      const options = {
        ttl: (user: User) => user.admin ? "1 minute" : "1 hour",
        tags: (user: User) => user.admin ? ["admins"] : ["users"]
      }
      const fetchUser = (id: string) => Effect.succeed({ id, admin: id.startsWith("admin") })
      yield* cache.getOrFetch("admin-1", fetchUser, options)
      yield* cache.getOrFetch("user-1", fetchUser, options)
      const left = (key: string) => Effect.map(cache.ttl(key), Option.map(Duration.toMillis))
      assert.deepStrictEqual(yield* left("admin-1"), Option.some(60_000))
      assert.deepStrictEqual(yield* left("user-1"), Option.some(3_600_000))
      assert.strictEqual(yield* cache.invalidateTag("admins"), 1)
      assert.isTrue(yield* cache.exists("user-1"))

      // With grace: fresh for the value's ttl, then served stale while it refreshes.
      let fetches = 0
      const counted = (id: string) => Effect.sync(() => ({ id: `${id}#${++fetches}`, admin: true }))
      yield* cache.getOrFetch("g", counted, { ...options, grace: "1 hour" })
      assert.deepStrictEqual(yield* left("g"), Option.some(60_000))
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* cache.getOrFetch("g", counted, { ...options, grace: "1 hour" })).id, "g#1")
      yield* Effect.repeatN(Effect.yieldNow(), 5)
      assert.strictEqual((yield* cache.get("g")).id, "g#2")

      // A duration from cacheIf wins over the ttl function; false keeps the value out.
      yield* cache.getOrFetch("c", fetchUser, { ...options, cacheIf: () => "5 seconds" })
      assert.deepStrictEqual(yield* left("c"), Option.some(5_000))
      yield* cache.getOrFetch("n", fetchUser, { ...options, cacheIf: () => false })
      assert.isFalse(yield* cache.exists("n"))
    })).pipe(Effect.provide(memory)))

  it.effect("a function that throws or gives a bad ttl or tags is a ConfigError naming the option", () =>
    Effect.scoped(Effect.gen(function*() {
      const cache = yield* Vela.make<string>({ name: "adaptive-errors" })
      const fetch = () => Effect.succeed("v")
      const cases = [
        [{
          ttl: () => {
            throw new Error("boom")
          }
        }, "ttl"],
        [{ ttl: () => -1 }, "ttl"],
        [{
          tags: () => {
            throw new Error("boom")
          }
        }, "tags"],
        [{ tags: () => [""] }, "tags"],
        [{ ttl: () => "soon" as never }, "ttl"]
      ] as const
      for (const [options, field] of cases) {
        const error = yield* tagOf(cache.getOrFetch("k", fetch, options))
        assert.deepStrictEqual([error._tag, error.field], ["ConfigError", field])
        assert.isFalse(yield* cache.exists("k"))
      }
    })).pipe(Effect.provide(memory)))

  it("works through the facade", async () => {
    await using cache = createCache<User>({ name: "adaptive-facade" })
    await cache.getOrFetch("admin", (id) => ({ id, admin: true }), { ttl: (u) => u.admin ? 1_000 : 60_000 })
    const left = await cache.ttl("admin")
    expect(left).toBeLessThanOrEqual(1_000)
    expect(left).toBeGreaterThan(500)
  })
})
