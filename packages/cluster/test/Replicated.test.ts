import { assert, describe, it } from "@effect/vitest"
import { Topology } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Effect, Fiber, Layer, Option } from "effect"
import { topologyCases } from "./topologyCases.js"
import { cacheOn, cluster, connected, eventually, startReplicated } from "./utils.js"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

describe("Replicated", () => {
  it.live(
    "the Promise facade over an in-memory store: deletes, batches, tags and flushes reach the other node",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b] = yield* cluster(startReplicated, 2)
        const cb = yield* cacheOn<number>(b.topology, "facade")
        const facade = createCache<number>({ name: "facade", topology: Layer.succeed(Topology.Topology, a.topology) })
        yield* Effect.addFinalizer(() => Effect.promise(() => facade.close()))
        // Each of these replicates over the network: none can be run synchronously, as a Memory cache's are.
        const calls = Effect.promise(async () => {
          await facade.put("k", 1)
          await facade.delete("k")
          await facade.putMany([["x", 1], ["y", 2], ["z", 3]], { tags: ["t"] })
          return {
            removed: await facade.invalidateTag("t"),
            deleted: await facade.deleteMany(["nothing"]),
            size: await facade.size()
          }
        })
        assert.deepStrictEqual(yield* calls, { removed: 3, deleted: 0, size: 0 })
        yield* Effect.promise(() => facade.put("f", 1))
        const arrived = cb.getOption("f").pipe(Effect.filterOrFail(Option.isSome, () => new Error("not there yet")))
        assert.strictEqual(Option.getOrUndefined(yield* eventually(arrived)), 1)
        yield* Effect.promise(() => facade.flush())
        const gone = cb.getOption("f").pipe(Effect.filterOrFail(Option.isNone, () => new Error("still there")))
        assert.isTrue(Option.isNone(yield* eventually(gone)))
      })),
    30_000
  )

  it.live(
    "a write on one node is read locally on every node; tags, deletes and flushes reach all; stats add up",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b, c] = yield* cluster(startReplicated, 3)
        const [ca, cb, cc] = yield* Effect.all([a, b, c].map((n) => cacheOn<number>(n.topology, "users")))
        yield* Effect.forEach(range(300), (i) => ca.put(`user:${i}`, i, { tags: i % 3 === 0 ? ["third"] : [] }), {
          concurrency: 64,
          discard: true
        })
        // A put is acknowledged once every live peer applied it: the others hold it already.
        for (const cache of [cb, cc]) {
          assert.deepStrictEqual(yield* Effect.forEach(range(300), (i) => cache.get(`user:${i}`)), range(300))
          assert.strictEqual(yield* cache.size(), 300)
        }
        // Every member's counters added up, whichever member asks.
        for (const cache of [ca, cb, cc]) {
          assert.deepInclude(yield* cache.stats(), { writes: 300, hits: 600, misses: 0, hitRate: 1 })
        }
        assert.strictEqual(yield* cc.invalidateTag("third"), 100)
        for (const cache of [ca, cb, cc]) {
          assert.strictEqual(yield* cache.size(), 200)
          assert.isTrue(Option.isNone(yield* cache.getOption("user:3")))
        }
        yield* cb.delete("user:1")
        assert.isFalse(yield* ca.exists("user:1"))
        yield* ca.put("user:1", -1)
        yield* cb.flush()
        for (const cache of [ca, cb, cc]) assert.strictEqual(yield* cache.size(), 0)
        yield* cc.put("after", 1)
        assert.strictEqual(yield* ca.get("after"), 1)
      })),
    30_000
  )

  it.live(
    "concurrent conflicting writes of one key converge to one value on every node",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b, c] = yield* cluster(startReplicated, 3)
        const caches = yield* Effect.all([a, b, c].map((n) => cacheOn<string>(n.topology, "race")))
        const keys = range(20).map((i) => `k${i}`)
        yield* Effect.forEach(
          keys,
          (key) =>
            Effect.all(
              caches.flatMap((cache, n) => range(5).map((w) => cache.put(key, `${n}:${w}`, { tags: ["t"] }))),
              { concurrency: "unbounded", discard: true }
            ),
          { concurrency: "unbounded", discard: true }
        )
        const views = yield* Effect.forEach(caches, (cache) => Effect.forEach(keys, (key) => cache.get(key)))
        assert.deepStrictEqual(views[1], views[0])
        assert.deepStrictEqual(views[2], views[0])
        // Racing deletes and tag invalidations with puts leaves every node with the same entries.
        yield* Effect.all([
          caches[0].invalidateTag("t"),
          ...keys.map((key, i) => caches[i % 3].put(key, "late")),
          ...keys.map((key, i) => caches[(i + 1) % 3].delete(key))
        ], { concurrency: "unbounded", discard: true })
        const after = yield* Effect.forEach(
          caches,
          (cache) => Effect.forEach(keys, (key) => Effect.map(cache.getOption(key), Option.getOrNull))
        )
        assert.deepStrictEqual(after[1], after[0])
        assert.deepStrictEqual(after[2], after[0])
      })),
    30_000
  )

  it.live(
    "a late joiner copies the full state in chunks before it serves, and gets writes made meanwhile",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b] = yield* cluster(startReplicated, 2)
        const ca = yield* cacheOn<{ readonly i: number }>(a.topology, "big")
        yield* Effect.forEach(range(3000), (i) => ca.put(`k${i}`, { i }, { tags: i % 2 === 0 ? ["even"] : [] }), {
          concurrency: 64,
          discard: true
        })
        yield* ca.delete("k0")
        // Writes keep coming while the joiner copies.
        const writer = yield* Effect.fork(
          Effect.forEach(range(500), (i) => ca.put(`w${i}`, { i }), { concurrency: 8, discard: true })
        )
        // Writes that a makes before it hears of c reach c through anti-entropy.
        const c = yield* startReplicated([b.node.id], { chunkSize: 100, antiEntropyInterval: "300 millis" })
        const cc = yield* cacheOn<{ readonly i: number }>(c.topology, "big")
        // Built means copied: every entry is readable at once, before any other write is awaited.
        assert.isTrue(Option.isNone(yield* cc.getOption("k0")))
        const read = yield* Effect.forEach(range(3000), (i) => Effect.map(cc.getOption(`k${i}`), Option.getOrNull))
        assert.deepStrictEqual(read.slice(1), range(3000).slice(1).map((i) => ({ i })))
        yield* Fiber.join(writer)
        yield* eventually(Effect.filterOrFail(cc.size(), (n) => n === 3499, (n) => new Error(`size ${n}`)))
        assert.deepStrictEqual(
          yield* Effect.forEach(range(500), (i) => cc.get(`w${i}`)),
          range(500).map((i) => ({ i }))
        )
        assert.strictEqual(yield* cc.invalidateTag("even"), 1499)
        assert.strictEqual(yield* ca.size(), 2000)
      })),
    30_000
  )

  it.live(
    "two clusters that meet (a healed partition) merge by anti-entropy; the newest write of a key wins",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const fast = { antiEntropyInterval: "300 millis" } as const
        const a = yield* startReplicated([], fast)
        const c = yield* startReplicated([], fast)
        const ca = yield* cacheOn<string>(a.topology, "merge")
        const cc = yield* cacheOn<string>(c.topology, "merge")
        yield* Effect.forEach(range(200), (i) => ca.put(`a${i}`, "from a"), { discard: true })
        yield* ca.put("both", "older")
        yield* ca.put("gone", "x")
        yield* Effect.forEach(range(200), (i) => cc.put(`c${i}`, "from c"), { discard: true })
        yield* cc.put("both", "newer")
        yield* cc.put("gone", "y")
        yield* cc.delete("gone")
        // A third node knows both: they learn of each other through it and pull what differs.
        const b = yield* startReplicated([a.node.id, c.node.id], fast)
        yield* connected([a, b, c])
        const cb = yield* cacheOn<string>(b.topology, "merge")
        for (const cache of [ca, cb, cc]) {
          yield* eventually(Effect.filterOrFail(cache.size(), (n) => n === 401, (n) => new Error(`size ${n}`)))
          assert.strictEqual(yield* cache.get("both"), "newer")
          assert.isFalse(yield* cache.exists("gone"))
          assert.strictEqual(yield* cache.get("a7"), "from a")
          assert.strictEqual(yield* cache.get("c7"), "from c")
        }
      })),
    30_000
  )

  topologyCases(startReplicated)
})
