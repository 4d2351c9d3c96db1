/**
 * The atomic operations of the Partitioned topology across three `node` processes on loopback
 * (test/fixtures/node.mjs over the built `dist`), started and stopped by the test: increments from
 * every process add up exactly, each applied once; of racing takes, exactly one wins each key; an
 * increment whose answer is lost fails, and is applied once, not sent again.
 */
import { assert, describe, it } from "@effect/vitest"
import { HashRing } from "@vela/cluster"
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

  it.live(
    "an increment applied on its owner whose answer was lost (its replica stalled) fails, and is not sent again",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const nodes = yield* spawnThree({
          REPLICAS: "1",
          HANDOFF_GRACE: "500 millis",
          REQUEST_TIMEOUT: "500",
          FAILURE_TIMEOUT: "20 seconds"
        })
        yield* Effect.sleep("600 millis")
        const ring = HashRing.make(nodes.map((n) => n.id))
        // A key owned by one process, copied to a second: the third asks.
        const key = Array.from({ length: 64 }, (_, i) => `n${i}`).find((k) =>
          !HashRing.holders(ring, k, 2).includes(nodes[0].id)
        )!
        const [owner, replica] = HashRing.holders(ring, key, 2).map((id) => nodes.find((n) => n.id === id)!)
        const requester = nodes[0]
        // The owner waits on the stalled replica past the requester's requestTimeout: the answer is lost.
        replica.child.kill("SIGSTOP")
        const stalled = yield* Effect.ensuring(
          requester.request<Increments>("increment", { keys: [key], times: 1, concurrency: 1 }),
          Effect.sync(() => replica.child.kill("SIGCONT"))
        )
        assert.strictEqual(stalled.failures.length, 1, JSON.stringify(stalled))
        // Applied once on the owner, though the requester was told it failed: never twice.
        assert.deepStrictEqual(yield* owner.request("atomicRead", { keys: [key] }), [1])
        const next = yield* requester.request<Increments>("increment", { keys: [key], times: 1, concurrency: 1 })
        assert.deepStrictEqual(next, { sums: { [key]: [2] }, failures: [] })
      })),
    60_000
  )
})
