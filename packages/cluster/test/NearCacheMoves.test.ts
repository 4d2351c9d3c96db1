/**
 * A near cache over `Partitioned` while entries move (`handoffGrace` after a membership change),
 * in-process nodes on loopback. A holder tells the near caches it knows of (the nodes that read or
 * wrote a key through it) when the key changes; a value a node found beyond the key's holders (a
 * copy a handoff has not moved yet) is known to no holder, so it must not stay in its near cache.
 * Found by the chaos rig (seed 10, partitioned, under load, where handoffs are slow): n0's near
 * cache kept a value older than its L2 after the cluster settled.
 */
import { assert, describe, it } from "@effect/vitest"
import { HashRing } from "@vela/cluster"
import { NearCache, Topology } from "@vela/core"
import { openOptions } from "@vela/core/testing"
import { Context, Effect, Layer } from "effect"
import { Held } from "../src/internal/wire.js"
import { cacheOn, cluster, eventually, startPartitioned } from "./utils.js"

const near = (topology: Topology.Topology["Type"]) =>
  Layer.build(NearCache.layer({ ttl: "1 minute" }).pipe(Layer.provide(Layer.succeed(Topology.Topology, topology))))
    .pipe(Effect.map((context) => Context.get(context, Topology.Topology)))

describe("near cache over Partitioned while entries move", () => {
  it.live(
    "a value read from a copy beyond the key's holders is not kept past the key's next write",
    () =>
      Effect.scoped(Effect.gen(function*() {
        // Just formed, with a long grace: every node is within handoffGrace of a membership change.
        const nodes = yield* cluster((seeds) => startPartitioned(seeds, { handoffGrace: "30 seconds" }), 3)
        const holders = HashRing.holders(HashRing.make(nodes.map((n) => n.node.id)), "k", 2)
        const reader = nodes.find((n) => !holders.includes(n.node.id))!
        const writer = nodes.find((n) => n !== reader)!
        // The reader keeps a copy of k its handoff has not moved yet; the holders have none.
        const store = yield* reader.backend.open(openOptions("moves"))
        yield* store.set("k", { value: new Held(JSON.stringify("v1")), expiresAt: null, tags: [], version: 1 })
        const cached = yield* cacheOn<string>(yield* near(reader.topology), "moves")
        // The owner misses, so the reader asks the other members and finds its own copy.
        assert.strictEqual(yield* cached.get("k"), "v1")
        yield* Effect.sleep("100 millis")
        yield* cacheOn<string>(writer.topology, "moves").pipe(Effect.flatMap((cache) => cache.put("k", "v2")))
        yield* eventually(Effect.filterOrFail(cached.get("k"), (v) => v === "v2"))
      })),
    30_000
  )
})
