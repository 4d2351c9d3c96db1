/**
 * `increment` on the Partitioned topology: a compare-and-set loop on the key's owner, since the
 * owner keeps values as the text the cache's codec made and only a cache can add to them. The
 * increments of one key on this node are combined: while one round is on the wire, the others wait,
 * then go as one write of their sum, each answered the sum up to its own, as if applied one after
 * another at that write. A compare-and-set that fails answers what the key holds, the base of the
 * next round, so a round costs one request, and rounds conflict only with other nodes'.
 */
import type { Backend, CacheError } from "@vela/core"
import { WrongType } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type { Partition } from "./partition.js"

/**
 * `compareAndSet`, also answering what the key holds after it: the write it made, or what the owner
 * showed instead (`undefined`: no live entry).
 */
export type CompareAndSet = (
  key: string,
  expected: Backend.Snapshot | undefined,
  next: Backend.Entry | undefined
) => Effect.Effect<{ readonly landed: boolean; readonly holds: Backend.Snapshot | undefined }, CacheError>

interface Waiter {
  readonly by: number
  readonly created: Backend.Created
  readonly resume: (exit: Exit.Exit<number, CacheError>) => void
}

export const make = (
  p: Partition,
  compareAndSet: CompareAndSet,
  readForUpdate: (key: string) => Effect.Effect<Option.Option<Backend.Snapshot>, CacheError>
): Backend.Store["increment"] => {
  /** The increments of each key waiting for the round on the wire; a key is here while one is. */
  const waiting = new Map<string, Array<Waiter>>()

  const wrongType = (key: string) => new WrongType({ key, operation: "increment", expected: "a finite number" })

  /** Lands the increments of `group` as one write over `seen` (`null`: not read yet); what the key holds after. */
  const round = (
    key: string,
    group: ReadonlyArray<Waiter>,
    seen: Backend.Snapshot | undefined | null
  ): Effect.Effect<Backend.Snapshot | undefined | null, CacheError> =>
    Effect.flatMap(
      seen === null ? Effect.map(readForUpdate(key), Option.getOrUndefined) : Effect.succeed(seen),
      (current) => {
        const base = current === undefined ? 0 : current.entry.value
        // Each waiter's sum, or `undefined` for one that would not leave a finite number.
        const sums: Array<number | undefined> = []
        let sum = typeof base === "number" ? base : NaN
        let first: Waiter | undefined
        for (const waiter of group) {
          const next = sum + waiter.by
          if (Number.isFinite(next)) {
            sum = next
            first ??= waiter
            sums.push(next)
          } else {
            sums.push(undefined)
          }
        }
        const answer = () =>
          group.forEach((waiter, i) => {
            const result = sums[i]
            waiter.resume(result === undefined ? Exit.fail(wrongType(key)) : Exit.succeed(result))
          })
        if (first === undefined) {
          answer()
          return Effect.succeed(current)
        }
        const entry: Backend.Entry = current === undefined
          ? { value: sum, expiresAt: first.created.expiresAt, tags: first.created.tags, version: 0 }
          : { ...current.entry, value: sum }
        return Effect.flatMap(compareAndSet(key, current, entry), ({ holds, landed }) => {
          if (!landed) return round(key, group, holds)
          answer()
          return Effect.succeed(holds)
        })
      }
    )

  /** Runs rounds until no increment of `key` waits. */
  const drain = (key: string, seen: Backend.Snapshot | undefined | null): Effect.Effect<void> =>
    Effect.suspend(() => {
      const queue = waiting.get(key)!
      if (queue.length === 0) {
        waiting.delete(key)
        return Effect.void
      }
      const group = queue.splice(0)
      return Effect.matchEffect(round(key, group, seen), {
        onFailure: (error) => {
          group.forEach((waiter) => waiter.resume(Exit.fail(error)))
          return drain(key, null)
        },
        onSuccess: (holds) => drain(key, holds)
      })
    })

  return (key, by, created) =>
    Effect.async<number, CacheError>((resume) => {
      const waiter: Waiter = { by, created, resume }
      const queue = waiting.get(key)
      if (queue !== undefined) return void queue.push(waiter)
      waiting.set(key, [waiter])
      p.runFork(drain(key, null))
    })
}
