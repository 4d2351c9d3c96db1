/**
 * `size`, `invalidateTag`, `flush` and `stats` across separate `node` processes: they answer while a
 * SIGKILLed member is still in the ring (the window before failure detection drops it), counting
 * each live entry once; with more members down than replicas they fail, naming one. A join or a
 * leave never makes `size` count a key twice.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import type { NodeProcess } from "./utils.js"
import { crash, seesMembers, spawnNode, spawnThree } from "./utils.js"

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => `key:${from + i}`)

/** Fails unless no node of `nodes` holds a copy of any of `keys`. */
const heldNowhere = (nodes: ReadonlyArray<NodeProcess>, keys: ReadonlyArray<string>) =>
  Effect.forEach(
    nodes,
    (node) =>
      Effect.map(node.request<Array<string | null>>("held", { keys }), (held) =>
        assert.deepStrictEqual(held.filter((text) => text !== null), [], `${node.id} still holds some`))
  )

describe("multi-process fan-out", () => {
  it.live(
    "with a member SIGKILLed but not yet dropped, size, invalidateTag, flush and stats answer once; with two, they fail",
    () =>
      Effect.scoped(Effect.gen(function*() {
        // Failure detection takes 30 s here: everything below runs inside the window.
        const [a, b, c] = yield* spawnThree({ FAILURE_TIMEOUT: "30 seconds" })
        yield* a.request("putMany", { from: 0, count: 1000, tag: "tens" })
        yield* crash(c)

        for (const node of [a, b]) assert.strictEqual(yield* node.request("size"), 1000)
        const stats = yield* a.request<{ readonly writes: number }>("stats")
        assert.strictEqual(stats.writes, 1000)
        assert.strictEqual(yield* b.request("invalidateTag", { tag: "tens" }), 100)
        yield* heldNowhere([a, b], range(0, 1000).filter((_, i) => i % 10 === 0))
        for (const node of [a, b]) assert.strictEqual(yield* node.request("size"), 900)
        yield* a.request("flush")
        yield* heldNowhere([a, b], range(0, 1000))
        assert.strictEqual(yield* b.request("size"), 0)

        // Two members down with one replica: some keys would have no live holder left.
        yield* crash(b)
        for (const op of ["size", "invalidateTag", "flush"]) {
          const failed = yield* Effect.flip(a.request(op, { tag: "tens" }))
          assert.match(failed.message, /^NodeUnavailable: Cluster node 127\.0\.0\.1:\d+ is unavailable/, op)
        }
        yield* a.request("stats")
      })),
    120_000
  )

  it.live(
    "while a node joins and another leaves, size never counts a key twice; once the members agree it is exact",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b, c] = yield* spawnThree()
        yield* a.request("putMany", { from: 0, count: 500, tag: "tens" })
        const sizes: Array<number> = []
        const sampler = yield* Effect.fork(
          Effect.forever(Effect.flatMap(b.request<number>("size"), (n) => Effect.sync(() => sizes.push(n))))
        )

        const d = yield* spawnNode({ SEEDS: a.id })
        yield* Effect.all([a, b, c, d].map((n) => seesMembers(n, [a, b, c, d])), { concurrency: "unbounded" })
        for (const node of [a, b, c, d]) assert.strictEqual(yield* node.request("size"), 500, `${node.id} after a join`)

        // A graceful leave: stdin closes, the node hands its keys over, then announces it.
        c.child.stdin!.end()
        yield* Effect.all([a, b, d].map((n) => seesMembers(n, [a, b, d])), { concurrency: "unbounded" })
        for (const node of [a, b, d]) assert.strictEqual(yield* node.request("size"), 500, `${node.id} after a leave`)

        yield* Fiber.interrupt(sampler)
        assert.isAbove(sizes.length, 0)
        assert.isAtMost(Math.max(...sizes), 500, sizes.join(","))
      })),
    120_000
  )
})
