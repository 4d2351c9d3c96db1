/**
 * The atomic operations of the Partitioned topology across three `node` processes on loopback
 * (test/fixtures/node.mjs over the built `dist`), started and stopped by the test: increments from
 * every process add up exactly, each applied once; of racing takes, exactly one wins each key.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnThree } from "./utils.js"

interface Increments {
  readonly sums: Record<string, ReadonlyArray<number>>
  readonly failures: ReadonlyArray<string>
}

interface Takes {
  readonly won: ReadonlyArray<string>
  readonly failures: ReadonlyArray<string>
}

describe("multi-process atomic operations (Partitioned)", () => {
  for (const replicas of ["0", "1"]) {
    it.live(
      `replicas ${replicas}: concurrent increments from three processes give exact sums; racing takes have one winner`,
      () =>
        Effect.scoped(Effect.gen(function*() {
          const nodes = yield* spawnThree({ REPLICAS: replicas })
          const keys = ["c0", "c1", "c2", "c3"]
          const times = 100
          const results = yield* Effect.all(
            nodes.map((n) => n.request<Increments>("increment", { keys, times, concurrency: 64 })),
            { concurrency: "unbounded" }
          )
          for (const r of results) assert.deepStrictEqual(r.failures, [])
          const total = times * nodes.length
          for (const key of keys) {
            // Every increment applied once: the sums seen across the processes are 1..total.
            const seen = results.flatMap((r) => r.sums[key]).sort((a, b) => a - b)
            assert.deepStrictEqual(seen, Array.from({ length: total }, (_, i) => i + 1), key)
          }
          for (const n of nodes) assert.deepStrictEqual(yield* n.request("atomicRead", { keys }), keys.map(() => total))
          // Every holder's copy agrees.
          const held = yield* Effect.forEach(nodes, (n) => n.request<Array<string | null>>("atomicHeld", { keys }))
          keys.forEach((key, i) => {
            const copies = held.map((h) => h[i]).filter((t) => t !== null)
            assert.deepStrictEqual(copies, Array(1 + Number(replicas)).fill(String(total)), key)
          })

          const prizes = Array.from({ length: 40 }, (_, i) => `prize:${i}`)
          yield* nodes[0].request("atomicPut", { keys: prizes })
          const takes = yield* Effect.all(
            nodes.map((n) => n.request<Takes>("take", { keys: prizes, times: 3 })),
            { concurrency: "unbounded" }
          )
          for (const t of takes) assert.deepStrictEqual(t.failures, [])
          assert.deepStrictEqual(takes.flatMap((t) => t.won).sort(), [...prizes].sort())
          const left = yield* Effect.forEach(nodes, (n) =>
            n.request<Array<string | null>>("atomicHeld", { keys: prizes }))
          assert.isTrue(left.every((h) =>
            h.every((t) => t === null)
          ))
        })),
      120_000
    )
  }
})
