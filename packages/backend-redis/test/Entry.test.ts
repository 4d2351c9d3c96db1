import { assert, describe, it } from "@effect/vitest"
import { Codec } from "@vela/core"
import { Either, FastCheck as fc } from "effect"
import * as Entry from "../src/internal/entry.js"

const decode = (payload: string, now = 0) => Entry.decode(Codec.json, "k", payload, now)

describe("entry layout", () => {
  it.prop(
    "decode reads back what encode wrote: expiry, version, tags and value",
    [
      fc.option(fc.oneof(fc.integer({ min: 1, max: 2 ** 53 - 1 }), fc.double({ min: 1, max: 1e300, noNaN: true }))),
      fc.nat(),
      fc.array(fc.string()),
      fc.jsonValue()
    ],
    ([expiresAt, version, tags, value]) => {
      const entry = { value, expiresAt, tags, version }
      const payload = Either.getOrThrow(Entry.encode(Codec.json, "k", entry))
      assert.deepStrictEqual(decode(payload), JSON.parse(JSON.stringify(entry)))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("an entry expired by now is undefined; text that is no entry is a CodecError", () => {
    assert.isUndefined(decode("1000\t0\t[]\n1", 1000))
    assert.deepStrictEqual(decode("1001\t7\t[]\n1", 1000), { value: 1, expiresAt: 1001, tags: [], version: 7 })
    for (const text of ["plain", "1\t2", "1\t2\t[]", "1\t2\t[x\n1", "1\t2\t[]\n{"]) {
      const decoded = decode(text)
      assert.isTrue(Entry.isFailure(decoded), text)
    }
  })
})
