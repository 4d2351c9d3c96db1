import { assert, describe, it } from "@effect/vitest"
import { Sqlite } from "@vela/backend-sqlite"
import { Backend, Codec, Local, Vela } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Cause, Effect, Exit, Fiber, Layer, Option, Schema, TestClock } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { runChild, tempDir } from "./utils/child.js"

/** Builds the layer in the current scope and returns what it failed with, if it did. */
const buildError = (options: Sqlite.SqliteOptions) =>
  Effect.map(
    Effect.exit(Layer.build(Sqlite.layer(options))),
    (exit) => Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
  )

/** A cache on `options`' database, living as long as the current scope. */
const cacheOn = <V>(options: Sqlite.SqliteOptions, config: Vela.Config<V> & { readonly name: string }) =>
  Effect.flatMap(
    Layer.build(Local.layer.pipe(Layer.provide(Sqlite.layer(options)))),
    (context) => Effect.provide(Vela.make<V>(config), context)
  )

/** A raw store of `options`' database, counting what it reports. */
const storeOn = (options: Sqlite.SqliteOptions, namespace: string, open: Partial<Backend.OpenOptions> = {}) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(Sqlite.layer(options))
    const backend = Effect.runSync(Effect.provide(Backend.Backend, context))
    const reported = { expired: [] as Array<number>, evicted: [] as Array<number> }
    const store = yield* backend.open({
      namespace,
      clock: yield* Effect.clock,
      codec: Codec.json,
      maxSize: Infinity,
      evictionPolicy: "ttl-only",
      onEvict: (n) => reported.evicted.push(n),
      onExpire: (n) => reported.expired.push(n),
      ...open
    })
    return { store, reported, backend }
  })

const entry = (value: unknown, expiresAt: number | null = null, tags: ReadonlyArray<string> = []) => ({
  value,
  expiresAt,
  tags,
  version: 0
})

describe("Sqlite.layer construction", () => {
  it.scoped("a missing directory, a directory, a non-SQLite file: BackendError naming the file and the step", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const missing = path.join(dir, "no", "such", "dir.db")
      const garbage = path.join(dir, "garbage.db")
      fs.writeFileSync(garbage, Buffer.alloc(8192, 7))
      for (
        const [filename, operation] of [[missing, "open"], [dir, "open"], [garbage, "configure"]] as const
      ) {
        const error = yield* buildError({ filename })
        assert.strictEqual(error?._tag, "BackendError", filename)
        assert.strictEqual((error as any).operation, operation, filename)
        assert.include(error!.message, filename)
      }
    }))

  it.scoped("a file written by a later layout is refused, not misread", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "future.db")
      yield* Effect.scoped(Effect.flatMap(storeOn({ filename }, "n"), ({ store }) => store.set("k", entry("v"))))
      yield* runChild(["layout", filename, "99"])
      const error = yield* buildError({ filename })
      assert.strictEqual(error?._tag, "BackendError")
      assert.strictEqual((error as any).operation, "migrate")
      assert.include(error!.message, "layout 99")
    }), 30_000) // a child process starts slowly on a loaded machine

  it.scoped("options that make no sense are a ConfigError naming the field", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<[Sqlite.SqliteOptions, string]> = [
        [{ filename: "" }, "filename"],
        [{ filename: ":memory:", busyTimeout: "soon" as any }, "busyTimeout"],
        [{ filename: ":memory:", synchronous: "off" as any }, "synchronous"],
        [{ filename: ":memory:", sweepBatchSize: 0 }, "sweepBatchSize"],
        [{ filename: ":memory:", maxBatchSize: 1.5 }, "maxBatchSize"],
        [{ filename: ":memory:", busyTimout: 10 } as never, "busyTimout"],
        [null as never, "options"]
      ]
      for (const [options, field] of cases) {
        const error = yield* buildError(options)
        assert.strictEqual(error?._tag, "ConfigError")
        assert.strictEqual((error as any).field, field)
      }
    }))

  it.scoped("an eviction policy it does not know is a ConfigError { field: evictionPolicy }", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(storeOn({ filename: ":memory:" }, "n", { evictionPolicy: "random" as any }))
      assert.strictEqual(error._tag, "ConfigError")
      assert.strictEqual((error as any).field, "evictionPolicy")
    }))
})

describe("Sqlite writes", () => {
  it.scoped("10,000 concurrent puts share a few transactions, and all of them land", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "batch.db")
      const commits: Array<number> = []
      const cache = yield* cacheOn<number>({ filename, onCommit: (n) => commits.push(n) }, { name: "batch" })
      yield* Effect.all(Array.from({ length: 10_000 }, (_, i) => cache.put(`k${i}`, i)), {
        concurrency: "unbounded",
        discard: true
      })
      assert.strictEqual(commits.reduce((a, b) => a + b, 0), 10_000)
      assert.isAtMost(commits.length, 10, `transactions: ${commits.join(", ")}`)
      assert.strictEqual(yield* cache.size(), 10_000)
      assert.strictEqual(yield* cache.get("k9999"), 9_999)
    }), 30_000) // 10,000 fibers and synced commits take seconds on a loaded machine

  it.scoped("putMany is one transaction; getMany and deleteMany answer in key order and count live rows", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "many.db")
      const commits: Array<number> = []
      const cache = yield* cacheOn<number>({ filename, onCommit: (n) => commits.push(n) }, { name: "many" })
      yield* cache.putMany(Array.from({ length: 2_000 }, (_, i) => [`k${i}`, i] as const))
      assert.deepStrictEqual(commits, [1], "one submission, one transaction")
      const values = yield* cache.getMany(["k1999", "missing", "k0"])
      assert.deepStrictEqual(values.map(Option.getOrUndefined), [1_999, undefined, 0])
      assert.strictEqual(yield* cache.deleteMany(["k0", "k1", "missing"]), 2)
      assert.strictEqual(yield* cache.size(), 1_998)
    }))

  it.scoped("lfu: a key written again after it expired starts its use count afresh", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "lfu.db")
      const cache = yield* cacheOn<number>({ filename }, { name: "lfu", maxSize: 3, evictionPolicy: "lfu" })
      yield* cache.put("old", 0, { ttl: "100 millis" })
      yield* TestClock.adjust("100 millis")
      // The row of the expired entry is reused; its uses were the expired entry's, not this one's.
      yield* cache.put("old", 0)
      yield* cache.putMany([["a", 1], ["b", 2], ["c", 3]])
      // Four entries used once each, the cap three: the least recent of them, "old", goes.
      assert.deepStrictEqual((yield* cache.getMany(["old", "a", "b", "c"])).map(Option.getOrUndefined), [
        undefined,
        1,
        2,
        3
      ])
    }))

  it.scoped("a put still queued when the backend closes is committed before the file closes", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "close.db")
      const fiber = yield* Effect.scoped(Effect.gen(function*() {
        const cache = yield* cacheOn<string>({ filename }, { name: "close" })
        // Forked outside the scope, so closing the scope does not interrupt it.
        return yield* Effect.forkDaemon(cache.put("queued", "v"))
      }))
      yield* Fiber.join(fiber)
      // Closed cleanly: the WAL was checkpointed into the file and removed.
      assert.isFalse(fs.existsSync(`${filename}-wal`))
      const cache = yield* cacheOn<string>({ filename }, { name: "close" })
      assert.strictEqual(yield* cache.get("queued"), "v")
    }))

  it.scoped("the sweeper deletes expired rows in bounded batches and reports them once", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "sweep.db")
      const commits: Array<number> = []
      const { reported, store } = yield* storeOn(
        { filename, sweepBatchSize: 100, onCommit: (n) => commits.push(n) },
        "s"
      )
      yield* Effect.all(Array.from({ length: 250 }, (_, i) => store.set(`k${i}`, entry(i, 1_000))), {
        concurrency: "unbounded"
      })
      yield* store.set("forever", entry("f"))
      commits.length = 0
      yield* TestClock.adjust(1_000)
      // Expired before any sweep: never read, never counted.
      assert.isTrue(Option.isNone(yield* store.get("k0")))
      assert.strictEqual(yield* store.size, 1)
      yield* store.sweep
      assert.deepStrictEqual(reported.expired, [100, 100, 50])
      assert.deepStrictEqual(commits, [1, 1, 1])
      yield* store.sweep
      assert.deepStrictEqual(reported.expired, [100, 100, 50])
      assert.strictEqual(yield* store.size, 1)
    }))

  it.scoped("maxSize: evictions and expirations are counted apart", () =>
    Effect.gen(function*() {
      const { reported, store } = yield* storeOn({ filename: ":memory:" }, "e", { maxSize: 3, evictionPolicy: "lru" })
      yield* store.set("a", entry(1, 500))
      yield* store.set("b", entry(2))
      yield* store.set("c", entry(3))
      yield* store.get("b")
      yield* TestClock.adjust(500)
      // "a" expired: it makes the room, and it is not an eviction.
      yield* store.set("d", entry(4))
      assert.deepStrictEqual(reported, { expired: [1], evicted: [] })
      // Now full of live rows: the least recently used ("c"; "b" was read) goes.
      yield* store.set("e", entry(5))
      assert.deepStrictEqual(reported.evicted, [1])
      assert.isFalse(yield* store.has("c"))
      assert.isTrue(yield* store.has("b"))
      assert.strictEqual(yield* store.size, 3)
    }))

  it.scoped("one file serves many caches; tags are per cache", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "many.db")
      const context = yield* Layer.build(Local.layer.pipe(Layer.provide(Sqlite.layer({ filename }))))
      const [a, b] = yield* Effect.provide(
        Effect.all([Vela.make<string>({ name: "a" }), Vela.make<string>({ name: "b" })]),
        context
      )
      yield* a.put("k", "from a", { tags: ["t"] })
      yield* b.put("k", "from b", { tags: ["t"] })
      assert.strictEqual(yield* a.invalidateTag("t"), 1)
      assert.strictEqual(yield* b.get("k"), "from b")
      assert.strictEqual(yield* b.size(), 1)
    }))

  it.scoped("stored data that no longer decodes is a CodecError, and getOrFetch fetches again", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "codec.db")
      const context = yield* Layer.build(Local.layer.pipe(Layer.provide(Sqlite.layer({ filename }))))
      const before = yield* Effect.provide(Vela.make<unknown>({ name: "users" }), context)
      yield* before.put("u1", { id: 1 })
      const User = Schema.Struct({ name: Schema.String })
      const after = yield* Effect.provide(Vela.make({ name: "users", value: User }), context)
      const error = yield* Effect.flip(after.get("u1"))
      assert.strictEqual(error._tag, "CodecError")
      assert.strictEqual(error._tag === "CodecError" && error.direction, "decode")
      assert.deepStrictEqual(yield* after.getOrFetch("u1", () => Effect.succeed({ name: "Ada" })), { name: "Ada" })
      assert.deepStrictEqual(yield* after.get("u1"), { name: "Ada" })
    }))
})

describe("Sqlite with the Promise facade", () => {
  it.scoped("createCache on a file: ready at once, hits served, entries there after close and reopen", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "facade.db")
      yield* Effect.promise(async () => {
        const first = createCache<{ readonly n: number }>({ name: "pages", backend: Sqlite.layer({ filename }) })
        await first.put("a", { n: 1 }, { tags: ["t"] })
        assert.deepStrictEqual(await first.get("a"), { n: 1 })
        assert.isUndefined(await first.get("missing"))
        const stats = await first.stats()
        assert.strictEqual(stats.hits, 1)
        assert.strictEqual(stats.misses, 1)
        await first.close()
        assert.isFalse(fs.existsSync(`${filename}-wal`))

        const second = createCache<{ readonly n: number }>({ name: "pages", backend: Sqlite.layer({ filename }) })
        assert.deepStrictEqual(await second.get("a"), { n: 1 })
        assert.strictEqual(await second.invalidateTag("t"), 1)
        await second.close()
      })
    }))

  it.scoped("a program that never closes its cache still exits by itself", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "exit.db")
      const built = (file: string) => JSON.stringify(fileURLToPath(new URL(file, import.meta.url)))
      const program = `
        const { createCache } = await import(${built("../../core/dist/promise.js")})
        const { Sqlite } = await import(${built("../dist/index.js")})
        const cache = createCache({ name: "exit", backend: Sqlite.layer({ filename: ${JSON.stringify(filename)} }) })
        await cache.put("k", "v")
        console.log(await cache.get("k"))
      `
      // The child is killed at 10 s; the test waits longer, so a hanging child never outlives it.
      const { stdout } = yield* Effect.promise(() =>
        promisify(execFile)(process.execPath, ["--input-type=module", "-e", program], { timeout: 10_000 })
      )
      assert.strictEqual(stdout.trim(), "v")
    }), 20_000)
})
