import { assert, describe, it } from "@effect/vitest"
import type { Backend } from "@vela/core"
import { openOptions } from "@vela/core/testing"
import { Effect, Option } from "effect"
import type { Started } from "./utils.js"
import { cluster, eventually, startReplicated } from "./utils.js"

const ns = "atomic"
const open = (started: Started) => started.topology.open(openOptions(ns))
const entry = (value: unknown, tags: ReadonlyArray<string> = []): Backend.Entry => ({
  value,
  expiresAt: null,
  tags,
  version: 0
})

describe("Replicated atomic operations", () => {
  it.live(
    "touch reaches every node; a later write wins over it; the read-modify-writes are Unsupported",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const nodes = yield* cluster((seeds) => startReplicated(seeds), 3)
        const [a, b, c] = yield* Effect.forEach(nodes, open)
        const stores = [a, b, c]
        const everywhere = (key: string, check: (entry: Option.Option<Backend.Entry>) => boolean) =>
          eventually(Effect.forEach(stores, (store) =>
            Effect.flatMap(
              store.get(key),
              (found) => check(found) ? Effect.void : Effect.fail(new Error(`${key}: ${JSON.stringify(found)}`))
            )))

        yield* a.set("k", entry("v", ["t"]))
        yield* everywhere("k", Option.isSome)
        const later = Date.now() + 60_000
        assert.isTrue(yield* b.touch("k", later))
        yield* everywhere("k", (found) =>
          Option.isSome(found) && found.value.expiresAt === later && found.value.value === "v" &&
          found.value.tags[0] === "t")
        // A put after the touch wins wherever the two meet; a touch of an absent key is false.
        yield* c.set("k", entry("newer"))
        yield* everywhere("k", (found) =>
          Option.isSome(found) && found.value.value === "newer")
        assert.isFalse(yield* a.touch("absent", later))
        // A tag invalidation after a touch removes it.
        yield* a.set("tagged", entry(1, ["t2"]))
        yield* everywhere("tagged", Option.isSome)
        assert.isTrue(yield* c.touch("tagged", later))
        yield* b.invalidateTag("t2")
        yield* everywhere("tagged", Option.isNone)

        for (
          const attempt of [
            a.take("k"),
            a.increment("n", 1, { expiresAt: null, tags: [] }),
            a.readForUpdate("k"),
            a.compareAndSet("k", undefined, entry(1))
          ] as ReadonlyArray<Effect.Effect<unknown, unknown>>
        ) {
          const error = yield* Effect.flip(attempt)
          assert.deepInclude(error, { _tag: "Unsupported", store: "Replicated" })
        }
        // Nothing was changed by them.
        yield* everywhere("k", (found) =>
          Option.isSome(found) && found.value.value === "newer")
        assert.isTrue(Option.isNone(yield* b.get("n")))
      })),
    30_000
  )
})
