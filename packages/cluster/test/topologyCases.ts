/** Cases every cluster topology passes, registered by each topology's test file. */
import { assert, it } from "@effect/vitest"
import type { BackendError, ConfigError } from "@vela/core"
import { NearCache, Topology } from "@vela/core"
import { openOptions } from "@vela/core/testing"
import type { Scope } from "effect"
import { Chunk, Context, Effect, Exit, Fiber, Layer, Option, Scope as ScopeModule, Stream } from "effect"
import type { Started } from "./utils.js"
import { awaitMembers, cacheOn, cluster, connected, eventually } from "./utils.js"

const near = (topology: Topology.Topology["Type"]) =>
  Layer.build(NearCache.layer({ ttl: "1 minute" }).pipe(Layer.provide(Layer.succeed(Topology.Topology, topology))))
    .pipe(Effect.map((context) => Context.get(context, Topology.Topology)))

export const topologyCases = (
  start: (seeds: ReadonlyArray<string>) => Effect.Effect<Started, ConfigError | BackendError, Scope.Scope>
) => {
  it.live(
    "near caches on other nodes drop what changed: put, delete, tag, flush",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b] = yield* cluster(start, 3)
        const [na, nb] = yield* Effect.all([near(a.topology), near(b.topology)])
        const ca = yield* cacheOn<string>(na, "profiles")
        const cb = yield* cacheOn<string>(nb, "profiles")
        const keys = Array.from({ length: 20 }, (_, i) => `p${i}`)
        yield* Effect.forEach(keys, (key) => ca.put(key, "v1", { tags: ["t"] }))
        // Both read every key, so both near caches hold all of them.
        yield* Effect.forEach(keys, (key) => Effect.zip(ca.get(key), cb.get(key)))
        yield* Effect.forEach(keys, (key) => cb.put(key, "v2", { tags: ["t"] }))
        yield* eventually(Effect.forEach(keys, (key) => Effect.filterOrFail(ca.get(key), (v) => v === "v2")))
        yield* cb.delete("p0")
        yield* eventually(Effect.filterOrFail(ca.getOption("p0"), Option.isNone))
        yield* Effect.forEach(keys, (key) => ca.getOption(key))
        assert.strictEqual(yield* cb.invalidateTag("t"), 19)
        yield* eventually(Effect.filterOrFail(ca.getOption("p5"), Option.isNone))
        yield* cb.put("p1", "v3")
        assert.strictEqual(yield* ca.get("p1"), "v3")
        yield* cb.flush()
        yield* eventually(Effect.filterOrFail(ca.getOption("p1"), Option.isNone))
      })),
    30_000
  )

  it.live(
    "a node that loses every peer tells its near caches (Disconnected), and Connected when one returns",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const a = yield* start([])
        const bScope = yield* ScopeModule.make()
        const b = yield* start([a.node.id]).pipe(ScopeModule.extend(bScope))
        yield* connected([a, b])
        const store = yield* a.topology.open(openOptions("watched"))
        const seen = yield* store.invalidations.pipe(
          Stream.filter((change) => change._tag === "Disconnected" || change._tag === "Connected"),
          Stream.take(2),
          Stream.runCollect,
          Effect.fork
        )
        yield* Effect.yieldNow()
        yield* ScopeModule.close(bScope, Exit.void)
        yield* awaitMembers(a.node, [a.node.id])
        const c = yield* start([a.node.id])
        yield* awaitMembers(a.node, [a.node.id, c.node.id])
        const changes = yield* Fiber.join(seen).pipe(Effect.timeout("5 seconds"))
        assert.deepStrictEqual(Chunk.toArray(changes).map((change) => change._tag), ["Disconnected", "Connected"])
      })),
    30_000
  )
}
