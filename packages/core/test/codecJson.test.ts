import { assert, describe, it } from "@effect/vitest"
import { Codec } from "@vela/core"
import { Either, FastCheck as fc } from "effect"

const encode = (value: unknown) => Either.getOrThrow(Codec.json.encode("k", value))
const decode = (text: string) => Either.getOrThrow(Codec.json.decode("k", text))

/** Keys that matter to the codec: its tag key, `__proto__`, `v`, and ordinary ones. */
const key = fc.oneof(fc.constantFrom("$vela", "__proto__", "v", "0", "10"), fc.string({ maxLength: 4 }))

/** Values the codec stores: JSON, plus what it tags, nested in any way. */
const { value } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(null, true, false, 0, -1.5, 2 ** 53 + 2, Infinity, -Infinity, NaN),
    fc.string({ maxLength: 6 }),
    fc.double().filter((n) => !Object.is(n, -0)),
    fc.bigInt(),
    fc.date({ noInvalidDate: true }),
    fc.uint8Array({ maxLength: 4 }),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.array(fc.tuple(key, tie("value")), { maxLength: 4 }).map((pairs) => {
      const out: Record<string, unknown> = {}
      for (const [k, v] of pairs) {
        Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
      }
      return out
    }),
    fc.array(fc.tuple(tie("value"), tie("value")), { maxLength: 3 }).map((pairs) => new Map(pairs)),
    fc.array(tie("value"), { maxLength: 3 }).map((items) => new Set(items))
  )
}))

describe("Codec.json", () => {
  it.prop("every storable value reads back as itself", [value], ([v]) => {
    assert.deepStrictEqual(decode(encode(v)), v)
  }, { fastCheck: { numRuns: 1_000 } })

  it.prop("plain JSON is written as JSON.stringify writes it", [fc.jsonValue()], ([v]) => {
    assert.strictEqual(encode(v), JSON.stringify(v))
  }, { fastCheck: { numRuns: 1_000 } })

  it("writes the bytes it always wrote (stored entries still read back)", () => {
    const value = {
      a: [1, "x", null, true, { b: undefined, c: -0 }],
      n: NaN,
      big: 12n,
      at: new Date(Date.UTC(2020, 0, 2)),
      bytes: new Uint8Array([0, 255]),
      map: new Map([["k", new Set([1])]]),
      tagged: { $vela: "Date", v: "not a date" },
      deep: [{ $vela: 1 }]
    }
    const text = "{\"a\":[1,\"x\",null,true,{\"c\":0}],\"n\":{\"$vela\":\"number\",\"v\":\"NaN\"}," +
      "\"big\":{\"$vela\":\"bigint\",\"v\":\"12\"},\"at\":{\"$vela\":\"Date\",\"v\":\"2020-01-02T00:00:00.000Z\"}," +
      "\"bytes\":{\"$vela\":\"Uint8Array\",\"v\":\"AP8=\"},\"map\":{\"$vela\":\"Map\",\"v\":[[\"k\",{\"$vela\":\"Set\",\"v\":[1]}]]}," +
      "\"tagged\":{\"$vela\":\"Object\",\"v\":{\"$vela\":\"Date\",\"v\":\"not a date\"}},\"deep\":[{\"$vela\":\"Object\",\"v\":{\"$vela\":1}}]}"
    assert.strictEqual(encode(value), text)
    assert.strictEqual(encode({ $vela: "x" }), "{\"$vela\":\"Object\",\"v\":{\"$vela\":\"x\"}}")
    assert.deepStrictEqual(decode(text), { ...value, a: [1, "x", null, true, { c: 0 }] })
  })

  it("names what it cannot store, wherever it is", () => {
    for (const bad of [undefined, [1, undefined], { f: () => 1 }, { s: Symbol("s") }, { c: new (class C {})() }]) {
      assert.isTrue(Either.isLeft(Codec.json.encode("k", bad)))
    }
  })
})
