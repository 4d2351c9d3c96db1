import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { cacheOn, cluster, startPartitioned } from "./utils.js"

describe("Partitioned owner lease", () => {
  it.live(
    "a put or delete through another node wins over a leased fetch in flight",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const nodes = yield* cluster(startPartitioned, 3)
        const [fetching, writer] = yield* Effect.all(nodes.slice(0, 2).map((n) => cacheOn<string>(n.topology, "lease")))
        /** A fetch through `fetching` held open until `finish`, once it runs. */
        const inFlight = (key: string) =>
          Effect.gen(function*() {
            const started = yield* Deferred.make<void>()
            const gate = yield* Deferred.make<void>()
            const fiber = yield* Effect.fork(
              fetching.getOrFetch(
                key,
                () =>
                  Deferred.succeed(started, undefined).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as("fetched"))
              )
            )
            yield* Deferred.await(started)
            return { fiber, finish: Deferred.succeed(gate, undefined) }
          })
        // Several keys, so that the owner is sometimes the fetching node, sometimes the writer, sometimes neither.
        for (const key of ["k1", "k2", "k3", "k4", "k5", "k6"]) {
          const put = yield* inFlight(`put:${key}`)
          yield* writer.put(`put:${key}`, "written")
          yield* put.finish
          assert.strictEqual(yield* Fiber.join(put.fiber), "fetched")
          assert.strictEqual(yield* writer.get(`put:${key}`), "written", key)
          assert.strictEqual(yield* fetching.get(`put:${key}`), "written", key)

          const deleted = yield* inFlight(`delete:${key}`)
          yield* writer.delete(`delete:${key}`)
          yield* deleted.finish
          yield* Fiber.join(deleted.fiber)
          assert.isFalse(yield* writer.exists(`delete:${key}`), key)
        }
      })),
    30_000
  )
})
