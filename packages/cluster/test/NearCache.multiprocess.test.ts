/**
 * `NearCache` over `Replicated` across separate `node` processes on loopback
 * (test/fixtures/near.mjs over the built `dist`, its cache built from layers), started and killed by
 * the test: a put, a delete or a tag invalidation on one process drops the L1 copies on the others.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { NodeProcess } from "./utils.js"
import { poll, spawnNode } from "./utils.js"

const members = (node: NodeProcess, expected: ReadonlyArray<NodeProcess>) =>
  poll(Effect.flatMap(node.request<Array<string>>("members"), (seen) => {
    const want = expected.map((n) => n.id).sort().join(",")
    return seen.join(",") === want ? Effect.void : Effect.fail(new Error(`${node.id} sees ${seen.join(",")}`))
  }))

/** Waits (bounded) until `node` reads `expected` (`null` for absent) at `key`. */
const reads = (node: NodeProcess, key: string, expected: unknown) =>
  poll(
    Effect.flatMap(node.request("get", { key }), (seen) =>
      JSON.stringify(seen) === JSON.stringify(expected)
        ? Effect.void
        : Effect.fail(new Error(`${node.id} reads ${JSON.stringify(seen)} at ${key}`))),
    "5 seconds"
  ).pipe(
    Effect.mapError((error) =>
      new Error(`${node.id} did not read ${JSON.stringify(expected)} at ${key}: ${error.message}`)
    )
  )

describe("multi-process NearCache over Replicated", () => {
  it.live(
    "a put, a delete and a tag invalidation on one process drop the L1 copies on the others",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const a = yield* spawnNode({}, "near.mjs")
        const [b, c] = yield* Effect.all(
          [spawnNode({ SEEDS: a.id }, "near.mjs"), spawnNode({ SEEDS: a.id }, "near.mjs")],
          { concurrency: "unbounded" }
        )
        yield* Effect.all([a, b, c].map((n) => members(n, [a, b, c])), { concurrency: "unbounded" })
        const all = [a, b, c]
        const others = [b, c]

        // Every node reads `k`, so each holds it in its L1.
        yield* a.request("put", { key: "k", value: { v: 1 } })
        yield* Effect.all(all.map((n) => reads(n, "k", { v: 1 })), { concurrency: "unbounded" })

        yield* a.request("put", { key: "k", value: { v: 2 } })
        yield* Effect.all(others.map((n) => reads(n, "k", { v: 2 })), { concurrency: "unbounded" })

        yield* a.request("delete", { key: "k" })
        yield* Effect.all(others.map((n) => reads(n, "k", null)), { concurrency: "unbounded" })

        yield* a.request("put", { key: "t1", value: { v: 1 }, tags: ["t"] })
        yield* a.request("put", { key: "t2", value: { v: 2 }, tags: ["t"] })
        yield* Effect.all(
          others.flatMap((n) => [reads(n, "t1", { v: 1 }), reads(n, "t2", { v: 2 })]),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(yield* c.request("invalidateTag", { tag: "t" }), 2)
        yield* Effect.all(
          [a, b].flatMap((n) => [reads(n, "t1", null), reads(n, "t2", null)]),
          { concurrency: "unbounded" }
        )
      })),
    30_000
  )
})
