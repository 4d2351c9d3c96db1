import { assert, describe, it } from "@effect/vitest"
import { HashRing } from "@vela/cluster"
import { FastCheck as fc } from "effect"

const memberName = fc.stringMatching(/^[a-z0-9.:-]{1,24}$/)
const members = (min: number, max: number) => fc.uniqueArray(memberName, { minLength: min, maxLength: max })
const keys = (count: number, salt: string) => Array.from({ length: count }, (_, i) => `key:${salt}:${i}`)

const loads = (ring: HashRing.HashRing, sample: ReadonlyArray<string>) => {
  const load = new Map<string, number>(ring.members.map((m) => [m, 0]))
  for (const key of sample) {
    const owner = HashRing.owner(ring, key)!
    load.set(owner, load.get(owner)! + 1)
  }
  return load
}

describe("HashRing", () => {
  it.prop(
    "balance: 10 members with 128 virtual nodes, no member above 1.3 × the mean",
    [members(10, 10), fc.string({ maxLength: 8 })],
    ([names, salt]) => {
      const ring = HashRing.make(names)
      const sample = keys(20_000, salt)
      const max = Math.max(...loads(ring, sample).values())
      assert.isAtMost(max, 1.3 * sample.length / names.length, `max load ${max}`)
    },
    { fastCheck: { numRuns: 40 } }
  )

  it.prop(
    "a join moves only keys to the new member, about 1/N of them",
    [members(2, 10), memberName],
    ([names, joining]) => {
      fc.pre(!names.includes(joining))
      const before = HashRing.make(names)
      const after = HashRing.add(before, joining)
      const sample = keys(5_000, joining)
      let moved = 0
      for (const key of sample) {
        const was = HashRing.owner(before, key)
        const now = HashRing.owner(after, key)
        if (was !== now) {
          assert.strictEqual(now, joining, key)
          moved++
        }
      }
      const expected = sample.length / after.members.length
      assert.isAtLeast(moved, 0.6 * expected)
      assert.isAtMost(moved, 1.4 * expected)
    },
    { fastCheck: { numRuns: 40 } }
  )

  it.prop(
    "a leave moves only the leaver's keys, and its first replica takes each over",
    [members(3, 10), fc.nat()],
    ([names, pick]) => {
      const leaving = names[pick % names.length]
      const before = HashRing.make(names)
      const after = HashRing.remove(before, leaving)
      for (const key of keys(3_000, leaving)) {
        const holders = HashRing.holders(before, key, 3)
        const next = HashRing.holders(after, key, 2)
        assert.strictEqual(holders[0], HashRing.owner(before, key))
        if (holders[0] === leaving) {
          assert.deepStrictEqual(next, holders.slice(1, 3), key)
        } else {
          assert.strictEqual(next[0], holders[0], key)
          assert.deepStrictEqual(next, holders.filter((m) => m !== leaving).slice(0, 2), key)
        }
      }
    },
    { fastCheck: { numRuns: 40 } }
  )

  it.prop(
    "the same members in any order give the same ring",
    [
      members(1, 12).chain((names) =>
        fc.tuple(fc.constant(names), fc.shuffledSubarray(names, { minLength: names.length }))
      )
    ],
    ([[names, shuffled]]) => {
      const a = HashRing.make(names, { virtualNodes: 16 })
      const b = HashRing.make([...shuffled, ...shuffled], { virtualNodes: 16 })
      assert.deepStrictEqual(a, b)
      for (const key of keys(200, "order")) {
        assert.deepStrictEqual(HashRing.holders(a, key, 3), HashRing.holders(b, key, 3))
      }
    },
    { fastCheck: { numRuns: 60 } }
  )

  it("holders are distinct, owner first, and bounded by the member count", () => {
    const ring = HashRing.make(["a", "b", "c"])
    for (const key of keys(500, "holders")) {
      const holders = HashRing.holders(ring, key, 5)
      assert.strictEqual(holders.length, 3)
      assert.strictEqual(new Set(holders).size, 3)
      assert.strictEqual(holders[0], HashRing.owner(ring, key))
    }
    assert.isUndefined(HashRing.owner(HashRing.empty(), "k"))
    assert.deepStrictEqual(HashRing.holders(HashRing.empty(), "k", 2), [])
    assert.strictEqual(HashRing.withMembers(ring, ["c", "b", "a"]), ring)
    assert.throws(() => HashRing.make(["a"], { virtualNodes: 0 }))
  })
})
