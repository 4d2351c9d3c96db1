/** The chaos rig's history checks (chaos/history.ts) on histories written by hand. */
import { assert, describe, it } from "@effect/vitest"
import type { Fault, Op } from "./chaos/history.js"
import { check } from "./chaos/history.js"

let ids = 0
const op = (fields: Partial<Op> & Pick<Op, "kind" | "invoke" | "complete">): Op => ({
  id: ids++,
  node: "n0",
  keys: ["k"],
  ok: true,
  ...fields
})
const put = (value: string, invoke: number, complete: number, ok = true) =>
  op({ kind: "put", values: [value], invoke, complete, ok })
const read = (result: string | null, invoke: number, complete: number, more: Partial<Op> = {}) =>
  op({ kind: "read", result, invoke, complete, ...more })

const run = (
  history: ReadonlyArray<Op>,
  options: { readonly faults?: ReadonlyArray<Fault>; readonly final?: string | null } = {}
) =>
  check({
    history,
    faults: options.faults ?? [],
    keys: ["k"],
    tagOf: () => "t",
    finals: new Map([["k", options.final === undefined ? [] : [{ node: "n0", state: options.final }]]])
  }).violations.map((v) => v.check)

describe("chaos history checks", () => {
  it("a read of a value never written, or written only after the read, is flagged", () => {
    assert.deepStrictEqual(run([put("a", 0, 10), read("b", 20, 30)]), ["read a value no one wrote"])
    assert.deepStrictEqual(run([read("a", 0, 10), put("a", 20, 30)]), ["read a value no one wrote"])
    assert.deepStrictEqual(run([put("a", 0, 10), read("a", 5, 8)]), [])
  })

  it("a read after a completed change returns it or something newer, unless a fault came between", () => {
    const history = [put("a", 0, 10), put("b", 20, 30), read("a", 40, 50)]
    assert.deepStrictEqual(run(history), ["stale read"])
    assert.deepStrictEqual(run(history, { faults: [{ kind: "kill", nodes: ["n1"], start: 35, end: 45 }] }), [])
    // Overlapping the change, either answer is right.
    assert.deepStrictEqual(run([put("a", 0, 10), put("b", 20, 30), read("a", 25, 50)]), [])
    // A failed write may still take effect later: it is never out of date.
    assert.deepStrictEqual(run([put("a", 0, 10, false), put("b", 20, 30), read("a", 40, 50)]), [])
    // After a delete or an invalidation of the key's tag, absent is right; the value is not.
    const deleted = op({ kind: "delete", invoke: 20, complete: 30 })
    assert.deepStrictEqual(run([put("a", 0, 10), deleted, read(null, 40, 50)]), [])
    assert.deepStrictEqual(run([put("a", 0, 10), deleted, read("a", 40, 50)]), ["stale read"])
    const invalidated = op({ kind: "invalidateTag", keys: [], tag: "t", invoke: 20, complete: 30 })
    assert.deepStrictEqual(run([put("a", 0, 10), invalidated, read("a", 40, 50)]), ["stale read"])
    assert.deepStrictEqual(run([put("a", 0, 10), read(null, 40, 50)]), ["stale read"])
  })

  it("a read through the near cache is held to it once the near cache dropped the key after the change", () => {
    const history = (dropped: number) => [
      put("a", 0, 10),
      put("b", 20, 30),
      read("a", 40, 50, { kind: "nearRead", dropped })
    ]
    assert.deepStrictEqual(run(history(15)), [])
    assert.deepStrictEqual(run(history(35)), ["stale read"])
    // getOrFetch that fetched saw a miss.
    const fetched = op({ kind: "getOrFetch", values: ["c"], result: "c", fetched: true, invoke: 40, complete: 50 })
    assert.deepStrictEqual(run([put("a", 0, 10), { ...fetched, dropped: 35 }]), ["stale read"])
  })

  it("the state after the run must not be superseded by an acknowledged change", () => {
    assert.deepStrictEqual(run([put("a", 0, 10), put("b", 20, 30)], { final: "a" }), ["lost write"])
    assert.deepStrictEqual(run([put("a", 0, 10), put("b", 20, 30)], { final: "b" }), [])
    assert.deepStrictEqual(run([put("a", 0, 10)], { final: null }), ["lost write"])
    assert.deepStrictEqual(
      run([put("a", 0, 10), op({ kind: "delete", invoke: 20, complete: 30, ok: false })], {
        final: null
      }),
      []
    )
    assert.deepStrictEqual(run([put("a", 0, 10)], { final: "z" }), ["read a value no one wrote"])
  })
})
