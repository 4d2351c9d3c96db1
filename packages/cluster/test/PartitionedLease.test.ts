import { assert, describe, it } from "@effect/vitest"
import { fetchInFlight } from "@vela/core/testing"
import { Effect, Fiber } from "effect"
import { cacheOn, cluster, startPartitioned } from "./utils.js"

describe("Partitioned owner lease", () => {
  it.live(
    "a put or delete through another node wins over a leased fetch in flight",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const nodes = yield* cluster(startPartitioned, 3)
        const [fetching, writer] = yield* Effect.all(nodes.slice(0, 2).map((n) => cacheOn<string>(n.topology, "lease")))
        // Several keys, so that the owner is sometimes the fetching node, sometimes the writer, sometimes neither.
        for (const key of ["k1", "k2", "k3", "k4", "k5", "k6"]) {
          const put = yield* fetchInFlight(fetching, `put:${key}`, "fetched")
          yield* writer.put(`put:${key}`, "written")
          yield* put.finish
          assert.strictEqual(yield* Fiber.join(put.fiber), "fetched")
          assert.strictEqual(yield* writer.get(`put:${key}`), "written", key)
          assert.strictEqual(yield* fetching.get(`put:${key}`), "written", key)

          const deleted = yield* fetchInFlight(fetching, `delete:${key}`, "fetched")
          yield* writer.delete(`delete:${key}`)
          yield* deleted.finish
          yield* Fiber.join(deleted.fiber)
          assert.isFalse(yield* writer.exists(`delete:${key}`), key)
        }
      })),
    30_000
  )
})
