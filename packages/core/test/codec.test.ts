import { assert, describe, it } from "@effect/vitest"
import { Backend, Codec, Local, Memory, Vela } from "@vela/core"
import { Effect, Layer, Schema } from "effect"

/** A memory backend that keeps the options each store was opened with. */
const recording = (opened: Array<Backend.OpenOptions>) =>
  Layer.effect(
    Backend.Backend,
    Effect.map(Backend.Backend, (memory) =>
      Backend.Backend.of({
        name: "recording",
        open: (options) => {
          opened.push(options)
          return memory.open(options)
        }
      }))
  ).pipe(Layer.provide(Memory.layer()))

describe("Codec.numbersAsJson", () => {
  it("holds for the JSON codec and Schema.Number, not where a sum may not read back", () => {
    const schema = (s: Schema.Schema<any, any>) => Codec.fromSchema(s) as Codec.Codec
    assert.isTrue(Codec.numbersAsJson(Codec.json))
    assert.isTrue(Codec.numbersAsJson(schema(Schema.Number)))
    assert.isFalse(Codec.numbersAsJson(schema(Schema.NumberFromString)), "numbers as JSON strings")
    assert.isFalse(Codec.numbersAsJson(schema(Schema.Int)), "a sum may not decode")
    assert.isFalse(Codec.numbersAsJson(schema(Schema.String)))
  })

  // Stores decide by it whether they add in place (a Redis script, a cluster owner): the codec a
  // cache hands them is its own wrapped for grace, never `Codec.json` itself.
  it.effect("holds for the codec a default cache hands its store", () => {
    const opened: Array<Backend.OpenOptions> = []
    return Effect.gen(function*() {
      yield* Vela.make({ name: "plain" })
      yield* Vela.make({ name: "numbers", value: Schema.Number })
      assert.strictEqual(opened.length, 2)
      assert.notStrictEqual(opened[0].codec, Codec.json)
      assert.isTrue(opened.every((options) => Codec.numbersAsJson(options.codec)))
    }).pipe(Effect.scoped, Effect.provide(Local.layer.pipe(Layer.provide(recording(opened)))))
  })
})
