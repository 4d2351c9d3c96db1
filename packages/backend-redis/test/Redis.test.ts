import { assert, describe, layer } from "@effect/vitest"
import { Redis } from "@vela/backend-redis"
import { Backend, Local, NearCache } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { conformance, openOptions } from "@vela/core/testing"
import { Cause, Context, Effect, Either, Exit, Layer, Option, TestClock } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { Keyspace } from "../src/internal/keys.js"
import { cacheOn, eventually, failureTag, promise, rawClient, uniqueName } from "./utils/caches.js"
import * as RedisServer from "./utils/RedisServer.js"

// A TestClock stands still while real time runs, so Redis must not drop an entry the test clock
// still counts as live: the grace covers the real duration of a run.
const redisLocal = Local.layer.pipe(
  Layer.provide(
    Layer.unwrapEffect(
      Effect.map(
        RedisServer.RedisServer,
        (server) => Redis.layer({ url: server.url, expiryGrace: "10 minutes" })
      )
    )
  ),
  Layer.provide(RedisServer.layer)
)

conformance("Redis + Local", redisLocal, { runs: 20 })
conformance("NearCache over Redis + Local", NearCache.layer({ ttl: "10 seconds" }).pipe(Layer.provide(redisLocal)), {
  runs: 15
})

describe("Redis backend", () => {
  layer(RedisServer.layer)((it) => {
    it.scoped("keys are prefix + namespace + key, unambiguous, with a Redis TTL", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const base = uniqueName("layout")
        const a = yield* cacheOn<string>({ url: server.url, prefix: "app1:" }, { name: base })
        const ab = yield* cacheOn<string>({ url: server.url, prefix: "app1:" }, { name: `${base}:b` })
        const other = yield* cacheOn<string>({ url: server.url, prefix: "app2:" }, { name: base })
        yield* a.put("b:c", "from a", { ttl: "1 minute" })
        yield* ab.put("c", "from a:b")
        yield* other.put("b:c", "other app")
        const first = new Keyspace("app1:", base, 1).entry("b:c")
        const second = new Keyspace("app1:", `${base}:b`, 1).entry("c")
        assert.notStrictEqual(first, second)
        assert.isTrue(first.startsWith("app1:"))
        assert.strictEqual(yield* promise(() => raw.exists(first, second)), 2)
        const pttl = yield* promise(() => raw.pttl(first))
        assert.isTrue(pttl > 0 && pttl <= 60_000, `PTTL ${pttl}`)
        assert.strictEqual(yield* promise(() => raw.pttl(second)), -1)
        assert.strictEqual(yield* a.get("b:c"), "from a")
        assert.strictEqual(yield* other.get("b:c"), "other app")
        yield* a.flush()
        assert.strictEqual(yield* ab.get("c"), "from a:b")
        assert.strictEqual(yield* other.get("b:c"), "other app")
        assert.strictEqual(yield* promise(() => raw.exists(first)), 0)
      }))

    it.scoped("scripts flushed from the server: writes load them again (EVAL) and still take effect", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const cache = yield* cacheOn<string>({ url: server.url }, { name: uniqueName("noscript") })
        yield* promise(() => raw.script("FLUSH"))
        yield* cache.put("a", "1")
        yield* cache.putMany([["b", "2"], ["c", "3"]])
        yield* cache.put("d", "4", { tags: ["t"] })
        assert.deepStrictEqual(
          (yield* cache.getMany(["a", "b", "c", "d"])).map(Option.getOrUndefined),
          ["1", "2", "3", "4"]
        )
        yield* promise(() => raw.script("FLUSH"))
        yield* cache.delete("a")
        assert.strictEqual(yield* cache.invalidateTag("t"), 1)
        assert.deepStrictEqual((yield* cache.getMany(["a", "d"])).map(Option.getOrUndefined), [undefined, undefined])
      }))

    it.scoped("a finite maxSize is a ConfigError: Redis bounds memory with maxmemory", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const exit = yield* Effect.exit(cacheOn({ url: server.url }, { name: uniqueName("max"), maxSize: 10 }))
        assert.strictEqual(exit._tag, "Failure")
        if (exit._tag === "Failure") {
          const error = Cause.failureOption(exit.cause)
          assert.deepInclude(Option.getOrUndefined(error), { _tag: "ConfigError", field: "maxSize" })
        }
      }))

    it.scoped("unknown options and a malformed URL are ConfigErrors naming the field", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const cases: ReadonlyArray<[Redis.RedisOptions, string]> = [
          [{ url: server.url, prefx: "app:" } as never, "prefx"],
          [{ url: "redis://127.0.0.1:abc" }, "url"],
          [{ url: "redis://:%zz@127.0.0.1:6379" }, "url"],
          [{ url: 6379 as never }, "url"]
        ]
        for (const [options, field] of cases) {
          const exit = yield* Effect.exit(Effect.scoped(Redis.make(options)))
          const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
          assert.deepInclude(error, { _tag: "ConfigError", field }, JSON.stringify(options))
        }
      }))

    it.scoped("two backends share values, tags, TTL and flush; overwrites drop old tags", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const name = uniqueName("shared")
        const a = yield* cacheOn<string>({ url: server.url }, { name })
        const b = yield* cacheOn<string>({ url: server.url }, { name })
        yield* a.put("x", "1", { tags: ["red", "blue"] })
        yield* a.put("y", "2", { tags: ["red"] })
        yield* a.put("z", "3", { tags: ["red"], ttl: "1 second" })
        assert.strictEqual(yield* b.get("x"), "1")
        // Expired by the cache's clock, still held by Redis: not live, so not counted.
        yield* TestClock.adjust("1 second")
        // Overwritten without the tag: `red` no longer reaches it.
        yield* b.put("y", "2b", { tags: ["blue"] })
        assert.strictEqual(yield* b.invalidateTag("red"), 1)
        assert.isFalse(yield* a.exists("x"))
        assert.strictEqual(yield* a.get("y"), "2b")
        assert.strictEqual(yield* a.size(), 1)
        assert.strictEqual(yield* b.invalidateTag("blue"), 1)
        yield* a.put("w", "4")
        assert.strictEqual(yield* b.size(), 1)
        yield* b.flush()
        assert.strictEqual(yield* a.size(), 0)
      }))

    it.scoped("sweep drops tag-set members that are gone or no longer tagged", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const name = uniqueName("sweep")
        const keys = new Keyspace("vela:", name, 1)
        const context = yield* Layer.build(Redis.layer({ url: server.url }))
        const backend = Context.get(context, Backend.Backend)
        const store = yield* backend.open(openOptions(name, yield* Effect.clock))
        const entry = (tags: ReadonlyArray<string>) => ({ value: 1, expiresAt: null, tags, version: 0 })
        yield* store.set("a", entry(["t"]))
        yield* store.set("b", entry(["t"]))
        yield* store.set("c", entry(["t"]))
        yield* store.set("a", entry([]))
        yield* store.delete("b")
        assert.strictEqual(yield* promise(() => raw.scard(keys.tagSet("t", 0))), 3)
        yield* store.sweep
        assert.deepStrictEqual(yield* promise(() => raw.smembers(keys.tagSet("t", 0))), [keys.entry("c")])
        assert.strictEqual(yield* store.invalidateTag("t"), 1)
        assert.isTrue(yield* store.has("a"))
      }))

    it.scoped("concurrent gets and puts share commands; each caller gets its own answer", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const name = uniqueName("batch")
        const cache = yield* cacheOn<number>({ url: server.url }, { name })
        const n = Array.from({ length: 600 }, (_, i) => i)
        yield* Effect.forEach(n, (i) => cache.put(`k${i}`, i, { ttl: i % 2 === 0 ? "1 hour" : "infinity" }), {
          concurrency: "unbounded"
        })
        yield* promise(() => raw.set(new Keyspace("vela:", name, 1).entry("k7"), "garbage"))
        const results = yield* Effect.forEach(n, (i) => Effect.either(cache.get(`k${i}`)), { concurrency: "unbounded" })
        results.forEach((result, i) => {
          if (i === 7) assert.strictEqual(Either.isLeft(result) ? result.left._tag : "Right", "CodecError")
          else assert.deepStrictEqual(result, Either.right(i))
        })
        assert.strictEqual(yield* cache.size(), 599)
      }))

    it.scoped("the Promise facade: gets of one tick share MGETs (256 keys each), each caller gets its own answer", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const name = uniqueName("facade")
        const cache = createCache<number>({ name, backend: Redis.layer({ url: server.url }) })
        yield* Effect.addFinalizer(() => Effect.promise(() => cache.close()))
        const n = Array.from({ length: 300 }, (_, i) => i)
        yield* promise(() => Promise.all(n.map((i) => cache.put(`k${i}`, i))))
        yield* promise(() => raw.set(new Keyspace("vela:", name, 1).entry("k7"), "garbage"))
        const commands = yield* promise(() => raw.info("commandstats"))
        const results = yield* promise(() =>
          Promise.allSettled([...n.map((i) => cache.get(`k${i}`)), cache.get("absent")])
        )
        results.forEach((result, i) => {
          if (i === 7) assert.strictEqual(result.status === "rejected" && result.reason._tag, "CodecError")
          else assert.deepStrictEqual(result, { status: "fulfilled", value: i === 300 ? undefined : i })
        })
        const mgets = (info: string) => Number(/cmdstat_mget:calls=(\d+)/.exec(info)?.[1] ?? 0)
        assert.strictEqual(mgets(yield* promise(() => raw.info("commandstats"))) - mgets(commands), 2)
        assert.deepInclude(yield* promise(() => cache.stats()), { hits: 299, misses: 1, codecErrors: 1 })
      }))

    it.scoped("a client of yours is used as it is and left open", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const client = yield* rawClient(server.url)
        const name = uniqueName("client")
        yield* Effect.scoped(Effect.gen(function*() {
          const cache = yield* cacheOn<string>({ client }, { name })
          yield* cache.put("k", "v")
          assert.strictEqual(yield* cache.get("k"), "v")
        }))
        assert.strictEqual(client.status, "ready")
        assert.strictEqual(yield* promise(() => client.exists(new Keyspace("vela:", name, 1).entry("k"))), 1)
      }))

    it.effect(
      "a facade program over Redis that never closes its cache still exits by itself",
      () =>
        Effect.gen(function*() {
          const server = yield* RedisServer.RedisServer
          const built = (path: string) => JSON.stringify(fileURLToPath(new URL(path, import.meta.url)))
          const program = `
          const { createCache } = await import(${built("../../core/dist/promise.js")})
          const { Redis } = await import(${built("../dist/index.js")})
          const cache = createCache({ name: ${
            JSON.stringify(uniqueName("exit"))
          }, backend: Redis.layer({ url: "${server.url}" }), nearCache: true })
          await cache.put("k", "v")
          await cache.getOrFetch("f", async () => "x")
          console.log(await cache.get("k"), await cache.get("f"))
        `
          // The child is killed at 10 s; the test waits longer, so a hanging child never outlives it.
          const { stdout } = yield* promise(() =>
            promisify(execFile)(process.execPath, ["--input-type=module", "-e", program], { timeout: 10_000 })
          )
          assert.strictEqual(stdout.trim(), "v x")
        }),
      20_000
    )

    it.scoped("data that is not a Vela entry is a CodecError, not a crash", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const name = uniqueName("corrupt")
        const cache = yield* cacheOn<string>({ url: server.url }, { name })
        yield* promise(() => raw.set(new Keyspace("vela:", name, 1).entry("k"), "garbage"))
        assert.strictEqual(yield* failureTag(cache.get("k")), "CodecError")
        assert.isFalse(yield* cache.exists("k"))
        assert.strictEqual(yield* cache.size(), 0)
        assert.strictEqual(yield* cache.getOrFetch("k", () => Effect.succeed("fresh")), "fresh")
        assert.strictEqual(yield* cache.get("k"), "fresh")
      }))
  })
})

describe("Redis outage", () => {
  layer(RedisServer.layer, { excludeTestServices: true })((it) => {
    it.scoped("Redis killed: every operation is a BackendError; restarted: the same cache recovers", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const cache = yield* cacheOn<string>({ url: server.url }, { name: uniqueName("outage") })
        yield* cache.put("k", "v")
        yield* server.stop
        const calls: ReadonlyArray<Effect.Effect<unknown, unknown>> = [
          cache.get("k"),
          cache.put("k", "w"),
          cache.delete("k"),
          cache.exists("k"),
          cache.size(),
          cache.flush(),
          cache.invalidateTag("t"),
          cache.getOrFetch("other", () => Effect.succeed("x"))
        ]
        for (const call of calls) assert.strictEqual(yield* failureTag(call), "BackendError")
        yield* server.start
        yield* eventually(cache.put("k", "back"))
        assert.strictEqual(yield* cache.get("k"), "back")
      }))

    it.scoped("Redis frozen: a command fails with BackendError after commandTimeout; thawed: recovers", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const cache = yield* cacheOn<string>({ url: server.url, commandTimeout: "200 millis" }, {
          name: uniqueName("frozen")
        })
        yield* cache.put("k", "v")
        yield* server.freeze(true)
        const error = yield* Effect.flip(cache.get("k"))
        yield* server.freeze(false)
        assert.strictEqual(error._tag, "BackendError")
        assert.match(error.message, /timed out/i)
        yield* eventually(cache.get("k"), (value) => value === "v")
      }))

    it.scoped("no server: the layer fails with BackendError", () =>
      Effect.gen(function*() {
        const port = yield* RedisServer.freePort
        const exit = yield* Effect.exit(Layer.build(Redis.layer({ url: `redis://127.0.0.1:${port}` })))
        assert.strictEqual(exit._tag, "Failure")
        if (exit._tag === "Failure") {
          assert.deepInclude(Option.getOrUndefined(Cause.failureOption(exit.cause)), {
            _tag: "BackendError",
            operation: "connect"
          })
        }
      }))
  })
})
