import { assert, describe, it } from "@effect/vitest"
import { Topology } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Effect, Exit, Layer, Option, Scope } from "effect"
import { topologyCases } from "./topologyCases.js"
import { awaitMembers, cacheOn, cluster, connected, eventually, startPartitioned } from "./utils.js"

describe("Partitioned", () => {
  it.live(
    "writes through one node are read through the others; size and invalidateTag count once",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b, c] = yield* cluster(startPartitioned, 3)
        const [ca, cb, cc] = yield* Effect.all([a, b, c].map((n) => cacheOn<number>(n.topology, "users")))
        yield* Effect.forEach(
          Array.from({ length: 300 }, (_, i) => i),
          (i) => ca.put(`user:${i}`, i, { tags: i % 3 === 0 ? ["third"] : [] }),
          { concurrency: 64 }
        )
        for (const cache of [cb, cc]) {
          const values = yield* Effect.forEach(
            Array.from({ length: 300 }, (_, i) => i),
            (i) => cache.get(`user:${i}`),
            {
              concurrency: 64
            }
          )
          assert.deepStrictEqual(
            values,
            Array.from({ length: 300 }, (_, i) => i)
          )
        }
        // Every member's counters added up, whichever member asks.
        for (const cache of [ca, cb, cc]) {
          const stats = yield* cache.stats()
          assert.deepInclude(stats, { writes: 300, hits: 600, misses: 0, hitRate: 1 })
        }
        assert.strictEqual(yield* cb.size(), 300)
        assert.strictEqual(yield* cc.invalidateTag("third"), 100)
        assert.strictEqual(yield* ca.size(), 200)
        assert.isTrue(Option.isNone(yield* cb.getOption("user:3")))
        yield* cb.flush()
        assert.strictEqual(yield* cc.size(), 0)
      })),
    30_000
  )

  it.live("getOrFetch is single-flight across nodes", () =>
    Effect.scoped(Effect.gen(function*() {
      const [a, b, c] = yield* cluster(startPartitioned, 3)
      const caches = yield* Effect.all([a, b, c].map((n) => cacheOn<string>(n.topology, "stampede")))
      for (const key of ["k1", "k2", "k3", "k4", "k5", "k6"]) {
        let runs = 0
        const fetch = () => Effect.as(Effect.sleep("100 millis"), `${key}:${++runs}`)
        const values = yield* Effect.all(
          caches.flatMap((cache) => Array.from({ length: 10 }, () => cache.getOrFetch(key, fetch))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(runs, 1, key)
        assert.deepStrictEqual(new Set(values), new Set([`${key}:1`]))
      }
    })), 30_000)

  it.live(
    "the Promise facade reads keys held on other nodes; its stats add up every member's",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b] = yield* cluster(startPartitioned, 3)
        const cb = yield* cacheOn<{ readonly i: number }>(b.topology, "facade")
        const keys = Array.from({ length: 200 }, (_, i) => `k${i}`)
        yield* Effect.forEach(keys, (key, i) => cb.put(key, { i }), { concurrency: 64, discard: true })
        const facade = createCache<{ readonly i: number }>({
          name: "facade",
          topology: Layer.succeed(Topology.Topology, a.topology)
        })
        yield* Effect.addFinalizer(() => Effect.promise(() => facade.close()))
        const read = yield* Effect.promise(() => Promise.all(keys.map((key) => facade.get(key))))
        assert.deepStrictEqual(read, keys.map((_, i) => ({ i })))
        assert.isUndefined(yield* Effect.promise(() => facade.get("absent")))
        const stats = yield* Effect.promise(() => facade.stats())
        assert.deepInclude(stats, { writes: 200, hits: 200, misses: 1 })
      })),
    30_000
  )

  it.live(
    "a holder applies the writes and deletes of a key in stamp order, whatever order they arrive in",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b] = yield* cluster((seeds) => startPartitioned(seeds, { replicas: 0 }), 2)
        // What a holder is sent, as a's batches reach b.
        const send = (op: Parameters<typeof a.node.batch>[2][number]) =>
          Effect.async<unknown>((resume) =>
            a.node.batch(b.node.id, Date.now(), [op], (answer) => resume(Effect.succeed(answer)))
          )
        const set = (key: string, version: number, origin = "n1") =>
          send({
            _tag: "Set",
            ns: "graves",
            key,
            entry: { value: JSON.stringify(`${version}@${origin}`), expiresAt: null, tags: [], version },
            origin,
            watch: false
          })
        const get = (key: string) =>
          Effect.map(send({ _tag: "Get", ns: "graves", key, watch: false }), (answer) => {
            const [result] = answer as ReadonlyArray<
              { readonly _tag: string; readonly entry?: { readonly value: string } }
            >
            return result.entry === undefined ? null : JSON.parse(result.entry.value)
          })
        yield* set("k", 100)
        yield* send({ _tag: "Delete", ns: "graves", key: "k", version: 200, origin: "n1" })
        // A write (or a handoff copy) made before the delete and delivered after it stays out.
        yield* set("k", 150)
        assert.isNull(yield* get("k"))
        yield* set("k", 300)
        assert.strictEqual(yield* get("k"), "300@n1")
        yield* set("k", 250, "n2")
        assert.strictEqual(yield* get("k"), "300@n1")
        // Equal versions are ordered by the node that made them, in either order of arrival.
        yield* set("x", 400, "n2")
        yield* set("x", 400, "n1")
        yield* set("y", 400, "n1")
        yield* set("y", 400, "n2")
        assert.strictEqual(yield* get("x"), "400@n2")
        assert.strictEqual(yield* get("y"), "400@n2")
        // A delete older than the key's write changes nothing.
        yield* send({ _tag: "Delete", ns: "graves", key: "y", version: 350, origin: "n3" })
        assert.strictEqual(yield* get("y"), "400@n2")
      })),
    30_000
  )

  it.live(
    "a node that leaves gracefully loses nothing with replicas 1; a node that joins reads everything",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const a = yield* startPartitioned([])
        const b = yield* startPartitioned([a.node.id])
        const leavingScope = yield* Scope.make()
        const c = yield* startPartitioned([a.node.id]).pipe(Scope.extend(leavingScope))
        yield* connected([a, b, c])
        const ca = yield* cacheOn<number>(a.topology, "durable")
        const keys = Array.from({ length: 500 }, (_, i) => `k${i}`)
        yield* Effect.forEach(keys, (key, i) => ca.put(key, i), { concurrency: 64, discard: true })
        yield* Scope.close(leavingScope, Exit.void)
        yield* awaitMembers(a.node, [a.node.id, b.node.id])
        const read = yield* Effect.forEach(keys, (key) => ca.get(key), { concurrency: 64 })
        assert.deepStrictEqual(read, keys.map((_, i) => i))
        assert.strictEqual(yield* ca.size(), 500)

        const d = yield* startPartitioned([b.node.id])
        yield* connected([a, b, d])
        const cd = yield* cacheOn<number>(d.topology, "durable")
        const fromD = yield* Effect.forEach(keys, (key) => cd.get(key), { concurrency: 64 })
        assert.deepStrictEqual(fromD, keys.map((_, i) => i))
        // Handoff settles: every key counted once, on its new owner.
        yield* eventually(Effect.flatMap(cd.size(), (n) => n === 500 ? Effect.void : Effect.fail(n)))
      })),
    30_000
  )

  it.live(
    "with replicas 0, a node that leaves gracefully hands its keys over first",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const a = yield* startPartitioned([], { replicas: 0 })
        const leavingScope = yield* Scope.make()
        const b = yield* startPartitioned([a.node.id], { replicas: 0 }).pipe(Scope.extend(leavingScope))
        yield* connected([a, b])
        const ca = yield* cacheOn<number>(a.topology, "handoff")
        const keys = Array.from({ length: 300 }, (_, i) => `k${i}`)
        yield* Effect.forEach(keys, (key, i) => ca.put(key, i), { concurrency: 64, discard: true })
        yield* Scope.close(leavingScope, Exit.void)
        yield* awaitMembers(a.node, [a.node.id])
        assert.deepStrictEqual(yield* Effect.forEach(keys, (key) => ca.get(key)), keys.map((_, i) => i))
        assert.strictEqual(yield* ca.size(), 300)
      })),
    30_000
  )

  topologyCases(startPartitioned)
})
