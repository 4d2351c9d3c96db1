/**
 * An entry that no frame can carry is refused before anything is written, on every topology; large
 * entries that fit travel, and never cost the lane its connection.
 */
import { assert, describe, it } from "@effect/vitest"
import type { BackendError, ConfigError } from "@vela/core"
import type { Scope } from "effect"
import { Effect, Option } from "effect"
import type { Started } from "./utils.js"
import { cacheOn, cluster, heldText, startPartitioned, startReplicated } from "./utils.js"

const maxFrameBytes = 64 * 1024
const small = Array.from({ length: 200 }, (_, i) => `small:${i}`)

const cases = (
  start: (seeds: ReadonlyArray<string>) => Effect.Effect<Started, ConfigError | BackendError, Scope.Scope>
) =>
  it.live(
    "a value too large for a frame fails at once and is written nowhere",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const nodes = yield* cluster(start, 3)
        const caches = yield* Effect.all(nodes.map((n) => cacheOn<string>(n.topology, "large")))
        const [ca] = caches
        yield* Effect.forEach(small, (key) => ca.put(key, key), { concurrency: 64, discard: true })

        // Refused while small reads share the lanes: they all answer.
        const [refused, reads] = yield* Effect.all([
          Effect.flip(ca.put("big", "x".repeat(maxFrameBytes))),
          Effect.forEach(small, (key) => caches[1].get(key), { concurrency: "unbounded" })
        ], { concurrency: "unbounded" })
        assert.strictEqual(refused._tag, "BackendError")
        assert.include(refused.message, `maxFrameBytes ${maxFrameBytes}`)
        assert.deepStrictEqual(reads, small)
        // Characters of three UTF-8 bytes count as three.
        const wide = yield* Effect.flip(ca.put("wide", "€".repeat(maxFrameBytes / 2)))
        assert.strictEqual(wide._tag, "BackendError")

        // One entry too large fails the whole putMany before any of it is written.
        const many = yield* Effect.flip(
          caches[2].putMany([["m1", "one"], ["m2", "x".repeat(2 * maxFrameBytes)], ["m3", "three"]])
        )
        assert.strictEqual(many._tag, "BackendError")

        for (const node of nodes) {
          for (const key of ["big", "wide", "m1", "m2", "m3"]) assert.isNull(yield* heldText(node, "large", key), key)
        }
        for (const cache of caches) {
          for (const key of ["big", "m1", "m3"]) assert.isTrue(Option.isNone(yield* cache.getOption(key)), key)
        }

        // Entries that fit, a few at once from every node, are read back everywhere.
        const fits = "y".repeat(maxFrameBytes / 2)
        yield* Effect.forEach(caches, (cache, i) => cache.putMany([[`fits:${i}:a`, fits], [`fits:${i}:b`, fits]]), {
          concurrency: "unbounded",
          discard: true
        })
        for (const cache of caches) {
          for (let i = 0; i < caches.length; i++) {
            assert.strictEqual(yield* cache.get(`fits:${i}:a`), fits)
            assert.strictEqual(yield* cache.get(`fits:${i}:b`), fits)
          }
        }
      })),
    30_000
  )

describe("an entry larger than a frame", () => {
  describe("Partitioned (replicas 1)", () => {
    cases((seeds) => startPartitioned(seeds, { replicas: 1, maxFrameBytes }))
  })
  describe("Replicated", () => {
    cases((seeds) => startReplicated(seeds, { maxFrameBytes }))
  })
})
