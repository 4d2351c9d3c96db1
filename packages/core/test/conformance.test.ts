import { Local, Memory, NearCache } from "@vela/core"
import { conformance } from "@vela/core/testing"
import { Layer } from "effect"

const memoryLocal = Local.layer.pipe(Layer.provide(Memory.layer()))

conformance("Memory + Local", memoryLocal)
conformance("NearCache over Memory + Local", NearCache.layer({ ttl: "10 seconds" }).pipe(Layer.provide(memoryLocal)))
conformance("NearCache with a small L1", NearCache.layer({ ttl: 250, maxSize: 2 }).pipe(Layer.provide(memoryLocal)))
for (const policy of ["lru", "lfu", "ttl-only"] as const) {
  conformance(`Memory + Local, maxSize 3, ${policy}`, memoryLocal, { eviction: { maxSize: 3, policy }, runs: 100 })
}
