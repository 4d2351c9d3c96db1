import { assert, describe, layer } from "@effect/vitest"
import { Redis } from "@vela/backend-redis"
import { Backend, Codec } from "@vela/core"
import { openOptions } from "@vela/core/testing"
import { Clock, Context, Effect, FastCheck as fc, Fiber, Layer, Option, Schema, Stream, TestClock } from "effect"
import { Keyspace } from "../src/internal/keys.js"
import { failureTag, promise, rawClient, uniqueName } from "./utils/caches.js"
import * as RedisServer from "./utils/RedisServer.js"

// A TestClock stands still while real time runs: the grace keeps Redis from dropping what it counts as live.
const backend = Layer.unwrapEffect(
  Effect.map(RedisServer.RedisServer, (server) => Redis.layer({ url: server.url, expiryGrace: "10 minutes" }))
)
const setup = Layer.provideMerge(backend, RedisServer.layer)

const entry = (value: unknown, tags: ReadonlyArray<string> = [], expiresAt: number | null = null) => ({
  value,
  expiresAt,
  tags,
  version: 0
})

/** A store on the shared backend, with the test's clock, and the key layout to look behind its back. */
const open = (label: string, codec: Codec.Codec<unknown> = Codec.json) =>
  Effect.gen(function*() {
    const name = uniqueName(label)
    const store = yield* (yield* Backend.Backend).open({ ...openOptions(name, yield* Effect.clock), codec })
    return { store, keys: new Keyspace("vela:", name, 1), name }
  })

/** The same namespace on a backend of its own (its own connections), as another process has it. */
const elsewhere = (name: string, codec: Codec.Codec<unknown> = Codec.json) =>
  Effect.gen(function*() {
    const server = yield* RedisServer.RedisServer
    const context = yield* Layer.build(Redis.layer({ url: server.url, expiryGrace: "10 minutes" }))
    return yield* Context.get(context, Backend.Backend).open({ ...openOptions(name, yield* Effect.clock), codec })
  })

describe("Redis atomic operations", () => {
  layer(setup)((it) => {
    it.scoped("compareAndSet writes only over the write it saw, and keeps the tag sets exact", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const { keys, store } = yield* open("cas")
        const members = (tag: string) => promise(() => raw.smembers(keys.tagSet(tag, 0)))
        assert.isTrue(Option.isNone(yield* store.readForUpdate("k")))
        assert.isTrue(yield* store.compareAndSet("k", undefined, entry(1, ["a"])))
        assert.isFalse(yield* store.compareAndSet("k", undefined, entry(2)), "a live entry is there")
        const first = Option.getOrThrow(yield* store.readForUpdate("k"))
        assert.deepStrictEqual(first.entry, entry(1, ["a"]))
        assert.isTrue(yield* store.compareAndSet("k", first, entry(2, ["b"])))
        assert.isFalse(yield* store.compareAndSet("k", first, entry(3)), "the token is stale")
        assert.deepStrictEqual(Option.getOrThrow(yield* store.get("k")), entry(2, ["b"]))
        assert.deepStrictEqual(yield* members("a"), [])
        assert.deepStrictEqual(yield* members("b"), [keys.entry("k")])
        // A write behind the snapshot's back, even of the same value, makes it stale.
        const second = Option.getOrThrow(yield* store.readForUpdate("k"))
        yield* store.set("k", entry(2, ["b"], Date.now() + 60_000))
        assert.isFalse(yield* store.compareAndSet("k", second, undefined))
        const third = Option.getOrThrow(yield* store.readForUpdate("k"))
        assert.isTrue(yield* store.compareAndSet("k", third, undefined))
        assert.isTrue(Option.isNone(yield* store.get("k")))
        assert.deepStrictEqual(yield* members("b"), [])
        assert.strictEqual(yield* promise(() => raw.exists(keys.entry("k"))), 0)
      }))

    it.scoped("compareAndSet sees an expired entry as none, and a snapshot of it as stale", () =>
      Effect.gen(function*() {
        const { store } = yield* open("cas-expiry")
        const t = yield* Clock.currentTimeMillis
        yield* store.set("k", entry("old", [], t + 1_000))
        const seen = Option.getOrThrow(yield* store.readForUpdate("k"))
        yield* TestClock.adjust(1_000)
        assert.isTrue(Option.isNone(yield* store.readForUpdate("k")))
        assert.isFalse(yield* store.compareAndSet("k", seen, entry("late")))
        assert.isTrue(yield* store.compareAndSet("k", undefined, entry("new", [], t + 5_000)))
        assert.deepStrictEqual(Option.getOrThrow(yield* store.get("k")), entry("new", [], t + 5_000))
      }))

    it.scoped("of many takes from two connections, exactly one gets the entry; its tag sets are left clean", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const { keys, name, store } = yield* open("take")
        const other = yield* elsewhere(name)
        for (let round = 0; round < 20; round++) {
          yield* store.set(`k${round}`, entry({ round }, ["t", "u"]))
          const taken = yield* Effect.all(
            Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? store : other).take(`k${round}`)),
            { concurrency: "unbounded" }
          )
          const winners = taken.filter(Option.isSome)
          assert.strictEqual(winners.length, 1, `round ${round}`)
          assert.deepStrictEqual(winners[0].value, entry({ round }, ["t", "u"]))
        }
        assert.strictEqual(yield* promise(() => raw.exists(keys.tagSet("t", 0), keys.tagSet("u", 0))), 0)
        assert.strictEqual(yield* store.size, 0)
        assert.strictEqual(yield* store.invalidateTag("t"), 0)
      }))

    it.scoped("take of an expired entry gets nothing", () =>
      Effect.gen(function*() {
        const { store } = yield* open("take-expiry")
        yield* store.set("gone", entry(1, [], (yield* Clock.currentTimeMillis) + 1_000))
        yield* TestClock.adjust(1_000)
        assert.isTrue(Option.isNone(yield* store.take("gone")))
        assert.isTrue(Option.isNone(yield* store.take("never")))
      }))

    it.scoped("every atomic write tells the stores of other connections (their near caches) which key changed", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const { keys, name, store } = yield* open("atomic-bus")
        const other = yield* elsewhere(name)
        // Written behind the stores' backs, so that only the atomic operations announce anything.
        for (const key of ["t", "c", "u"]) {
          yield* promise(() => raw.set(keys.entry(key), `\t0\t[]\n${JSON.stringify(key)}`))
        }
        const heard = yield* Effect.fork(
          Stream.runCollect(Stream.take(Stream.filter(other.invalidations, (i) => i._tag === "Keys"), 4))
        )
        yield* Effect.yieldNow()
        assert.isTrue(Option.isSome(yield* store.take("t")))
        const seen = Option.getOrThrow(yield* store.readForUpdate("c"))
        assert.isTrue(yield* store.compareAndSet("c", seen, entry("new")))
        assert.isTrue(yield* store.touch("u", null))
        assert.strictEqual(yield* store.increment("i", 1, { expiresAt: null, tags: [] }), 1)
        const announced = Array.from(yield* Fiber.join(heard)).flatMap((i) => i._tag === "Keys" ? i.keys : [])
        assert.deepStrictEqual(announced.sort(), ["c", "i", "t", "u"])
      }))

    it.scoped("touch rewrites the expiry (header and Redis TTL), keeps value, tags and version", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const { keys, store } = yield* open("touch")
        const grace = 600_000
        const t = yield* Clock.currentTimeMillis
        yield* store.set("k", { value: { a: 1 }, expiresAt: t + 1_000, tags: ["t"], version: 7 })
        assert.isTrue(yield* store.touch("k", t + 50_000))
        assert.deepStrictEqual(Option.getOrThrow(yield* store.get("k")), {
          value: { a: 1 },
          expiresAt: t + 50_000,
          tags: ["t"],
          version: 7
        })
        const pttl = yield* promise(() => raw.pttl(keys.entry("k")))
        assert.isTrue(pttl > grace + 40_000 && pttl <= grace + 50_000, `PTTL ${pttl}`)
        assert.isAtLeast(yield* promise(() => raw.pttl(keys.tagSet("t", 0))), pttl - 1_000)
        yield* TestClock.adjust(2_000)
        assert.isTrue(Option.isSome(yield* store.get("k")), "live past its first expiry")
        assert.isTrue(yield* store.touch("k", null))
        assert.strictEqual(yield* promise(() => raw.pttl(keys.entry("k"))), -1)
        assert.strictEqual(yield* promise(() => raw.pttl(keys.tagSet("t", 0))), -1)
        assert.isNull(Option.getOrThrow(yield* store.get("k")).expiresAt)
        assert.strictEqual(yield* store.invalidateTag("t"), 1)
        assert.isFalse(yield* store.touch("k", null))
        yield* store.set("short", entry(1, [], t + 3_000))
        yield* TestClock.adjust(1_000)
        assert.isFalse(yield* store.touch("short", t + 60_000), "expired")
        assert.isTrue(Option.isNone(yield* store.get("short")))
      }))

    it.scoped("increment: an absent key starts at 0 with the created expiry and tags; a live one keeps its own", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const { keys, store } = yield* open("incr")
        const t = yield* Clock.currentTimeMillis
        assert.strictEqual(yield* store.increment("n", 5, { expiresAt: t + 10_000, tags: ["c"] }), 5)
        assert.strictEqual(yield* store.increment("n", -2.5, { expiresAt: null, tags: ["other"] }), 2.5)
        assert.deepStrictEqual(Option.getOrThrow(yield* store.get("n")), entry(2.5, ["c"], t + 10_000))
        assert.deepStrictEqual(yield* promise(() => raw.smembers(keys.tagSet("c", 0))), [keys.entry("n")])
        assert.strictEqual(yield* promise(() => raw.exists(keys.tagSet("other", 0))), 0)
        const pttl = yield* promise(() => raw.pttl(keys.entry("n")))
        assert.isTrue(pttl > 600_000 && pttl <= 610_000, `PTTL ${pttl} kept`)
        // The text is JSON's: integers stay integers, a fraction takes the digits it needs.
        const text = (key: string) =>
          promise(() => raw.get(keys.entry(key)).then((p) => p!.slice(p!.indexOf("\n") + 1)))
        yield* store.increment("i", 2 ** 53, { expiresAt: null, tags: [] })
        assert.strictEqual(yield* store.increment("i", -(2 ** 52), { expiresAt: null, tags: [] }), 2 ** 52)
        assert.strictEqual(yield* text("i"), "4503599627370496")
        yield* store.increment("f", 0.1, { expiresAt: null, tags: [] })
        assert.strictEqual(yield* store.increment("f", 0.2, { expiresAt: null, tags: [] }), 0.1 + 0.2)
        assert.strictEqual(yield* text("f"), JSON.stringify(0.1 + 0.2))
        yield* TestClock.adjust(10_000)
        assert.strictEqual(yield* store.increment("n", 1, { expiresAt: null, tags: [] }), 1, "expired: starts over")
        assert.isNull(Option.getOrThrow(yield* store.get("n")).expiresAt)
      }))

    it.scoped("increment of a non-number, or to a non-finite sum, is WrongType and changes nothing", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const { keys, store } = yield* open("incr-type")
        const created = { expiresAt: null, tags: [] }
        for (const value of ["5", { n: 1 }, [1], null, true, new Date(0)]) {
          yield* store.set("k", entry(value))
          assert.strictEqual(yield* failureTag(store.increment("k", 1, created)), "WrongType", JSON.stringify(value))
          assert.deepStrictEqual(Option.getOrThrow(yield* store.get("k")).value, value)
        }
        // Text another program left that Lua's tonumber would read, but JSON would not.
        for (const text of ["0x10", " 5", "inf", "nan", "5 "]) {
          const key = keys.entry("foreign")
          yield* promise(() => raw.set(key, `\t0\t[]\n${text}`))
          assert.strictEqual(yield* failureTag(store.increment("foreign", 1, created)), "WrongType", text)
          assert.strictEqual(yield* promise(() => raw.get(key)), `\t0\t[]\n${text}`)
        }
        yield* store.set("big", entry(Number.MAX_VALUE))
        assert.strictEqual(yield* failureTag(store.increment("big", Number.MAX_VALUE, created)), "WrongType")
        assert.strictEqual(Option.getOrThrow(yield* store.get("big")).value, Number.MAX_VALUE)
        assert.strictEqual(yield* failureTag(store.increment("fresh", NaN, created)), "WrongType")
        assert.isTrue(Option.isNone(yield* store.get("fresh")))
      }))

    it.effect.prop(
      "increment adds exactly as JavaScript does: every double goes through Lua and back unchanged",
      [fc.double({ noNaN: true, noDefaultInfinity: true }), fc.double({ noNaN: true, noDefaultInfinity: true })],
      ([start, by]) =>
        Effect.scoped(Effect.gen(function*() {
          // Schema.Number keeps numbers as JSON numbers: the script adds (see the numbersAsJson test).
          const { store } = yield* open("incr-prop", Codec.fromSchema(Schema.Number) as Codec.Codec<unknown>)
          yield* store.set("n", entry(start))
          const expected = start + by
          const result = yield* Effect.either(store.increment("n", by, { expiresAt: null, tags: [] }))
          if (!Number.isFinite(expected)) return assert.strictEqual(result._tag, "Left")
          assert.isTrue(Object.is(Option.getOrThrow(Option.getRight(result)), expected), `${start} + ${by}`)
          assert.isTrue(Object.is(Option.getOrThrow(yield* store.get("n")).value, expected))
        })),
      { fastCheck: { numRuns: 200 } }
    )

    it("increment is native under codecs that keep numbers as JSON numbers, and only those", () => {
      const schema = (s: Schema.Schema<any, any>) => Codec.fromSchema(s) as Codec.Codec<unknown>
      assert.isTrue(Codec.numbersAsJson(Codec.json))
      assert.isTrue(Codec.numbersAsJson(schema(Schema.Number)))
      assert.isFalse(Codec.numbersAsJson(schema(Schema.NumberFromString)), "numbers as JSON strings")
      assert.isFalse(Codec.numbersAsJson(schema(Schema.Int)), "a sum may not decode")
      assert.isFalse(Codec.numbersAsJson(schema(Schema.String)))
    })

    it.scoped("under a codec that keeps numbers as text, increment is derived from compare-and-set, and as exact", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const codec = Codec.fromSchema(Schema.NumberFromString) as Codec.Codec<unknown>
        const { name, store } = yield* open("incr-schema", codec)
        const other = yield* elsewhere(name, codec)
        const created = { expiresAt: null, tags: [] }
        yield* Effect.all(
          Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? store : other).increment("n", 1, created)),
          {
            concurrency: "unbounded"
          }
        )
        assert.strictEqual(Option.getOrThrow(yield* store.get("n")).value, 40)
        assert.isTrue((yield* promise(() => raw.get(new Keyspace("vela:", name, 1).entry("n"))))!.endsWith(`\n"40"`))
      }))
  })
})
