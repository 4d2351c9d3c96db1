/**
 * `Replicated` across separate `node` processes on loopback (test/fixtures/node.mjs over the built
 * `dist`), started and killed by the test.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { poll, seesMembers, spawnNode } from "./utils.js"

const replicated = { TOPOLOGY: "replicated" } as const

describe("multi-process Replicated", () => {
  it.live(
    "writes on one process are read on all; races converge; SIGKILL loses nothing; the restarted node copies the state",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const a = yield* spawnNode(replicated)
        const [b, c] = yield* Effect.all(
          [spawnNode({ ...replicated, SEEDS: a.id }), spawnNode({ ...replicated, SEEDS: a.id })],
          { concurrency: "unbounded" }
        )
        yield* Effect.all([a, b, c].map((n) => seesMembers(n, [a, b, c])), { concurrency: "unbounded" })

        yield* a.request("putMany", { from: 0, count: 1000, tag: "tens" })
        for (const node of [a, b, c]) {
          assert.strictEqual(yield* node.request("readMany", { from: 0, count: 1000 }), 1000)
          assert.strictEqual(yield* node.request("size"), 1000)
        }
        assert.strictEqual(yield* c.request("invalidateTag", { tag: "tens" }), 100)
        assert.strictEqual(yield* a.request("size"), 900)
        assert.strictEqual(yield* b.request("size"), 900)

        // The same key written from three processes at once: one value everywhere.
        yield* Effect.all([a, b, c].map((n, i) => n.request("put", { key: "contended", value: { i } })), {
          concurrency: "unbounded"
        })
        const seen = yield* Effect.all([a, b, c].map((n) => n.request("get", { key: "contended" })))
        assert.deepStrictEqual(seen[1], seen[0])
        assert.deepStrictEqual(seen[2], seen[0])

        // SIGKILL: nothing announced; the others keep everything and keep accepting writes.
        c.child.kill("SIGKILL")
        yield* Effect.all([seesMembers(a, [a, b]), seesMembers(b, [a, b])], { concurrency: "unbounded" })
        yield* b.request("putMany", { from: 0, count: 1000, tag: "tens" })
        yield* a.request("putMany", { from: 1000, count: 500, tag: "tens" })
        assert.strictEqual(yield* a.request("readMany", { from: 0, count: 1500 }), 1500)
        assert.strictEqual(yield* b.request("readMany", { from: 0, count: 1500 }), 1500)

        // Restarted at the same address: it copies the state before it answers.
        const d = yield* spawnNode({ ...replicated, SEEDS: b.id, PORT: String(c.port) })
        assert.strictEqual(d.id, c.id)
        assert.strictEqual(yield* d.request("readMany", { from: 0, count: 1500 }), 1500)
        yield* poll(Effect.filterOrFail(d.request<number>("size"), (n) => n === 1501, (n) => new Error(`size ${n}`)))
        assert.deepStrictEqual(yield* d.request("get", { key: "contended" }), seen[0])
      })),
    90_000
  )
})
