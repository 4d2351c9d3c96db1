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
          // Past the handoff grace of the joins: the owners do not ask the others for each key first
          // (the in-process tests cover that).
          const nodes = yield* spawnThree({ REPLICAS: replicas, HANDOFF_GRACE: "500 millis" })
          yield* Effect.sleep("600 millis")
          // Through the JSON codec (the owner adds), and through another one (compare-and-set rounds).
          const json = ["c0", "c1", "c2"]
          const other = ["o0", "o1", "o2"]
          const keys = [...json, ...other]
          const times = 60
          const results = yield* Effect.all(
            nodes.flatMap((n) => [
              n.request<Increments>("increment", { keys: json, times, concurrency: 64 }),
              n.request<Increments>("increment", { keys: other, times: times / 2, concurrency: 64, other: true })
            ]),
            { concurrency: "unbounded" }
          )
          for (const r of results) assert.deepStrictEqual(r.failures, [])
          const totalOf = (key: string) => (json.includes(key) ? times : times / 2) * nodes.length
          for (const key of keys) {
            // Every increment applied once: the sums seen across the processes are 1..total.
            const seen = results.flatMap((r) => r.sums[key] ?? []).sort((a, b) => a - b)
            assert.deepStrictEqual(seen, Array.from({ length: totalOf(key) }, (_, i) => i + 1), key)
          }
          for (const n of nodes) assert.deepStrictEqual(yield* n.request("atomicRead", { keys }), keys.map(totalOf))
          // Every holder's copy agrees.
          const held = yield* Effect.forEach(nodes, (n) => n.request<Array<string | null>>("atomicHeld", { keys }))
          keys.forEach((key, i) => {
            const copies = held.map((h) => h[i]).filter((t) => t !== null)
            assert.deepStrictEqual(copies, Array(1 + Number(replicas)).fill(String(totalOf(key))), key)
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
