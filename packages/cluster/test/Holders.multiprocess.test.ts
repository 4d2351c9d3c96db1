/**
 * Partitioned holders of a key converge: writers racing on every process leave every holder with
 * the same value (or none), whatever order their writes arrived in, so a read answers the same
 * before and after the owner dies. Separate `node` processes (test/fixtures/node.mjs over `dist`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { NodeProcess } from "./utils.js"
import { poll, seesMembers, spawnThree } from "./utils.js"

const keys = Array.from({ length: 60 }, (_, i) => `race:${i}`)

/** Every node's own copy of each key. Fails unless all copies of a key are the same text, on `copies` nodes or none. */
const holdersAgree = (nodes: ReadonlyArray<NodeProcess>, copies: number) =>
  Effect.flatMap(
    Effect.all(nodes.map((n) => n.request<Array<string | null>>("held", { keys }))),
    (held) => {
      for (let i = 0; i < keys.length; i++) {
        const texts = held.map((copy) => copy[i]).filter((text) => text !== null)
        const distinct = new Set(texts)
        if (distinct.size > 1 || (texts.length !== 0 && texts.length !== copies)) {
          return Effect.fail(new Error(`${keys[i]} is held as ${held.map((copy) => copy[i]).join(" | ")}`))
        }
      }
      return Effect.void
    }
  )

describe("multi-process Partitioned holders", () => {
  it.live(
    "racing writers on every node leave all holders of a key with one value; reads survive each owner's death",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const [a, b, c] = yield* spawnThree()

        // Every node writes and deletes the same keys at once, several rounds.
        yield* Effect.all([a, b, c].map((n) => n.request("race", { keys, rounds: 8 })), { concurrency: "unbounded" })
        yield* holdersAgree([a, b, c], 2)
        const before = yield* a.request<Array<unknown>>("readKeys", { keys })
        assert.isTrue(before.some((value) => value !== null))
        assert.deepStrictEqual(yield* b.request("readKeys", { keys }), before)
        assert.deepStrictEqual(yield* c.request("readKeys", { keys }), before)

        // The owner of a third of the keys dies: their replicas answer the same.
        c.child.kill("SIGKILL")
        yield* Effect.all([seesMembers(a, [a, b]), seesMembers(b, [a, b])], { concurrency: "unbounded" })
        assert.deepStrictEqual(yield* a.request("readKeys", { keys }), before)
        assert.deepStrictEqual(yield* b.request("readKeys", { keys }), before)

        // Once every key has two copies again, the owner of half of them dies.
        yield* poll(holdersAgree([a, b], 2))
        a.child.kill("SIGKILL")
        yield* seesMembers(b, [b])
        assert.deepStrictEqual(yield* b.request("readKeys", { keys }), before)
      })),
    90_000
  )
})
