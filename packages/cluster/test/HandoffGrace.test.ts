/**
 * Reads while entries move (`handoffGrace` after a membership change), in-process nodes on loopback:
 * a miss on the owner asks the other members, and must not take an old copy for the key's value.
 * Found by the chaos rig (seed 101, partitioned): a delete right after a partition healed, then a
 * read from the node that still held its copy from the partition's ring returned the deleted value.
 */
import { assert, describe, it } from "@effect/vitest"
import { HashRing } from "@vela/cluster"
import { openOptions } from "@vela/core/testing"
import { Effect, Option } from "effect"
import { Held } from "../src/internal/wire.js"
import { cacheOn, cluster, startPartitioned } from "./utils.js"

describe("Partitioned during handoffGrace", () => {
  it.live(
    "a copy older than a delete on a node that is no holder does not bring the key back",
    () =>
      Effect.scoped(Effect.gen(function*() {
        // Just formed: every node is within handoffGrace of a membership change.
        const nodes = yield* cluster(startPartitioned, 3)
        const caches = yield* Effect.forEach(nodes, (n) => cacheOn<string>(n.topology, "grace"))
        yield* caches[0].put("k", "old")
        // The node that is no holder of k keeps a copy, as one whose handoff has not dropped it yet.
        const holders = HashRing.holders(HashRing.make(nodes.map((n) => n.node.id)), "k", 2)
        const stray = nodes.find((n) => !holders.includes(n.node.id))!
        const store = yield* stray.backend.open(openOptions("grace"))
        yield* store.set("k", { value: new Held(JSON.stringify("old")), expiresAt: null, tags: [], version: 1 })
        yield* caches[1].delete("k")
        for (const cache of caches) assert.isTrue(Option.isNone(yield* cache.getOption("k")))
        // A copy newer than the delete is still found while entries move.
        yield* store.set("k", { value: new Held(JSON.stringify("new")), expiresAt: null, tags: [], version: 2 ** 52 })
        for (const cache of caches) assert.strictEqual(Option.getOrUndefined(yield* cache.getOption("k")), "new")
      })),
    30_000
  )
})
