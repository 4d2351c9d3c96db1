import { assert, describe, layer } from "@effect/vitest"
import { Codec } from "@vela/core"
import { Effect, Either, Option } from "effect"
import * as Entry from "../src/internal/entry.js"
import { Keyspace } from "../src/internal/keys.js"
import { cacheOn, eventually, promise, rawClient, uniqueName } from "./utils/caches.js"
import * as Child from "./utils/Child.js"
import * as RedisServer from "./utils/RedisServer.js"

// Child processes run the built packages: `npm run build` (or `npx tsc -b packages/backend-redis`) first.
describe("several processes", () => {
  layer(RedisServer.layer, { excludeTestServices: true })((it) => {
    it.scoped("two processes share values, tags, TTL and flush", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const name = uniqueName("procs")
        const a = yield* cacheOn<unknown>({ url: server.url }, { name })
        const b = yield* Child.start(server.url, name, "plain")
        yield* a.put("a", { n: 1 }, { tags: ["t"] })
        assert.deepStrictEqual(yield* b.request({ op: "get", key: "a" }), { n: 1 })
        yield* b.request({ op: "put", key: "b", value: "short", ttl: 100, tags: ["t"] })
        yield* b.request({ op: "put", key: "c", value: "other", tags: ["u"] })
        assert.strictEqual(yield* a.get("c"), "other")
        // Redis expires b for every process.
        yield* eventually(a.getOption("b"), Option.isNone)
        assert.strictEqual(yield* b.request({ op: "invalidateTag", tag: "t" }), 1)
        assert.isTrue(Option.isNone(yield* a.getOption("a")))
        assert.strictEqual(yield* b.request({ op: "size" }), 1)
        yield* a.flush()
        assert.isNull(yield* b.request({ op: "get", key: "c" }))
        assert.strictEqual(yield* b.request({ op: "size" }), 0)
      }), 30_000) // child processes start slowly on a loaded machine

    it.scoped("a change in one process drops the near-cache entry of another", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const name = uniqueName("near-procs")
        const keys = new Keyspace("vela:", name, 1)
        const raw = yield* rawClient(server.url)
        const a = yield* cacheOn<string>({ url: server.url }, { name }, { ttl: "1 hour" })
        const b = yield* Child.start(server.url, name, "near")
        const read = (key: string) => b.request({ op: "get", key })
        /** Puts `key` in Redis behind everyone's back, has B read it, removes it: only B's L1 has it. */
        const onlyInBsL1 = (key: string, value: string, tags: ReadonlyArray<string> = []) =>
          Effect.gen(function*() {
            const payload = Either.getOrThrow(
              Entry.encode(Codec.json, key, { value, expiresAt: null, tags, version: 0 })
            )
            yield* promise(() => raw.set(keys.entry(key), payload))
            for (const tag of tags) yield* promise(() => raw.sadd(keys.tagSet(tag, 0), keys.entry(key)))
            assert.strictEqual(yield* read(key), value)
            yield* promise(() => raw.del(keys.entry(key)))
            assert.strictEqual(yield* read(key), value, `B serves ${key} from its L1`)
            if (tags.length > 0) yield* promise(() => raw.set(keys.entry(key), payload))
          })

        yield* onlyInBsL1("w", "old")
        yield* a.put("w", "new")
        assert.strictEqual(yield* eventually(read("w"), (v) => v === "new"), "new")

        yield* onlyInBsL1("d", "old")
        yield* a.delete("d")
        assert.isNull(yield* eventually(read("d"), (v) => v === null))

        yield* onlyInBsL1("t", "old", ["group"])
        assert.strictEqual(yield* a.invalidateTag("group"), 1)
        assert.isNull(yield* eventually(read("t"), (v) => v === null))

        yield* onlyInBsL1("f", "old")
        yield* a.flush()
        assert.isNull(yield* eventually(read("f"), (v) => v === null))
      }), 30_000)

    it.scoped("three processes missing one key run the fetch once", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const name = uniqueName("flight-procs")
        const children = yield* Effect.all([1, 2, 3].map(() => Child.start(server.url, name, "plain")), {
          concurrency: "unbounded"
        })
        const answers = (yield* Effect.all(
          children.map((child) => child.request({ op: "getOrFetch", key: "k", sleep: 300 })),
          { concurrency: "unbounded" }
        )) as ReadonlyArray<{ readonly value: string; readonly fetches: number }>
        assert.strictEqual(answers.reduce((sum, answer) => sum + answer.fetches, 0), 1)
        assert.strictEqual(new Set(answers.map((answer) => answer.value)).size, 1)
      }), 30_000) // three Node processes start slowly on a loaded machine

    it.scoped(
      "three processes (two plain, one behind a near cache) incrementing one key lose no increment",
      () =>
        Effect.gen(function*() {
          const server = yield* RedisServer.RedisServer
          const name = uniqueName("incr-procs")
          const children = yield* Effect.all(
            (["plain", "near", "plain"] as const).map((mode) => Child.start(server.url, name, mode)),
            { concurrency: "unbounded" }
          )
          const each = 200
          const sums = (yield* Effect.all(
            children.map((child) => child.request({ op: "increment", key: "n", count: each })),
            { concurrency: "unbounded" }
          )) as ReadonlyArray<ReadonlyArray<number>>
          // Every increment saw its own sum: 1 to 600, each once.
          const all = sums.flat().sort((a, b) => a - b)
          assert.deepStrictEqual(all, Array.from({ length: 3 * each }, (_, i) => i + 1))
          const a = yield* cacheOn<number>({ url: server.url }, { name })
          assert.strictEqual(yield* a.get("n"), 3 * each)
        }),
      60_000
    )

    it.scoped(
      "three processes taking the same keys: each key goes to exactly one of them",
      () =>
        Effect.gen(function*() {
          const server = yield* RedisServer.RedisServer
          const name = uniqueName("take-procs")
          const a = yield* cacheOn<number>({ url: server.url }, { name })
          const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
          yield* Effect.forEach(keys, (key, i) => a.put(key, i, { tags: ["all"] }), { discard: true })
          const children = yield* Effect.all(
            (["plain", "near", "plain"] as const).map((mode) => Child.start(server.url, name, mode)),
            { concurrency: "unbounded" }
          )
          const won = (yield* Effect.all(
            children.map((child) => child.request({ op: "take", keys })),
            { concurrency: "unbounded" }
          )) as ReadonlyArray<ReadonlyArray<string>>
          assert.deepStrictEqual(won.flat().sort(), [...keys].sort())
          assert.strictEqual(yield* a.size(), 0)
          assert.strictEqual(yield* a.invalidateTag("all"), 0)
        }),
      60_000
    )
  })
})
