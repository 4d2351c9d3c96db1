/**
 * The empty stream stores without invalidations report, built without `effect/Stream`: it must
 * behave as `Stream.empty` under every operator, alone or combined, sequential or concurrent.
 */
import { assert, describe, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { emptyStream } from "../src/internal/emptyStream.js"

/** Stream programs with one hole; each is run with the hole filled by both empty streams. */
const programs: ReadonlyArray<
  readonly [name: string, (empty: Stream.Stream<never>, xs: ReadonlyArray<number>) => Stream.Stream<number>]
> = [
  ["alone", (empty) => empty],
  ["concat before", (empty, xs) => Stream.concat(empty, Stream.fromIterable(xs))],
  ["concat after", (empty, xs) => Stream.concat(Stream.fromIterable(xs), empty)],
  ["merge", (empty, xs) => Stream.merge(empty, Stream.fromIterable(xs))],
  ["mergeAll", (empty, xs) => Stream.mergeAll([empty, Stream.fromIterable(xs), empty], { concurrency: 2 })],
  ["zip", (empty, xs) => Stream.map(Stream.zip(Stream.fromIterable(xs), empty), ([a]) => a)],
  ["interleave", (empty, xs) => Stream.interleave(empty, Stream.fromIterable(xs))],
  ["flatMap", (empty, xs) => Stream.flatMap(Stream.fromIterable(xs), (x) => Stream.concat(empty, Stream.make(x)))],
  ["mapEffect", (empty) => Stream.mapEffect(empty, (x) => Effect.succeed(x), { concurrency: 4 })],
  ["take", (empty) => Stream.take(empty, 3)],
  ["interruptWhen", (empty) => Stream.interruptWhen(empty, Effect.never)],
  ["orElse", (empty, xs) => Stream.orElse(empty, () => Stream.fromIterable(xs))],
  ["pipe", (empty, xs) => empty.pipe(Stream.concat(Stream.fromIterable(xs)), Stream.map((x) => x + 1))]
]

describe("emptyStream", () => {
  it("carries the stream type id", () => {
    assert.isTrue(Stream.StreamTypeId in emptyStream)
  })

  it.effect("runs no element through runForEach and ends", () =>
    Effect.gen(function*() {
      let seen = 0
      yield* Stream.runForEach(emptyStream, () => Effect.sync(() => seen++))
      assert.strictEqual(seen, 0)
    }))

  it.effect.prop(
    "gives what Stream.empty gives, in every program",
    [fc.constantFrom(...programs.keys()), fc.array(fc.integer(), { maxLength: 20 })],
    ([index, xs]) =>
      Effect.gen(function*() {
        const [name, program] = programs[index]
        const expected = yield* Stream.runCollect(program(Stream.empty, xs))
        const actual = yield* Stream.runCollect(program(emptyStream, xs))
        assert.deepStrictEqual(Chunk.toArray(actual), Chunk.toArray(expected), name)
      })
  )
})
