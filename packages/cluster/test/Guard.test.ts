import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, FastCheck as fc, Schema } from "effect"
import { compile } from "../src/internal/guard.js"
import { LaneChallenge, LaneProof, LaneRequest, OpResults } from "../src/internal/protocol.js"

/** `value` with the node at a random path of it replaced by `replacement` (or removed, for `undefined`). */
const mutate = (value: unknown, path: ReadonlyArray<number>, replacement: unknown): unknown => {
  if (typeof value !== "object" || value === null) return replacement
  const copy = (Array.isArray(value) ? [...value] : { ...value }) as Record<string, unknown>
  const keys = Object.keys(copy)
  if (keys.length === 0 || path.length === 0) return replacement
  const key = keys[path[0] % keys.length]
  const next = mutate(copy[key], path.slice(1), replacement)
  if (next === undefined && path.length === 1) delete copy[key]
  else copy[key] = next
  return copy
}

/** Values of `schema`, the same with one node replaced or removed, and anything at all. */
const candidates = <A, I>(schema: Schema.Schema<A, I, never>) =>
  fc.oneof(
    Arbitrary.make(schema),
    fc.tuple(Arbitrary.make(schema), fc.array(fc.nat(), { minLength: 1, maxLength: 5 }), fc.anything())
      .map(([value, path, replacement]) => mutate(value, path, replacement)),
    fc.tuple(Arbitrary.make(schema), fc.array(fc.nat(), { minLength: 1, maxLength: 5 }))
      .map(([value, path]) => mutate(value, path, undefined)),
    fc.anything()
  )

/**
 * What `is` says of `u`. `Schema.is` throws on some values it cannot describe (a `_tag` that cannot
 * become a primitive, as `{ toString: [] }`); it accepts none of them.
 */
const accepts = (is: (u: unknown) => boolean, u: unknown): boolean => {
  try {
    return is(u)
  } catch {
    return false
  }
}

describe("guard", () => {
  for (
    const [name, schema] of [
      ["LaneRequest", LaneRequest],
      ["OpResults", OpResults],
      ["LaneChallenge", LaneChallenge],
      ["LaneProof", LaneProof]
    ] as const
  ) {
    it(`a guard compiled from ${name} accepts exactly what Schema.is accepts`, () => {
      const guard = compile(schema as Schema.Schema<unknown, unknown, never>)
      const is = Schema.is(schema as Schema.Schema<unknown, unknown, never>)
      let accepted = 0
      let refused = 0
      fc.assert(
        fc.property(candidates(schema as Schema.Schema<unknown, unknown, never>), (u) => {
          const expected = accepts(is, u)
          if (expected) accepted++
          else refused++
          assert.strictEqual(guard(u), expected, JSON.stringify(u))
        }),
        { numRuns: 2000 }
      )
      // Both answers were exercised, so agreement means something.
      assert.isAbove(accepted, 100)
      assert.isAbove(refused, 100)
    })
  }

  it("a Schema with a node the compiler does not know is refused when the guard is built", () => {
    assert.throws(() => compile(Schema.Struct({ n: Schema.Number.pipe(Schema.int()) })), /Refinement/)
  })
})
