/** The atomic operations a store lacks, derived from its compare-and-set. */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Entry, Snapshot, Store, StorePrimitives } from "../Backend.js"
import type { CacheError } from "../Errors.js"
import { Unsupported, WrongType } from "../Errors.js"
import { conflictBackoff } from "./conflictBackoff.js"

type Atomic = Pick<Store, "readForUpdate" | "compareAndSet" | "take" | "touch" | "increment">

/**
 * The atomic operations a store lacks, as loops of `readForUpdate` then `compareAndSet` that start
 * over, after a random pause, when another write came between the two (some write always wins, so
 * the loop ends). A store
 * without those two fails every atomic operation it has not written with `Unsupported`.
 */
export const atomicOperations = (primitives: StorePrimitives): Atomic => {
  const { compareAndSet, readForUpdate } = primitives
  if (readForUpdate === undefined || compareAndSet === undefined) {
    const { reason, store } = primitives.unsupported ??
      { store: "this store", reason: "it has no atomic compare-and-set" }
    const unsupported = (operation: string) => Effect.fail(new Unsupported({ operation, store, reason }))
    return {
      readForUpdate: primitives.readForUpdate ?? (() => unsupported("readForUpdate")),
      compareAndSet: primitives.compareAndSet ?? (() => unsupported("compareAndSet")),
      take: primitives.take ?? (() => unsupported("take")),
      touch: primitives.touch ?? (() => unsupported("touch")),
      increment: primitives.increment ?? (() => unsupported("increment"))
    }
  }
  /** Runs `attempt` on what the key holds until its write lands; `attempt` says what to write and return. */
  const optimistic = <A>(
    key: string,
    attempt: (
      seen: Snapshot | undefined
    ) => Effect.Effect<readonly [next: Entry | undefined | "keep", result: A], CacheError>
  ): Effect.Effect<A, CacheError> => {
    const loop = (conflicts: number): Effect.Effect<A, CacheError> =>
      Effect.flatMap(readForUpdate(key), (read) => {
        const seen = Option.getOrUndefined(read)
        return Effect.flatMap(attempt(seen), ([next, result]) =>
          next === "keep"
            ? Effect.succeed(result)
            : Effect.flatMap(
              compareAndSet(key, seen, next),
              (landed) =>
                landed ? Effect.succeed(result) : Effect.zipRight(conflictBackoff(conflicts), loop(conflicts + 1))
            ))
      })
    return loop(0)
  }
  return {
    readForUpdate,
    compareAndSet,
    take: primitives.take ?? ((key) =>
      optimistic(key, (seen) =>
        Effect.succeed(
          seen === undefined ? ["keep", Option.none()] as const : [undefined, Option.some(seen.entry)] as const
        ))),
    touch: primitives.touch ?? ((key, expiresAt) =>
      optimistic(key, (seen) =>
        Effect.succeed(
          seen === undefined ? ["keep", false] as const : [{ ...seen.entry, expiresAt }, true] as const
        ))),
    increment: primitives.increment ?? ((key, by, created) =>
      optimistic(key, (seen) => {
        const current = seen === undefined ? 0 : seen.entry.value
        const sum = typeof current === "number" ? current + by : NaN
        if (!Number.isFinite(sum)) {
          return Effect.fail(new WrongType({ key, operation: "increment", expected: "a finite number" }))
        }
        const next: Entry = seen === undefined
          ? { value: sum, expiresAt: created.expiresAt, tags: created.tags, version: 0 }
          : { ...seen.entry, value: sum }
        return Effect.succeed([next, sum] as const)
      }))
  }
}
