/**
 * Near caches over `Partitioned` across separate `node` processes on loopback (test/fixtures/node.mjs
 * over the built `dist`): an invalidation that cannot reach its reader at once (the reader stalled
 * past `requestTimeout`) still reaches it once it resumes.
 */
import { assert, describe, it } from "@effect/vitest"
import { HashRing } from "@vela/cluster"
import { Effect } from "effect"
import { poll, seesMembers, spawnNode } from "./utils.js"

describe("multi-process near caches over Partitioned", () => {
  it.live(
    "a reader stalled past requestTimeout still drops a key that changed meanwhile",
    () =>
      Effect.scoped(Effect.gen(function*() {
        // No replica: the reader holds none of the writer's keys and hears of them from it alone.
        const env = { REPLICAS: "0", NEAR: "1", REQUEST_TIMEOUT: "500", FAILURE_TIMEOUT: "20 seconds" }
        const reader = yield* spawnNode(env)
        const writer = yield* spawnNode({ ...env, SEEDS: reader.id })
        yield* Effect.all([seesMembers(reader, [reader, writer]), seesMembers(writer, [reader, writer])])
        const ring = HashRing.make([reader.id, writer.id])
        const key = Array.from({ length: 64 }, (_, i) => `k${i}`).find((k) => HashRing.owner(ring, k) === writer.id)!
        yield* writer.request("put", { key, value: "v1" })
        assert.deepStrictEqual(yield* reader.request("read", { key, tag: "t" }), { value: "v1", dropped: 0 })
        reader.child.kill("SIGSTOP")
        yield* Effect.ensuring(
          Effect.zipRight(writer.request("put", { key, value: "v2" }), Effect.sleep("2 seconds")),
          Effect.sync(() => reader.child.kill("SIGCONT"))
        )
        yield* poll(
          Effect.filterOrFail(
            reader.request<{ value: string }>("read", { key, tag: "t" }),
            (read) => read.value === "v2",
            (read) => new Error(`the reader's near cache still has ${read.value}`)
          ),
          "10 seconds"
        )
      })),
    60_000
  )
})
