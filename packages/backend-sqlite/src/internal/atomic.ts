/**
 * The atomic operations: each reads the row and writes inside one write transaction of the
 * database's `Writer` (`BEGIN IMMEDIATE`, so it holds the file's write lock), which makes it exact
 * against every other write, of this process or of another one sharing the file. Writes go through
 * `Writes.writeRow`, so eviction, tags and sequence numbers are kept as by a put.
 *
 * A snapshot's token is the row as stored (value text, `expires_at`, `version`, `tags`):
 * `compareAndSet` writes only while the row still holds exactly those. Nothing inside a transaction
 * throws for a caller's mistake (a wrong type, a value that does not decode): it returns it, so the
 * other writes of the batch still commit.
 */
import type { Backend, BackendError, CodecError } from "@vela/core"
import { WrongType } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { Row } from "./database.js"
import type { Namespace } from "./namespace.js"
import { isLive } from "./namespace.js"
import { tagsOf, toEntry } from "./reads.js"
import type { Counts, Writes } from "./writes.js"

export type Atomic = Pick<
  Backend.StorePrimitives,
  "readForUpdate" | "compareAndSet" | "take" | "touch" | "increment"
>

const none: Counts = { expired: 0, evicted: 0 }
const oneExpired: Counts = { expired: 1, evicted: 0 }

const sameRow = (a: Row, b: Row) =>
  a.value === b.value && a.expires_at === b.expires_at && a.version === b.version && a.tags === b.tags

export const make = (ns: Namespace, writes: Writes): Atomic => {
  const { codec, fail, namespace, now, statements: s, writer } = ns
  const { report, writeRow } = writes

  const readForUpdate = (key: string): Effect.Effect<Option.Option<Backend.Snapshot>, BackendError | CodecError> =>
    Effect.suspend((): Effect.Effect<Option.Option<Backend.Snapshot>, BackendError | CodecError> => {
      let row: Row | undefined
      try {
        row = s.get.get(namespace, key)
      } catch (cause) {
        return Effect.fail(fail("readForUpdate", cause))
      }
      if (row === undefined || !isLive(row.expires_at, now())) return Effect.succeed(Option.none())
      const entry = toEntry(codec, key, row)
      // A fresh object of exactly the columns a write changes: the token is the row itself.
      return Either.isLeft(entry)
        ? Effect.fail(entry.left)
        : Effect.succeed(Option.some({ entry: entry.right, token: row }))
    })

  const compareAndSet = (
    key: string,
    expected: Backend.Snapshot | undefined,
    next: Backend.Entry | undefined
  ): Effect.Effect<boolean, BackendError | CodecError> =>
    Effect.suspend((): Effect.Effect<boolean, BackendError | CodecError> => {
      let text = ""
      if (next !== undefined) {
        const encoded = codec.encode(key, next.value)
        if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
        text = encoded.right
      }
      return Effect.map(
        writer.submit("compareAndSet", (): Counts | undefined => {
          const row = s.locate.get(namespace, key)
          const live = row !== undefined && isLive(row.expires_at, now())
          if (expected === undefined ? live : !live || !sameRow(row, expected.token as Row)) return undefined
          if (next !== undefined) return writeRow(key, text, next)
          if (row === undefined) return none
          s.delete.run(row.id)
          return live ? none : oneExpired
        }),
        (counts) => {
          if (counts === undefined) return false
          report(counts)
          return true
        }
      )
    })

  /** Decodes before it deletes: a row that does not decode stays, and `take` fails with its `CodecError`. */
  const take = (key: string): Effect.Effect<Option.Option<Backend.Entry>, BackendError | CodecError> =>
    Effect.flatMap(
      writer.submit("take", (): Either.Either<Backend.Entry, CodecError> | "expired" | undefined => {
        const row = s.locate.get(namespace, key)
        if (row === undefined) return undefined
        if (!isLive(row.expires_at, now())) {
          s.delete.run(row.id)
          return "expired"
        }
        const entry = toEntry(codec, key, row)
        if (Either.isRight(entry)) s.delete.run(row.id)
        return entry
      }),
      (taken) => {
        if (taken === undefined) return Effect.succeed(Option.none())
        if (taken === "expired") {
          report(oneExpired)
          return Effect.succeed(Option.none())
        }
        return Either.isLeft(taken) ? Effect.fail(taken.left) : Effect.succeed(Option.some(taken.right))
      }
    )

  const touch = (key: string, expiresAt: number | null): Effect.Effect<boolean, BackendError> =>
    writer.submit("touch", () => {
      const found = s.find.get(namespace, key)
      if (found === undefined || !isLive(found.expires_at, now())) return false
      s.retime.run(expiresAt, ns.nextWrite(), found.id)
      return true
    })

  const increment = (
    key: string,
    by: number,
    created: Backend.Created
  ): Effect.Effect<number, BackendError | CodecError | WrongType> =>
    Effect.suspend(() => {
      const wrongType = () => new WrongType({ key, operation: "increment", expected: "a finite number" })
      return Effect.flatMap(
        writer.submit("increment", (): Either.Either<readonly [number, Counts], CodecError | WrongType> => {
          const row = s.locate.get(namespace, key)
          let current = 0
          let kept: Omit<Backend.Entry, "value"> = { expiresAt: created.expiresAt, tags: created.tags, version: 0 }
          if (row !== undefined && isLive(row.expires_at, now())) {
            const decoded = codec.decode(key, row.value)
            if (Either.isLeft(decoded)) return Either.left(decoded.left)
            if (typeof decoded.right !== "number") return Either.left(wrongType())
            current = decoded.right
            kept = { expiresAt: row.expires_at, tags: tagsOf(row.tags), version: row.version }
          }
          const sum = current + by
          if (!Number.isFinite(sum)) return Either.left(wrongType())
          const encoded = codec.encode(key, sum)
          if (Either.isLeft(encoded)) return Either.left(encoded.left)
          return Either.right([sum, writeRow(key, encoded.right, { ...kept, value: sum })] as const)
        }),
        Either.match({
          onLeft: Effect.fail,
          onRight: ([sum, counts]) => {
            report(counts)
            return Effect.succeed(sum)
          }
        })
      )
    })

  return { readForUpdate, compareAndSet, take, touch, increment }
}
