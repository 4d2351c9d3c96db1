import { assert, describe, layer } from "@effect/vitest"
import { Redis } from "@vela/backend-redis"
import type { CacheError } from "@vela/core"
import { Backend } from "@vela/core"
import { openOptions } from "@vela/core/testing"
import type { Duration } from "effect"
import { Effect, Layer } from "effect"
import { Keyspace } from "../src/internal/keys.js"
import { cacheOn, failureTag, promise, rawClient, uniqueName } from "./utils/caches.js"
import * as RedisServer from "./utils/RedisServer.js"

// Each cache has its own backend (its own connections), as separate processes would: only the
// Redis lease can keep them from fetching the same key together.
const caches = (url: string, name: string, n: number, stampedeTimeout: Duration.DurationInput = "5 seconds") =>
  Effect.forEach(Array.from({ length: n }), () => cacheOn<string>({ url }, { name, stampedeTimeout }))

describe("distributed single flight", () => {
  layer(RedisServer.layer, { excludeTestServices: true })((it) => {
    it.scoped("N caches missing one key run the fetch once; the others read its value", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const all = yield* caches(server.url, uniqueName("flight"), 5)
        let runs = 0
        const fetch = (key: string) => Effect.as(Effect.sleep("150 millis"), `${key}#${++runs}`)
        const values = yield* Effect.forEach(all, (cache) => cache.getOrFetch("k", fetch), { concurrency: "unbounded" })
        assert.strictEqual(runs, 1)
        assert.deepStrictEqual(values, Array(5).fill("k#1"))
        const stats = yield* Effect.forEach(all, (cache) => cache.stats())
        assert.strictEqual(stats.reduce((sum, s) => sum + s.fetches, 0), 1)
        // Different keys do not wait for each other.
        const keys = yield* Effect.forEach(all, (cache, i) => cache.getOrFetch(`k${i}`, fetch), {
          concurrency: "unbounded"
        })
        assert.strictEqual(new Set(keys).size, 5)
        assert.strictEqual(runs, 6)
      }))

    it.scoped("near caches in front of Redis keep the single flight", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const name = uniqueName("near-flight")
        const all = yield* Effect.forEach(
          Array.from({ length: 4 }),
          () => cacheOn<string>({ url: server.url }, { name }, { ttl: "1 minute" })
        )
        let runs = 0
        const fetch = (key: string) => Effect.as(Effect.sleep("150 millis"), `${key}#${++runs}`)
        const values = yield* Effect.forEach(all, (cache) => cache.getOrFetch("k", fetch), { concurrency: "unbounded" })
        assert.strictEqual(runs, 1)
        assert.deepStrictEqual(values, Array(4).fill("k#1"))
      }))

    it.scoped("a waiter gets the plain value of a fetch stored with stale-while-revalidate", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const name = uniqueName("graced")
        const [first, second] = yield* Effect.all(
          [1, 2].map(() => cacheOn<{ readonly n: number }>({ url: server.url }, { name }))
        )
        const options = { ttl: "1 minute", grace: "1 hour" } as const
        let runs = 0
        const fetch = () => Effect.as(Effect.sleep("100 millis"), { n: ++runs })
        const [a, b] = yield* Effect.all([
          first.getOrFetch("k", fetch, options),
          Effect.zipRight(Effect.sleep("20 millis"), second.getOrFetch("k", fetch, options))
        ], { concurrency: "unbounded" })
        assert.strictEqual(runs, 1)
        assert.deepStrictEqual(a, { n: 1 })
        assert.deepStrictEqual(b, { n: 1 })
      }))

    it.scoped("a process that missed before another stored the value does not fetch it again", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const namespace = uniqueName("late")
        // Two stores of one namespace on separate connections, as two processes would have them.
        const open = Effect.flatMap(Layer.build(Redis.layer({ url: server.url })), (context) =>
          Backend.Backend.pipe(
            Effect.flatMap((backend) => backend.open(openOptions(namespace))),
            Effect.provide(context)
          ))
        const [first, second] = yield* Effect.all([open, open])
        let runs = 0
        const fetchInto = (write: (entry: Backend.Entry) => Effect.Effect<boolean, CacheError>) =>
          Effect.suspend(() => {
            const value = `run ${++runs}`
            return Effect.as(write({ value, expiresAt: null, tags: [], version: 0 }), value)
          })
        // The second process missed "k" just before the first fetched, stored it and let go of the lease.
        assert.strictEqual(yield* first.singleFlight!("k", fetchInto, 1_000), "run 1")
        assert.strictEqual(yield* second.singleFlight!("k", fetchInto, 1_000), "run 1")
        assert.strictEqual(runs, 1)
      }))

    it.scoped("a failed fetch releases the lease: a waiter fetches instead", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const [first, second] = yield* caches(server.url, uniqueName("failover"), 2)
        const failing = Effect.zipRight(Effect.sleep("100 millis"), Effect.fail("source down" as const))
        const [failed, value] = yield* Effect.all([
          Effect.flip(first.getOrFetch("k", () => failing)),
          Effect.zipRight(Effect.sleep("20 millis"), second.getOrFetch("k", () => Effect.succeed("fetched by B")))
        ], { concurrency: "unbounded" })
        assert.strictEqual(failed, "source down")
        assert.strictEqual(value, "fetched by B")
        assert.strictEqual(yield* first.get("k"), "fetched by B")
      }))

    it.scoped("a waiter gives up with FetchTimeout after stampedeTimeout", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const name = uniqueName("timeout")
        const [cache] = yield* caches(server.url, name, 1, "300 millis")
        const raw = yield* rawClient(server.url)
        // Another process holds the lease and never delivers.
        yield* promise(() => raw.set(new Keyspace("vela:", name, 1).lease("k"), "someone", "PX", 10_000))
        let runs = 0
        assert.strictEqual(
          yield* failureTag(cache.getOrFetch("k", () => Effect.sync(() => `${++runs}`))),
          "FetchTimeout"
        )
        assert.strictEqual(runs, 0)
      }))
  })
})
