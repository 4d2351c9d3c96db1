import { assert, describe, expect, it } from "@effect/vitest"
import { Local, Memory, Topology, Vela } from "@vela/core"
import { ConfigError, createCache } from "@vela/core/promise"
import { Effect, Exit, FastCheck as fc, Layer, Option, TestClock } from "effect"

const memory = Local.layer.pipe(Layer.provide(Memory.layer()))

/** Memory behind a topology that records every namespace opened on it. */
const recording = () => {
  const opened: Array<string> = []
  const layer = Layer.effect(
    Topology.Topology,
    Effect.map(Topology.Topology, (inner) =>
      Topology.Topology.of({
        name: "recording",
        open: (options) => Effect.zipRight(Effect.sync(() => opened.push(options.namespace)), inner.open(options))
      }))
  ).pipe(Layer.provide(memory))
  return { opened, layer }
}

const failureTag = (self: Effect.Effect<unknown, unknown>) =>
  Effect.map(
    Effect.exit(self),
    (exit) => Exit.isSuccess(exit) ? "success" : Option.getOrThrow(Exit.causeOption(exit)).toString()
  )

describe("namespace (Effect API)", () => {
  it.effect("is opened on its first call, once, on the parent's namespace + U+001F + its name", () => {
    const { layer, opened } = recording()
    return Effect.scoped(Effect.gen(function*() {
      const cache = yield* Vela.make<number>({ name: "users" })
      const tenant = cache.namespace("tenant-1")
      assert.deepStrictEqual(opened, ["users"])
      yield* tenant.put("k", 1)
      yield* cache.namespace("tenant-1").put("j", 2)
      yield* tenant.namespace("eu").put("k", 3)
      assert.deepStrictEqual(opened, ["users", "users\u001ftenant-1", "users\u001ftenant-1\u001feu"])
      assert.strictEqual(tenant.name, "users/tenant-1")
      assert.strictEqual(yield* cache.namespace("tenant-1").size(), 2)
    })).pipe(Effect.provide(layer))
  })

  it.effect("sees only its own entries: flush, size, invalidateTag, stats, expiry", () =>
    Effect.scoped(Effect.gen(function*() {
      const cache = yield* Vela.make<string | number>({ name: "own" })
      const a = cache.namespace("a")
      const b = cache.namespace("b")
      yield* cache.put("k", "parent", { tags: ["t"] })
      yield* a.put("k", "a", { tags: ["t"] })
      yield* b.put("k", "b", { tags: ["t"], ttl: "1 second" })
      assert.deepStrictEqual([yield* cache.get("k"), yield* a.get("k"), yield* b.get("k")], ["parent", "a", "b"])
      assert.strictEqual(yield* a.invalidateTag("t"), 1)
      assert.isFalse(yield* a.exists("k"))
      assert.strictEqual(yield* cache.get("k"), "parent")
      yield* TestClock.adjust("1 second")
      assert.isFalse(yield* b.exists("k"))
      assert.strictEqual(yield* cache.size(), 1)
      yield* a.put("x", "1")
      yield* cache.flush()
      assert.strictEqual(yield* a.get("x"), "1")
      assert.strictEqual(yield* cache.size(), 0)
      const stats = yield* a.stats()
      assert.deepStrictEqual([stats.hits, stats.misses, stats.writes, stats.deletes], [2, 0, 2, 1])
      assert.strictEqual((yield* cache.namespace("never").stats()).writes, 0)
      assert.strictEqual(yield* a.increment("n", 2), 2)
      assert.deepStrictEqual(yield* a.take("n"), Option.some(2))
      assert.strictEqual(
        yield* a.memoize((x: number) => Effect.succeed(`${x}`))(7),
        "7"
      )
    })).pipe(Effect.provide(memory)))

  it.effect("names: a non-empty well-formed string without U+001F; cache names may not hold U+001F", () =>
    Effect.scoped(Effect.gen(function*() {
      const cache = yield* Vela.make<string>({ name: "names" })
      for (const name of ["", "a\u001fb", "\ud800", 5 as unknown as string]) {
        const exit = yield* Effect.exit(cache.namespace(name).put("k", "v"))
        assert.isTrue(Exit.isFailure(exit))
        assert.include(yield* failureTag(cache.namespace(name).get("k")), "ConfigError")
      }
      const bad = yield* Effect.exit(Vela.make<string>({ name: "x\u001fy" }))
      assert.include(Exit.isFailure(bad) ? String(Exit.causeOption(bad)) : "", "ConfigError")
    })).pipe(Effect.provide(memory)))

  it.effect.prop(
    "no two paths of names share an entry, nor a namespace and a cache named like its path",
    [fc.uniqueArray(
      fc.array(fc.constantFrom("a", "b", "a/b", "b:a", ":", "/", "a\u001e"), { minLength: 1, maxLength: 3 }),
      {
        minLength: 1,
        maxLength: 6,
        selector: (path) => path.join("\u001f")
      }
    )],
    ([paths]) =>
      Effect.scoped(Effect.gen(function*() {
        const base = `prop-${Math.random().toString(36).slice(2)}`
        const root = yield* Vela.make<string>({ name: base })
        const at = (path: ReadonlyArray<string>) => path.reduce((cache, name) => cache.namespace(name), root)
        // Caches named like a path, each holding its own name: they share entries only with themselves.
        const names = new Set(paths.flatMap((path) => [[base, ...path].join("/"), [base, ...path].join(":")]))
        const lookalikes = yield* Effect.forEach(names, (name) => Vela.make<string>({ name }))
        yield* Effect.forEach(lookalikes, (lookalike) => lookalike.put("k", lookalike.name))
        yield* root.put("k", "root")
        for (const [i, path] of paths.entries()) yield* at(path).put("k", `path ${i}`)
        assert.strictEqual(yield* root.get("k"), "root")
        assert.strictEqual(yield* root.size(), 1)
        for (const [i, path] of paths.entries()) {
          assert.strictEqual(yield* at(path).get("k"), `path ${i}`)
          assert.strictEqual(yield* at(path).size(), 1)
        }
        for (const lookalike of lookalikes) assert.strictEqual(yield* lookalike.get("k"), lookalike.name)
      })).pipe(Effect.provide(memory)),
    { fastCheck: { numRuns: 15 } }
  )

  it.effect("closes with its parent: every call fails with CacheClosed, opened or not", () =>
    Effect.gen(function*() {
      const [opened, never] = yield* Effect.scoped(Effect.gen(function*() {
        const cache = yield* Vela.make<string>({ name: "closing" })
        const opened = cache.namespace("a")
        yield* opened.put("k", "v")
        return [opened, cache.namespace("b")] as const
      }))
      assert.include(yield* failureTag(opened.get("k")), "CacheClosed")
      assert.include(yield* failureTag(never.put("k", "v")), "CacheClosed")
      assert.include(yield* failureTag(never.namespace("c").size()), "CacheClosed")
    }).pipe(Effect.provide(memory)))
})

describe("namespace (facade)", () => {
  it("isolates, nests, keeps its own stats, and closes with the cache", async () => {
    const cache = createCache<string>({ name: "facade" })
    const a = cache.namespace("a")
    const ab = a.namespace("b")
    await cache.put("k", "parent")
    await a.put("k", "a")
    await ab.put("k", "ab")
    expect([await cache.get("k"), await a.get("k"), await ab.get("k")]).toEqual(["parent", "a", "ab"])
    expect(await cache.namespace("a/b").get("k")).toBeUndefined()
    await a.flush()
    expect([await cache.get("k"), await a.get("k"), await ab.get("k")]).toEqual(["parent", undefined, "ab"])
    expect((await ab.stats()).hits).toBe(2)
    expect(() => cache.namespace("")).toThrow(ConfigError)
    expect(() => cache.namespace("x\u001fy")).toThrow(ConfigError)
    await a.close()
    await expect(a.get("k")).rejects.toMatchObject({ _tag: "CacheClosed" })
    expect(await ab.get("k")).toBe("ab")
    await cache.close()
    await expect(ab.get("k")).rejects.toMatchObject({ _tag: "CacheClosed" })
    await expect(cache.namespace("late").put("k", "v")).rejects.toMatchObject({ _tag: "CacheClosed" })
  })
})
