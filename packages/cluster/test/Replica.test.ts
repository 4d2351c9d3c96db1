/**
 * The merge rule of `Replicated`, pure: replicas that receive the same writes in any order show the
 * same entries, and those are what applying the writes in stamp order gives (last writer wins).
 */
import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import type { Stamp } from "../src/internal/replica.js"
import { BUCKETS, compare, Hlc, Replica, touchOf } from "../src/internal/replica.js"

type Write =
  | { readonly _tag: "Put"; readonly key: string; readonly tags: ReadonlyArray<string>; readonly stamp: Stamp }
  | { readonly _tag: "Delete"; readonly key: string; readonly stamp: Stamp }
  | { readonly _tag: "Tag"; readonly tag: string; readonly stamp: Stamp }
  | { readonly _tag: "Flush"; readonly stamp: Stamp }

const nodes = ["a", "b", "c"]
const key = fc.constantFrom("k1", "k2", "k3", "k4")
const tag = fc.constantFrom("t1", "t2")
// Few distinct versions, so equal versions from different nodes are common.
const stamp = fc.record({ version: fc.integer({ min: 1, max: 12 }), origin: fc.constantFrom(...nodes) })

const write: fc.Arbitrary<Write> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ _tag: fc.constant("Put" as const), key, tags: fc.subarray(["t1", "t2"]), stamp })
  },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Delete" as const), key, stamp }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Tag" as const), tag, stamp }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("Flush" as const), stamp }) }
)

/** A node makes one write per stamp: stamps are unique across the writes. */
const writes = fc.uniqueArray(write, {
  minLength: 1,
  maxLength: 30,
  selector: (w) => `${w.stamp.version}/${w.stamp.origin}`
})

const apply = (replica: Replica, w: Write) => {
  switch (w._tag) {
    case "Put":
      return replica.put(w.key, w.stamp, null, w.tags)
    case "Delete":
      return replica.delete(w.key, w.stamp)
    case "Tag":
      return replica.invalidateTag(w.tag, w.stamp)
    case "Flush":
      return replica.flush(w.stamp)
  }
}

/** What a replica shows: key → the stamp of its put. */
const visible = (replica: Replica) => {
  const out: Record<string, string> = {}
  for (const k of Array.from(replica.keys()).sort()) {
    const meta = replica.get(k)!
    out[k] = `${meta.version}/${meta.origin}`
  }
  return out
}

/** The reference: a plain map, the writes applied one after the other in stamp order. */
const sequential = (all: ReadonlyArray<Write>) => {
  const map = new Map<string, { readonly tags: ReadonlyArray<string>; readonly stamp: Stamp }>()
  for (const w of [...all].sort((x, y) => compare(x.stamp, y.stamp))) {
    switch (w._tag) {
      case "Put":
        map.set(w.key, { tags: w.tags, stamp: w.stamp })
        break
      case "Delete":
        map.delete(w.key)
        break
      case "Tag":
        for (const [k, v] of Array.from(map)) if (v.tags.includes(w.tag)) map.delete(k)
        break
      case "Flush":
        map.clear()
    }
  }
  const out: Record<string, string> = {}
  for (const k of Array.from(map.keys()).sort()) out[k] = `${map.get(k)!.stamp.version}/${map.get(k)!.stamp.origin}`
  return out
}

describe("Replicated merge rule", () => {
  it.prop(
    "replicas that apply the same writes in any order (with duplicates) show what stamp order gives",
    [writes, fc.array(fc.array(fc.nat(), { maxLength: 40 }), { minLength: 3, maxLength: 3 })],
    ([all, orders]) => {
      const expected = sequential(all)
      for (const order of orders) {
        // A random permutation of the writes, then some of them delivered again.
        const pending = [...all]
        const delivery: Array<Write> = []
        for (const pick of order) {
          if (pending.length === 0) break
          delivery.push(pending.splice(pick % pending.length, 1)[0])
        }
        delivery.push(...pending)
        for (const pick of order.slice(0, 5)) delivery.push(all[pick % all.length])
        const replica = new Replica()
        for (const w of delivery) apply(replica, w)
        assert.deepStrictEqual(visible(replica), expected)
      }
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop(
    "digests agree exactly when the visible states agree",
    [writes, writes],
    ([left, right]) => {
      const a = new Replica()
      const b = new Replica()
      for (const w of left) apply(a, w)
      for (const w of right) apply(b, w)
      const same = JSON.stringify(visible(a)) === JSON.stringify(visible(b))
      assert.strictEqual(JSON.stringify(a.digest()) === JSON.stringify(b.digest()), same)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "touches (a put of a write's value at touchOf its stamp) in any order give stamp order, where a touch " +
      "sets the expiry of the write it saw if the key still shows it, and does nothing otherwise",
    [
      writes,
      fc.array(fc.record({ pick: fc.nat(), clock: fc.integer({ min: 1, max: 20 }), by: fc.constantFrom(...nodes) }), {
        maxLength: 10
      }),
      fc.array(fc.nat(), { maxLength: 40 })
    ],
    ([all, picks, order]) => {
      const puts = all.filter((w): w is Extract<Write, { _tag: "Put" }> => w._tag === "Put")
      type Touch = Extract<Write, { _tag: "Put" }> & { readonly of: Stamp }
      const touches = new Map<string, Touch>()
      if (puts.length > 0) {
        for (const { by, clock, pick } of picks) {
          const put = puts[pick % puts.length]
          const at = touchOf(put.stamp, clock, by)
          touches.set(`${at.version}/${at.origin}`, { ...put, stamp: at, of: put.stamp })
        }
      }
      // The reference: in stamp order, a touch replaces the write it saw (or a touch of it) only.
      const byStamp: Array<Write | Touch> = [...all, ...touches.values()].sort((x, y) => compare(x.stamp, y.stamp))
      const shown = new Map<string, { readonly tags: ReadonlyArray<string>; readonly stamp: Stamp }>()
      for (const w of byStamp) {
        if ("of" in w) {
          const now = shown.get(w.key)
          if (now !== undefined && now.stamp.version === w.of.version && now.stamp.origin.startsWith(w.of.origin)) {
            shown.set(w.key, { tags: w.tags, stamp: w.stamp })
          }
          continue
        }
        switch (w._tag) {
          case "Put":
            shown.set(w.key, { tags: w.tags, stamp: w.stamp })
            break
          case "Delete":
            shown.delete(w.key)
            break
          case "Tag":
            for (const [k, v] of Array.from(shown)) if (v.tags.includes(w.tag)) shown.delete(k)
            break
          case "Flush":
            shown.clear()
        }
      }
      const expected: Record<string, string> = {}
      for (const k of Array.from(shown.keys()).sort()) {
        expected[k] = `${shown.get(k)!.stamp.version}/${shown.get(k)!.stamp.origin}`
      }
      const pending: Array<Write> = [...all, ...touches.values()]
      const delivery: Array<Write> = []
      for (const pick of order) if (pending.length > 0) delivery.push(pending.splice(pick % pending.length, 1)[0])
      delivery.push(...pending)
      const replica = new Replica()
      for (const w of delivery) apply(replica, w)
      assert.deepStrictEqual(visible(replica), expected)
    },
    { fastCheck: { numRuns: 500 } }
  )

  it("an expired put becomes a tombstone, so an older put of the key stays out", () => {
    const replica = new Replica()
    assert.strictEqual(replica.put("k", { version: 2, origin: "a" }, 1_000, []), "stored")
    assert.deepStrictEqual(replica.expire(1_000), ["k"])
    assert.strictEqual(replica.put("k", { version: 1, origin: "b" }, null, []), "stale")
    assert.strictEqual(replica.put("k", { version: 3, origin: "b" }, null, []), "stored")
  })

  it("expire, forget and flush visit every key of a bucket once while they rewrite it", () => {
    const replica = new Replica()
    // 1,000 keys in 256 buckets, all stamped within wall-clock ms 5,000; every other one expires at 1,000.
    const keys = Array.from({ length: 1_000 }, (_, i) => `k${i}`)
    keys.forEach((key, i) =>
      replica.put(key, { version: 5_000 * 1024 + i, origin: "a" }, i % 2 === 0 ? 1_000 : null, [])
    )
    const even = keys.filter((_, i) => i % 2 === 0)
    assert.deepStrictEqual(replica.expire(1_000).sort(), even.sort())
    assert.strictEqual(replica.live, 500)
    assert.deepStrictEqual(replica.expire(1_000), [])
    replica.forget(5_001)
    const all = Array.from({ length: BUCKETS }, (_, bucket) => bucket)
    assert.deepStrictEqual(replica.items(all).map(([key]) => key).sort(), keys.filter((_, i) => i % 2 === 1).sort())
    assert.strictEqual(replica.flush({ version: 6_000 * 1024, origin: "a" }).length, 500)
    assert.strictEqual(replica.live, 0)
    assert.strictEqual(replica.items(all).length, 0)
    assert.isTrue(replica.digest().counts.every((count) => count === 0))
  })

  it("tombstones and tag floors are forgotten after the horizon, not before", () => {
    const replica = new Replica()
    const old = { version: 5_000 * 1024, origin: "a" }
    replica.delete("k", old)
    replica.invalidateTag("t", old)
    replica.forget(5_000)
    assert.strictEqual(replica.put("k", { version: 1, origin: "a" }, null, []), "stale")
    assert.strictEqual(replica.put("j", { version: 1, origin: "a" }, null, ["t"]), "removed")
    replica.forget(5_001)
    assert.strictEqual(replica.put("k", { version: 2, origin: "a" }, null, []), "stored")
    assert.strictEqual(replica.put("j", { version: 2, origin: "a" }, null, ["t"]), "stored")
  })

  it("the hybrid logical clock never goes back, whatever the wall clock and the versions it sees", () => {
    let wall = 1_000
    const clock = new Hlc(() => wall)
    const first = clock.next()
    wall = 900
    const second = clock.next()
    assert.isAbove(second, first)
    clock.observe(5_000 * 1024)
    assert.isAbove(clock.next(), 5_000 * 1024)
    wall = 10_000
    assert.strictEqual(clock.next(), 10_000 * 1024)
  })
})
