import { Backend, Local, Memory, NearCache, Topology } from "@vela/core"
import { conformance } from "@vela/core/testing"
import { Effect, Layer } from "effect"

const memoryLocal = Local.layer.pipe(Layer.provide(Memory.layer()))

conformance("Memory + Local", memoryLocal)
conformance("NearCache over Memory + Local", NearCache.layer({ ttl: "10 seconds" }).pipe(Layer.provide(memoryLocal)))
conformance("NearCache with a small L1", NearCache.layer({ ttl: 250, maxSize: 2 }).pipe(Layer.provide(memoryLocal)))
for (const policy of ["lru", "lfu", "ttl-only"] as const) {
  conformance(`Memory + Local, maxSize 3, ${policy}`, memoryLocal, { eviction: { maxSize: 3, policy }, runs: 100 })
}

/** Memory with only some of its atomic operations, to run the ones `makeStore` derives or refuses. */
const withoutAtomics = (drop: ReadonlyArray<"take" | "touch" | "increment" | "readForUpdate" | "compareAndSet">) =>
  Layer.effect(
    Topology.Topology,
    Effect.map(Topology.Topology, (inner) =>
      Topology.Topology.of({
        name: `${inner.name} without ${drop.join(", ")}`,
        open: (options) =>
          Effect.map(inner.open(options), (store) =>
            Backend.makeStore({
              ...store,
              ...Object.fromEntries(drop.map((op) => [op, undefined])),
              unsupported: { store: "a test store", reason: "it was built without them" }
            }))
      }))
  ).pipe(Layer.provide(memoryLocal))

conformance("Memory, take/touch/increment derived from compareAndSet", withoutAtomics(["take", "touch", "increment"]))
conformance(
  "Memory without compare-and-set",
  withoutAtomics(["take", "touch", "increment", "readForUpdate", "compareAndSet"]),
  {
    unsupported: ["take", "increment", "update", "touch"]
  }
)
