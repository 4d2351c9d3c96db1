import { assert, describe, it } from "@effect/vitest"
import { Local, Memory, Vela } from "@vela/core"
import { ConfigProvider, Context, Effect, Exit, Fiber, Layer, Option, TestClock } from "effect"
import { resolve } from "../src/internal/cache/config.js"

class Numbers extends Context.Tag("Numbers")<Numbers, Vela.Cache<number>>() {}

const memory = Local.layer.pipe(Layer.provide(Memory.layer()))

const make = <V = number>(config: Vela.Config<V> = {}) =>
  Vela.make<V>({ ...config, name: config.name ?? "test" }).pipe(Effect.provide(memory))

const configErrorOf = (config: Vela.Config<unknown>) =>
  Effect.flip(Effect.scoped(make(config))).pipe(
    Effect.map((error) => error as unknown as { _tag: string; field: string })
  )

describe("Vela config", () => {
  it.effect("a nonsensical config fails with ConfigError naming the field", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<[Vela.Config<unknown>, string]> = [
        [{ maxSize: -1 }, "maxSize"],
        [{ maxSize: 0 }, "maxSize"],
        [{ maxSize: 1.5 }, "maxSize"],
        [{ sweepInterval: 0 }, "sweepInterval"],
        [{ sweepInterval: -10 }, "sweepInterval"],
        [{ sweepInterval: "infinity" as never }, "sweepInterval"],
        [{ stampedeTimeout: 0 }, "stampedeTimeout"],
        [{ stampedeTimeout: "-5 seconds" }, "stampedeTimeout"],
        [{ evictionPolicy: "fifo" as never }, "evictionPolicy"],
        [{ defaultTtl: "five minutes" as never }, "defaultTtl"],
        [{ defaultTtl: 0 }, "defaultTtl"],
        [{ defaultTtl: NaN }, "defaultTtl"],
        [{ statsEnabled: "yes" as never }, "statsEnabled"],
        [{ telemetryPrefix: [] as never }, "telemetryPrefix"],
        [{ name: "" }, "name"],
        // Durations that drive timers: 1 ms to 2^31 - 1 ms, never clamped by Node.
        [{ sweepInterval: "1 nanos" }, "sweepInterval"],
        [{ sweepInterval: 0.5 }, "sweepInterval"],
        [{ sweepInterval: 2 ** 31 }, "sweepInterval"],
        [{ stampedeTimeout: "25 days" }, "stampedeTimeout"],
        [{ stampedeTimeout: "10 micros" }, "stampedeTimeout"],
        [{ softTimeout: 2 ** 31 }, "softTimeout"],
        [{ softTimeout: "1 nanos" }, "softTimeout"],
        [{ hardTimeout: 1e12 }, "hardTimeout"],
        // Typos in plain JavaScript name the unknown field.
        [{ maxsize: 10 } as never, "maxsize"],
        [{ ttl: 1_000 } as never, "ttl"]
      ]
      for (const [config, field] of cases) {
        const error = yield* configErrorOf(config)
        assert.strictEqual(error._tag, "ConfigError", JSON.stringify(config))
        assert.strictEqual(error.field, field, JSON.stringify(config))
      }
    }))

  it("the longest timer durations are accepted, and a TTL past 2^53 - 1 ms means no expiry", () => {
    const resolved = resolve({
      name: "n",
      sweepInterval: 2 ** 31 - 1,
      stampedeTimeout: 1,
      softTimeout: 0,
      hardTimeout: "infinity",
      defaultTtl: 1e19
    })
    assert.isTrue(resolved._tag === "Right")
    if (resolved._tag !== "Right") return
    assert.deepStrictEqual(
      [resolved.right.sweepInterval, resolved.right.stampedeTimeout, resolved.right.defaultTtl],
      [2 ** 31 - 1, 1, Infinity]
    )
  })

  it("defaults are the original's", () => {
    const resolved = resolve({ name: "n" })
    assert.isTrue(resolved._tag === "Right")
    if (resolved._tag !== "Right") return
    const { codec: _, ...rest } = resolved.right
    assert.deepStrictEqual(rest, {
      name: "n",
      defaultTtl: Infinity,
      maxSize: Infinity,
      evictionPolicy: "ttl-only",
      stampedeProtection: true,
      stampedeTimeout: 5_000,
      statsEnabled: true,
      telemetryPrefix: ["vela", "cache"],
      sweepInterval: 30_000,
      grace: 0,
      softTimeout: 0,
      hardTimeout: Infinity,
      refreshBackoff: 5_000
    })
  })

  it.effect("layer names the cache after its Tag", () =>
    Effect.gen(function*() {
      const cache = yield* Numbers
      assert.strictEqual(cache.name, "Numbers")
    }).pipe(Effect.provide(Vela.layerMemory(Numbers))))

  it.effect("layerConfig: environment values override the code's", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromMap(
        new Map([["VELA_DEFAULT_TTL", "1000"], ["VELA_MAX_SIZE", "2"], ["VELA_EVICTION_POLICY", "lru"]]),
        { pathDelim: "_" }
      )
      const layer = Vela.layerConfig(Numbers, { defaultTtl: "1 hour", maxSize: 100 }).pipe(
        Layer.provide(memory),
        Layer.provide(Layer.setConfigProvider(provider))
      )
      yield* Effect.gen(function*() {
        const cache = yield* Numbers
        yield* cache.put("a", 1)
        yield* cache.put("b", 2)
        yield* cache.get("a")
        yield* cache.put("c", 3) // evicts b, the least recently used
        assert.isFalse(yield* cache.exists("b"))
        yield* TestClock.adjust(1000)
        assert.strictEqual(yield* cache.size(), 0)
      }).pipe(Effect.provide(layer))
    }))

  it.effect("layerConfig: a malformed environment value is a ConfigError naming the field", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromMap(new Map([["VELA_SWEEP_INTERVAL", "often"]]), { pathDelim: "_" })
      const layer = Vela.layerConfig(Numbers).pipe(
        Layer.provide(memory),
        Layer.provide(Layer.setConfigProvider(provider))
      )
      const error = yield* Effect.flip(Effect.provide(Numbers, layer))
      assert.strictEqual(error._tag, "ConfigError")
      assert.strictEqual((error as { field: string }).field, "sweepInterval")
    }))
})

describe("Vela TTL", () => {
  it.scoped("defaultTtl applies to puts without ttl; a put replaces the TTL", () =>
    Effect.gen(function*() {
      const cache = yield* make({ defaultTtl: "1 second" })
      yield* cache.put("a", 1)
      yield* cache.put("b", 2, { ttl: "infinity" })
      yield* cache.put("c", 3, { ttl: 100 })
      yield* cache.put("c", 4)
      yield* TestClock.adjust(999)
      assert.strictEqual(yield* cache.get("a"), 1)
      assert.strictEqual(yield* cache.get("c"), 4)
      yield* TestClock.adjust(1)
      assert.isTrue(Option.isNone(yield* cache.getOption("a")))
      assert.isTrue(Option.isNone(yield* cache.getOption("c")))
      assert.strictEqual(yield* cache.get("b"), 2)
    }))

  it.scoped("reading does not extend a TTL", () =>
    Effect.gen(function*() {
      const cache = yield* make()
      yield* cache.put("a", 1, { ttl: 100 })
      for (let i = 0; i < 9; i++) {
        yield* TestClock.adjust(10)
        yield* cache.get("a")
      }
      yield* TestClock.adjust(10)
      assert.isFalse(yield* cache.exists("a"))
    }))

  it.scoped("the sweeper removes expired entries every sweepInterval without any read", () =>
    Effect.gen(function*() {
      const cache = yield* make({ sweepInterval: "1 second" })
      for (let i = 0; i < 100; i++) yield* cache.put(`k${i}`, i, { ttl: i < 60 ? 500 : 5_000 })
      yield* TestClock.adjust(600)
      assert.strictEqual((yield* cache.stats()).expirations, 0)
      yield* TestClock.adjust(400)
      assert.strictEqual((yield* cache.stats()).expirations, 60)
      yield* TestClock.adjust(5_000)
      assert.strictEqual((yield* cache.stats()).expirations, 100)
      assert.strictEqual(yield* cache.size(), 0)
    }))

  it.effect("closing the scope stops the sweeper", () =>
    Effect.gen(function*() {
      const cache = yield* Effect.scoped(make({ sweepInterval: "1 second" }))
      yield* TestClock.adjust(5_000)
      assert.strictEqual((yield* TestClock.sleeps()).length, 0)
      assert.strictEqual((yield* Effect.flip(cache.size()))._tag, "CacheClosed")
    }))
})

describe("Vela stats", () => {
  it.scoped("counts hits, misses, writes, deletes, expirations and the hit rate", () =>
    Effect.gen(function*() {
      const cache = yield* make()
      assert.strictEqual((yield* cache.stats()).hitRate, 0)
      yield* cache.put("a", 1, { tags: ["t"] })
      yield* cache.put("a", 2, { tags: ["t"] })
      yield* cache.put("b", 3, { ttl: 10, tags: ["t"] })
      yield* cache.get("a")
      yield* cache.getOption("zz")
      yield* Effect.either(cache.get("zz"))
      yield* cache.exists("a")
      yield* cache.delete("nothing")
      yield* cache.put("c", 4)
      yield* cache.delete("c")
      yield* TestClock.adjust(10)
      assert.strictEqual(yield* cache.invalidateTag("t"), 1)
      const stats = yield* cache.stats()
      assert.deepStrictEqual(stats, {
        hits: 1,
        misses: 2,
        writes: 4,
        deletes: 2,
        evictions: 0,
        expirations: 1,
        fetches: 0,
        fetchErrors: 0,
        coalesced: 0,
        codecErrors: 0,
        staleHits: 0,
        refreshes: 0,
        refreshErrors: 0,
        hitRate: 1 / 3
      })
    }))

  it.scoped("counts evictions by maxSize", () =>
    Effect.gen(function*() {
      const cache = yield* make({ maxSize: 10, evictionPolicy: "lfu" })
      for (let i = 0; i < 25; i++) yield* cache.put(`k${i}`, i)
      assert.strictEqual((yield* cache.stats()).evictions, 15)
      assert.strictEqual(yield* cache.size(), 10)
    }))

  it.scoped("statsEnabled: false keeps every counter at 0", () =>
    Effect.gen(function*() {
      const cache = yield* make({ statsEnabled: false, maxSize: 1 })
      yield* cache.put("a", 1)
      yield* cache.put("b", 1)
      yield* cache.get("b")
      yield* cache.getOrFetch("c", () => Effect.succeed(3))
      const { hitRate, ...counters } = yield* cache.stats()
      assert.strictEqual(hitRate, 0)
      assert.isTrue(Object.values(counters).every((n) => n === 0))
    }))
})

describe("Vela getOrFetch", () => {
  it.scoped("after stampedeTimeout the waiters get FetchTimeout, the fetch is interrupted and stores nothing", () =>
    Effect.gen(function*() {
      const cache = yield* make({ stampedeTimeout: "1 second" })
      let interrupted = false
      const slow = Effect.as(Effect.sleep("3 seconds"), 42).pipe(
        Effect.onInterrupt(() => Effect.sync(() => interrupted = true))
      )
      const first = yield* Effect.fork(Effect.flip(cache.getOrFetch("k", () => slow)))
      yield* TestClock.adjust("500 millis")
      const joiner = yield* Effect.fork(Effect.flip(cache.getOrFetch("k", () => slow)))
      yield* TestClock.adjust("500 millis")
      for (const error of [yield* Fiber.join(first), yield* Fiber.join(joiner)]) {
        assert.deepStrictEqual([error._tag, (error as { timeout: number }).timeout], ["FetchTimeout", 1000])
      }
      assert.isTrue(interrupted)
      yield* TestClock.adjust("2 seconds")
      assert.isFalse(yield* cache.exists("k"))
    }))

  it.scoped("a hung fetch does not block its key: the next caller fetches afresh, also after delete", () =>
    Effect.gen(function*() {
      const cache = yield* make({ stampedeTimeout: "1 second" })
      const hung = yield* Effect.fork(Effect.flip(cache.getOrFetch("k", () => Effect.never)))
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Fiber.join(hung))._tag, "FetchTimeout")
      assert.strictEqual(yield* cache.getOrFetch("k", () => Effect.succeed(1)), 1)
      yield* cache.delete("k")
      const again = yield* Effect.fork(cache.getOrFetch("k", () => Effect.never))
      yield* Effect.yieldNow()
      // A delete lets go of the key at once, without waiting for stampedeTimeout.
      yield* cache.delete("k")
      assert.strictEqual(yield* cache.getOrFetch("k", () => Effect.succeed(2)), 2)
      yield* Fiber.interrupt(again)
    }))

  it.scoped("a stale refresh that hangs lets go of its key after stampedeTimeout too", () =>
    Effect.gen(function*() {
      const cache = yield* make({ stampedeTimeout: "1 second" })
      const options = { ttl: 1_000, grace: "1 minute" } as const
      yield* cache.getOrFetch("k", () => Effect.succeed(1), options)
      yield* TestClock.adjust(1_000)
      assert.strictEqual(yield* cache.getOrFetch("k", () => Effect.never, options), 1, "stale, refresh hung")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* cache.getOrFetch("k", () => Effect.succeed(2), options), 1, "stale, refreshing again")
      yield* Effect.repeatN(Effect.yieldNow(), 5)
      assert.strictEqual(yield* cache.get("k"), 2)
    }))

  it.scoped("an interrupted caller does not cancel the fetch for the others", () =>
    Effect.gen(function*() {
      const cache = yield* make()
      let runs = 0
      const fetch = () => Effect.as(Effect.sleep("100 millis"), ++runs)
      const first = yield* Effect.fork(cache.getOrFetch("k", fetch))
      yield* Effect.yieldNow()
      const second = yield* Effect.fork(cache.getOrFetch("k", fetch))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(first)
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(yield* Fiber.join(second), 1)
      assert.strictEqual(runs, 1)
      assert.strictEqual(yield* cache.get("k"), 1)
    }))

  it.scoped("different keys fetch concurrently", () =>
    Effect.gen(function*() {
      const cache = yield* make()
      const fiber = yield* Effect.fork(Effect.all(
        ["a", "b", "c"].map((key) => cache.getOrFetch(key, () => Effect.as(Effect.sleep("1 second"), key.length))),
        { concurrency: "unbounded" }
      ))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.join(fiber), [1, 1, 1])
    }))

  it.scoped("stampedeProtection: false runs every caller's fetch", () =>
    Effect.gen(function*() {
      const cache = yield* make({ stampedeProtection: false })
      let runs = 0
      const fiber = yield* Effect.fork(Effect.all(
        Array.from({ length: 5 }, () => cache.getOrFetch("k", () => Effect.as(Effect.sleep("10 millis"), ++runs))),
        { concurrency: "unbounded" }
      ))
      yield* TestClock.adjust("10 millis")
      yield* Fiber.join(fiber)
      assert.strictEqual(runs, 5)
      assert.strictEqual((yield* cache.stats()).coalesced, 0)
    }))

  it.scoped("stampedeProtection: false: a fetch that reads its own key through getOrFetch does not hang", () =>
    Effect.gen(function*() {
      const cache = yield* make({ stampedeProtection: false })
      const outer = cache.getOrFetch(
        "k",
        (key) => Effect.map(cache.getOrFetch(key, () => Effect.succeed(1)), (n) => n + 1)
      )
      assert.strictEqual(yield* outer, 2)
    }))

  it.scoped("a fetch that dies fails its waiters and caches nothing", () =>
    Effect.gen(function*() {
      const cache = yield* make()
      const exit = yield* Effect.exit(cache.getOrFetch("k", () => Effect.die("boom")))
      assert.isTrue(Exit.isFailure(exit))
      assert.isFalse(yield* cache.exists("k"))
      assert.strictEqual(yield* cache.getOrFetch("k", () => Effect.succeed(7)), 7)
    }))
})

describe("Vela tags", () => {
  it.scoped("re-putting a key without a tag removes it from the tag", () =>
    Effect.gen(function*() {
      const cache = yield* make()
      yield* cache.put("a", 1, { tags: ["users", "active"] })
      yield* cache.put("b", 2, { tags: ["users"] })
      yield* cache.put("c", 3, { tags: ["products"] })
      yield* cache.put("a", 1, { tags: ["active"] })
      assert.strictEqual(yield* cache.invalidateTag("users"), 1)
      assert.deepStrictEqual([yield* cache.exists("a"), yield* cache.exists("b"), yield* cache.exists("c")], [
        true,
        false,
        true
      ])
      assert.strictEqual(yield* cache.invalidateTag("active"), 1)
      assert.strictEqual(yield* cache.invalidateTag("active"), 0)
    }))

  it.scoped("a bad tag is a ConfigError", () =>
    Effect.gen(function*() {
      const cache = yield* make()
      assert.strictEqual(((yield* Effect.flip(cache.put("a", 1, { tags: [""] }))) as { field?: string }).field, "tags")
      assert.strictEqual(((yield* Effect.flip(cache.invalidateTag(""))) as { field?: string }).field, "tag")
    }))
})

describe("Vela bad options", () => {
  it.scoped("options that are not objects, unknown option keys and malformed entries are ConfigErrors", () =>
    Effect.gen(function*() {
      const cache = yield* make()
      const fieldOf = (self: Effect.Effect<unknown, unknown>) =>
        Effect.map(Effect.flip(self), (error) => {
          const { _tag, field } = error as { _tag: string; field?: string }
          return `${_tag} ${field}`
        })
      const fetch = () => Effect.succeed(1)
      const cases: ReadonlyArray<[Effect.Effect<unknown, unknown>, string]> = [
        [cache.put("k", 1, null as never), "ConfigError options"],
        [cache.put("k", 1, 5 as never), "ConfigError options"],
        [cache.put("k", 1, "1 second" as never), "ConfigError options"],
        [cache.put("k", 1, { ttl: 1_000, maxsize: 5 } as never), "ConfigError maxsize"],
        [cache.getOrFetch("k", fetch, null as never), "ConfigError options"],
        [cache.getOrFetch("k", fetch, { ttl: 1_000, graec: 5 } as never), "ConfigError graec"],
        [cache.getOrFetch("k", 42 as never), "ConfigError fetch"],
        [cache.putMany([null] as never), "ConfigError entries"],
        [cache.putMany("ab" as never), "ConfigError entries"],
        [cache.putMany([["k", 1, 2, 3]] as never), "ConfigError entries"],
        [cache.putMany([["k", 1, null]] as never), "ConfigError options"],
        [cache.putMany([["k", 1]], null as never), "ConfigError options"],
        [cache.putMany([["k", 1]], { tagz: [] } as never), "ConfigError tagz"]
      ]
      for (const [call, expected] of cases) assert.strictEqual(yield* fieldOf(call), expected)
      assert.strictEqual(yield* cache.size(), 0)
    }))
})

describe("Vela batches", () => {
  it.scoped("getMany keeps key order and marks misses; putMany and deleteMany count", () =>
    Effect.gen(function*() {
      const cache = yield* make()
      yield* cache.putMany([["a", 1], ["b", 2, { ttl: 100, tags: ["short"] }], ["c", 3]], { tags: ["all"] })
      assert.deepStrictEqual((yield* cache.getMany(["c", "x", "a", "b"])).map(Option.getOrUndefined), [
        3,
        undefined,
        1,
        2
      ])
      yield* TestClock.adjust(100)
      assert.deepStrictEqual((yield* cache.getMany(["b"])).map(Option.getOrUndefined), [undefined])
      assert.strictEqual(yield* cache.invalidateTag("all"), 2)
      yield* cache.putMany([["d", 4], ["e", 5]])
      assert.strictEqual(yield* cache.deleteMany(["d", "e", "nothing"]), 2)
      const stats = yield* cache.stats()
      assert.deepStrictEqual([stats.writes, stats.hits, stats.misses, stats.deletes], [5, 3, 2, 4])
    }))

  it.scoped("a batch with one invalid key or value writes nothing", () =>
    Effect.gen(function*() {
      const cache = yield* make()
      assert.strictEqual((yield* Effect.flip(cache.putMany([["ok", 1], ["", 2]])))._tag, "InvalidKey")
      assert.strictEqual((yield* Effect.flip(cache.putMany([["ok", 1], ["u", undefined as never]])))._tag, "CodecError")
      assert.strictEqual((yield* Effect.flip(cache.putMany([["ok", 1]], { ttl: -1 })))._tag, "ConfigError")
      assert.strictEqual((yield* Effect.flip(cache.getMany(["a", 7 as never])))._tag, "InvalidKey")
      assert.strictEqual(yield* cache.size(), 0)
    }))
})
