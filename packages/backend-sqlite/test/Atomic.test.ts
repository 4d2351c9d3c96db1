import { assert, describe, it } from "@effect/vitest"
import { Sqlite } from "@vela/backend-sqlite"
import { Backend, Codec } from "@vela/core"
import Database from "better-sqlite3"
import { Clock, Effect, FastCheck as fc, Layer, Option, Schema, TestClock } from "effect"
import * as path from "node:path"
import { tempDir } from "./utils/child.js"

/** A raw store on `filename` (a connection of its own), counting what it reports. */
const storeOn = (filename: string, namespace: string, open: Partial<Backend.OpenOptions> = {}) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(Sqlite.layer({ filename }))
    const backend = Effect.runSync(Effect.provide(Backend.Backend, context))
    const reported = { expired: 0, evicted: 0 }
    const store = yield* backend.open({
      namespace,
      clock: yield* Effect.clock,
      codec: Codec.json,
      maxSize: Infinity,
      evictionPolicy: "ttl-only",
      onEvict: (n) => reported.evicted += n,
      onExpire: (n) => reported.expired += n,
      ...open
    })
    return { store, reported }
  })

const entry = (value: unknown, tags: ReadonlyArray<string> = [], expiresAt: number | null = null) => ({
  value,
  expiresAt,
  tags,
  version: 0
})

/** The tag rows of `namespace`, read by a connection of the test's own. */
const tagRows = (filename: string, namespace: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() => new Database(filename, { readonly: true })),
    (db) =>
      Effect.sync(() =>
        db.prepare<[string], { tag: string; key: string }>(
          `SELECT t.tag, e.key FROM vela_tags t JOIN vela_entries e ON e.id = t.entry
           WHERE t.namespace = ? ORDER BY t.tag, e.key`
        ).all(namespace)
      ),
    (db) => Effect.sync(() => db.close())
  )

const file = Effect.map(tempDir, (dir) => path.join(dir, "atomic.db"))

describe("Sqlite atomic operations", () => {
  it.scoped("compareAndSet writes only over the row it saw; tag rows follow", () =>
    Effect.gen(function*() {
      const filename = yield* file
      const { store } = yield* storeOn(filename, "cas")
      assert.isTrue(Option.isNone(yield* store.readForUpdate("k")))
      assert.isTrue(yield* store.compareAndSet("k", undefined, entry(1, ["a"])))
      assert.isFalse(yield* store.compareAndSet("k", undefined, entry(2)), "a live entry is there")
      const first = Option.getOrThrow(yield* store.readForUpdate("k"))
      assert.deepStrictEqual(first.entry, entry(1, ["a"]))
      assert.isTrue(yield* store.compareAndSet("k", first, entry(2, ["b"])))
      assert.isFalse(yield* store.compareAndSet("k", first, entry(3)), "the token is stale")
      assert.deepStrictEqual(yield* tagRows(filename, "cas"), [{ tag: "b", key: "k" }])
      // Another write, even of the same value with another expiry, makes a snapshot stale.
      const second = Option.getOrThrow(yield* store.readForUpdate("k"))
      yield* store.set("k", entry(2, ["b"], 1e15))
      assert.isFalse(yield* store.compareAndSet("k", second, undefined))
      const third = Option.getOrThrow(yield* store.readForUpdate("k"))
      assert.isTrue(yield* store.compareAndSet("k", third, undefined))
      assert.isTrue(Option.isNone(yield* store.get("k")))
      assert.deepStrictEqual(yield* tagRows(filename, "cas"), [])
      assert.strictEqual(yield* store.size, 0)
    }))

  it.scoped("compareAndSet sees an expired row as none and a snapshot of it as stale", () =>
    Effect.gen(function*() {
      const { reported, store } = yield* storeOn(yield* file, "cas-expiry")
      const t = yield* Clock.currentTimeMillis
      yield* store.set("k", entry("old", ["x"], t + 1_000))
      const seen = Option.getOrThrow(yield* store.readForUpdate("k"))
      yield* TestClock.adjust(1_000)
      assert.isFalse(yield* store.compareAndSet("k", seen, entry("late")))
      assert.isTrue(yield* store.compareAndSet("k", undefined, entry("new")))
      assert.deepStrictEqual(Option.getOrThrow(yield* store.get("k")), entry("new"))
      assert.strictEqual(reported.expired, 1, "the expired row it replaced")
      assert.strictEqual(yield* store.invalidateTag("x"), 0)
    }))

  it.scoped("of many takes from two connections on one file, exactly one gets each entry", () =>
    Effect.gen(function*() {
      const filename = yield* file
      const a = yield* storeOn(filename, "take")
      const b = yield* storeOn(filename, "take")
      yield* a.store.setMany(Array.from({ length: 20 }, (_, i) => [`k${i}`, entry(i, ["t"])] as const))
      const taken = yield* Effect.all(
        Array.from({ length: 20 * 6 }, (_, i) => (i % 2 === 0 ? a : b).store.take(`k${i % 20}`)),
        { concurrency: "unbounded" }
      )
      const won = taken.flatMap((found, i) => Option.isSome(found) ? [[i % 20, found.value.value] as const] : [])
      assert.deepStrictEqual(won.sort((x, y) => x[0] - y[0]), Array.from({ length: 20 }, (_, i) => [i, i] as const))
      assert.deepStrictEqual(yield* tagRows(filename, "take"), [])
      assert.strictEqual(yield* b.store.size, 0)
    }))

  it.scoped("take of an expired row gets nothing and counts it expired", () =>
    Effect.gen(function*() {
      const { reported, store } = yield* storeOn(yield* file, "take-expiry")
      yield* store.set("k", entry(1, [], (yield* Clock.currentTimeMillis) + 10))
      yield* TestClock.adjust(10)
      assert.isTrue(Option.isNone(yield* store.take("k")))
      assert.isTrue(Option.isNone(yield* store.take("never")))
      assert.strictEqual(reported.expired, 1)
    }))

  it.scoped("take of a row that does not decode fails with CodecError and leaves the row", () =>
    Effect.gen(function*() {
      const filename = yield* file
      const { store: plain } = yield* storeOn(filename, "take-codec")
      const { store: numbers } = yield* storeOn(filename, "take-codec", {
        codec: Codec.fromSchema(Schema.Number) as Codec.Codec<unknown>
      })
      yield* plain.set("k", entry("not a number", ["t"]))
      assert.strictEqual((yield* Effect.flip(numbers.take("k")))._tag, "CodecError")
      assert.deepStrictEqual(Option.getOrThrow(yield* plain.take("k")), entry("not a number", ["t"]))
    }))

  it.scoped("touch sets the expiry and keeps value, tags and version; false when nothing is live", () =>
    Effect.gen(function*() {
      const filename = yield* file
      const { store } = yield* storeOn(filename, "touch")
      const t = yield* Clock.currentTimeMillis
      yield* store.set("k", { value: { a: 1 }, expiresAt: t + 1_000, tags: ["t"], version: 7 })
      assert.isTrue(yield* store.touch("k", t + 5_000))
      yield* TestClock.adjust(2_000)
      assert.deepStrictEqual(Option.getOrThrow(yield* store.get("k")), {
        value: { a: 1 },
        expiresAt: t + 5_000,
        tags: ["t"],
        version: 7
      })
      assert.isTrue(yield* store.touch("k", null))
      yield* TestClock.adjust(1e9)
      assert.isNull(Option.getOrThrow(yield* store.get("k")).expiresAt)
      assert.deepStrictEqual(yield* tagRows(filename, "touch"), [{ tag: "t", key: "k" }])
      yield* store.set("short", entry(1, [], (yield* Clock.currentTimeMillis) + 10))
      yield* TestClock.adjust(10)
      assert.isFalse(yield* store.touch("short", null))
      assert.isFalse(yield* store.touch("never", null))
      assert.strictEqual(yield* store.size, 1)
    }))

  it.scoped("increment: absent starts at 0 with the created expiry and tags, live keeps its own", () =>
    Effect.gen(function*() {
      const filename = yield* file
      const { store } = yield* storeOn(filename, "incr")
      const t = yield* Clock.currentTimeMillis
      assert.strictEqual(yield* store.increment("n", 5, { expiresAt: t + 1_000, tags: ["c"] }), 5)
      assert.strictEqual(yield* store.increment("n", -2.5, { expiresAt: null, tags: ["other"] }), 2.5)
      assert.deepStrictEqual(Option.getOrThrow(yield* store.get("n")), entry(2.5, ["c"], t + 1_000))
      assert.deepStrictEqual(yield* tagRows(filename, "incr"), [{ tag: "c", key: "n" }])
      yield* TestClock.adjust(1_000)
      assert.strictEqual(yield* store.increment("n", 1, { expiresAt: null, tags: [] }), 1, "expired: starts over")
      assert.deepStrictEqual(Option.getOrThrow(yield* store.get("n")), entry(1))
      assert.deepStrictEqual(yield* tagRows(filename, "incr"), [])
    }))

  it.scoped("increment of a non-number or to a non-finite sum is WrongType; the batch's other writes land", () =>
    Effect.gen(function*() {
      const { store } = yield* storeOn(yield* file, "incr-type")
      const created = { expiresAt: null, tags: [] }
      for (const value of ["5", { n: 1 }, null, new Date(0)]) {
        yield* store.set("k", entry(value))
        const [failed] = yield* Effect.all([
          Effect.flip(store.increment("k", 1, created)),
          store.set("other", entry(value))
        ], {
          concurrency: "unbounded"
        })
        assert.strictEqual(failed._tag, "WrongType")
        assert.deepStrictEqual(Option.getOrThrow(yield* store.get("k")).value, value)
        assert.deepStrictEqual(Option.getOrThrow(yield* store.get("other")).value, value)
      }
      yield* store.set("big", entry(Number.MAX_VALUE))
      assert.strictEqual((yield* Effect.flip(store.increment("big", Number.MAX_VALUE, created)))._tag, "WrongType")
      assert.strictEqual((yield* Effect.flip(store.increment("fresh", NaN, created)))._tag, "WrongType")
      assert.isTrue(Option.isNone(yield* store.get("fresh")))
    }))

  it.scoped("increment of a new key respects maxSize: the policy's victim goes first", () =>
    Effect.gen(function*() {
      const { reported, store } = yield* storeOn(yield* file, "incr-max", { maxSize: 2, evictionPolicy: "lru" })
      const created = { expiresAt: null, tags: [] }
      yield* store.set("a", entry(1))
      yield* store.set("b", entry(2))
      yield* store.get("a")
      assert.strictEqual(yield* store.increment("c", 3, created), 3)
      assert.strictEqual(yield* store.size, 2)
      assert.strictEqual(reported.evicted, 1)
      assert.isTrue(Option.isNone(yield* store.get("b")), "b was least recently used")
      assert.isTrue(yield* store.compareAndSet("d", undefined, entry(4)))
      assert.strictEqual(yield* store.size, 2)
      assert.strictEqual(reported.evicted, 2)
    }))

  it.effect.prop(
    "increments under any codec, from two connections at once, lose nothing",
    [fc.array(fc.integer({ min: -1e6, max: 1e6 }), { maxLength: 20 })],
    ([steps]) =>
      Effect.scoped(Effect.gen(function*() {
        const filename = yield* file
        const codec = Codec.fromSchema(Schema.Number) as Codec.Codec<unknown>
        const a = yield* storeOn(filename, "incr-prop", { codec })
        const b = yield* storeOn(filename, "incr-prop", { codec })
        yield* Effect.all(
          steps.map((by, i) => (i % 2 === 0 ? a : b).store.increment("n", by, { expiresAt: null, tags: [] })),
          { concurrency: "unbounded" }
        )
        const found = Option.getOrUndefined(yield* a.store.get("n"))
        if (steps.length === 0) return assert.isUndefined(found)
        assert.strictEqual(found!.value, steps.reduce((x, y) => x + y, 0))
      })),
    { fastCheck: { numRuns: 25 } }
  )
})
