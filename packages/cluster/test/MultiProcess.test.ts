/**
 * Separate `node` processes on loopback (test/fixtures/node.mjs over the built `dist`), started and
 * stopped by the test: what only a real crash or a real second process shows.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { poll, seesMembers, sendRaw, spawnNode, spawnThree } from "./utils.js"

describe("multi-process cluster", () => {
  it.live(
    "converge from one seed, read everywhere, count once, survive SIGKILL, readmit the restarted node",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b, c] = yield* spawnThree()

        yield* a.request("putMany", { from: 0, count: 1000, tag: "tens" })
        assert.strictEqual(yield* b.request("readMany", { from: 0, count: 1000 }), 1000)
        assert.strictEqual(yield* c.request("readMany", { from: 0, count: 1000 }), 1000)
        assert.strictEqual(yield* b.request("size"), 1000)
        assert.strictEqual(yield* c.request("invalidateTag", { tag: "tens" }), 100)
        assert.strictEqual(yield* a.request("size"), 900)
        yield* c.request("putMany", { from: 0, count: 1000, tag: "tens" })

        // SIGKILL: no leave announced; failure detection drops it, its replicas take over.
        c.child.kill("SIGKILL")
        yield* Effect.all([seesMembers(a, [a, b]), seesMembers(b, [a, b])], { concurrency: "unbounded" })
        assert.strictEqual(yield* a.request("readMany", { from: 0, count: 1000 }), 1000)
        assert.strictEqual(yield* b.request("readMany", { from: 0, count: 1000 }), 1000)
        assert.strictEqual(yield* b.request("size"), 1000)

        // The killed node restarts at the same address and rejoins (a newer incarnation).
        const d = yield* spawnNode({ SEEDS: b.id, PORT: String(c.port) })
        assert.strictEqual(d.id, c.id)
        yield* Effect.all([a, b, d].map((n) => seesMembers(n, [a, b, d])), { concurrency: "unbounded" })
        assert.strictEqual(yield* d.request("readMany", { from: 0, count: 1000 }), 1000)
        yield* poll(Effect.filterOrFail(d.request<number>("size"), (n) => n === 1000, (n) => new Error(`size ${n}`)))
      })),
    90_000
  )

  it.live(
    "a node with the wrong secret changes nothing; garbage on the port is survived",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const a = yield* spawnNode({})
        const b = yield* spawnNode({ SEEDS: a.id })
        yield* Effect.all([seesMembers(a, [a, b]), seesMembers(b, [a, b])], { concurrency: "unbounded" })
        yield* a.request("putMany", { from: 0, count: 200, tag: "t" })

        const intruder = yield* spawnNode({ SEEDS: a.id, SECRET: "not the secret" })
        const refused = yield* Effect.flip(intruder.request("clearOn", { peer: a.id }))
        assert.strictEqual(refused.message, "NodeUnavailable")
        yield* intruder.request("flush")
        yield* intruder.request("putMany", { from: 0, count: 50, tag: "t" })
        assert.deepStrictEqual(yield* intruder.request("members"), [intruder.id])
        assert.deepStrictEqual(yield* a.request("members"), [a.id, b.id].sort())
        assert.strictEqual(yield* b.request("size"), 200)

        for (const bytes of [Buffer.from("\x00\xff garbage \r\n\r\n"), Buffer.alloc(32 * 1024, 0xc1)]) {
          yield* sendRaw(a.port, bytes)
        }
        assert.strictEqual(yield* b.request("readMany", { from: 0, count: 200 }), 200)
        assert.strictEqual(yield* a.request("readMany", { from: 0, count: 200 }), 200)
      })),
    60_000
  )
})
