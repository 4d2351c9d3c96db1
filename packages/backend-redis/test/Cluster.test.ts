import { assert, describe, layer } from "@effect/vitest"
import { Redis } from "@vela/backend-redis"
import { Local, NearCache, Vela } from "@vela/core"
import { conformance } from "@vela/core/testing"
import { Effect, Layer, Option } from "effect"
import { Cluster } from "ioredis"
import { eventually, promise, uniqueName } from "./utils/caches.js"
import * as RedisCluster from "./utils/RedisCluster.js"

// The conformance suite runs on a TestClock: see Redis.test.ts for the grace.
const clusterBackend = Layer.unwrapEffect(
  Effect.map(
    RedisCluster.RedisCluster,
    (cluster) => Redis.layerCluster({ nodes: cluster.nodes, expiryGrace: "10 minutes" })
  )
)

conformance(
  "Redis Cluster + Local",
  Local.layer.pipe(Layer.provide(clusterBackend), Layer.provide(RedisCluster.layer)),
  { runs: 15 }
)

describe("Redis Cluster", () => {
  layer(RedisCluster.layer, { excludeTestServices: true })((it) => {
    it.scoped("one cache's keys spread over several masters; tags and flush reach all of them", () =>
      Effect.gen(function*() {
        const { nodes } = yield* RedisCluster.RedisCluster
        const name = uniqueName("spread")
        const context = yield* Layer.build(Local.layer.pipe(Layer.provide(Redis.layerCluster({ nodes }))))
        const cache = yield* Effect.provide(Vela.make<number>({ name }), context)
        yield* Effect.forEach(
          Array.from({ length: 200 }, (_, i) => i),
          (i) => cache.put(`k${i}`, i, { tags: [i % 2 === 0 ? "even" : "odd", "all"] }),
          { concurrency: 32 }
        )
        const raw = yield* Effect.acquireRelease(
          Effect.sync(() => new Cluster(nodes.map((node) => node))),
          (client) => Effect.sync(() => client.disconnect())
        )
        yield* promise(() => raw.ping())
        const perMaster = yield* Effect.forEach(raw.nodes("master"), (node) => promise(() => node.dbsize()))
        assert.isAtLeast(perMaster.filter((n) => n > 0).length, 2, `keys per master: ${perMaster}`)
        assert.strictEqual(yield* cache.size(), 200)
        assert.strictEqual(yield* cache.invalidateTag("even"), 100)
        assert.strictEqual(yield* cache.size(), 100)
        assert.strictEqual(yield* cache.get("k1"), 1)
        assert.isTrue(Option.isNone(yield* cache.getOption("k2")))
        yield* cache.flush()
        assert.strictEqual(yield* cache.size(), 0)
        assert.strictEqual(yield* cache.invalidateTag("all"), 0)
      }))

    it.scoped("near caches on two cluster backends stay coherent through the bus", () =>
      Effect.gen(function*() {
        const { nodes } = yield* RedisCluster.RedisCluster
        const name = uniqueName("near")
        const cacheOn = Effect.gen(function*() {
          const topology = NearCache.layer({ ttl: "1 hour" }).pipe(
            Layer.provide(Local.layer),
            Layer.provide(Redis.layerCluster({ nodes }))
          )
          return yield* Effect.provide(Vela.make<string>({ name }), yield* Layer.build(topology))
        })
        const a = yield* cacheOn
        const b = yield* cacheOn
        const read = (key: string) => Effect.map(b.getOption(key), Option.getOrUndefined)
        for (const key of ["x", "y", "z"]) {
          yield* a.put(key, "v1", { tags: ["t"] })
          yield* eventually(read(key), (v) => v === "v1")
          yield* a.put(key, "v2", { tags: ["t"] })
          assert.strictEqual(yield* eventually(read(key), (v) => v === "v2"), "v2")
        }
        yield* a.invalidateTag("t")
        for (const key of ["x", "y", "z"]) assert.isUndefined(yield* eventually(read(key), (v) => v === undefined))
      }))
  })
})
