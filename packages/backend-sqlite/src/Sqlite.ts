/**
 * A disk backend on SQLite (better-sqlite3): entries, tags and TTLs live in one database file that
 * survives restarts and crashes and that several processes may share. Writes that arrive in the
 * same tick share one transaction; an acknowledged write is on disk.
 */
import { Backend, BackendError, ConfigError } from "@vela/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Database from "./internal/database.js"
import { makeStore } from "./internal/sqliteStore.js"
import { Touches } from "./internal/touches.js"
import { Writer } from "./internal/writer.js"

/**
 * Options of `make` and `layer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SqliteOptions {
  /** Path of the database file (created when missing), or `":memory:"` for a private in-memory database. */
  readonly filename: string
  /**
   * How long a write waits for another process holding the file's write lock before it fails with
   * `BackendError` (default `"5 seconds"`). Writes wait on a timer, so the event loop keeps running;
   * only opening the file and a cache's namespace wait synchronously.
   */
  readonly busyTimeout?: Duration.DurationInput | undefined
  /**
   * `"full"` (default): a commit is on the disk before the write is acknowledged, so it survives a
   * power loss. `"normal"`: it survives the process being killed, and may be lost with the machine.
   */
  readonly synchronous?: "full" | "normal" | undefined
  /** Expired rows deleted per sweeper transaction (default 1,000). */
  readonly sweepBatchSize?: number | undefined
  /** Most writes per transaction when many arrive at once (default 10,000). */
  readonly maxBatchSize?: number | undefined
  /** Called after each committed write transaction with how many writes it carried. */
  readonly onCommit?: ((writes: number) => void) | undefined
}

/**
 * Opens (or creates) the database file. The file is closed when the scope closes, after the
 * writes still queued were committed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: SqliteOptions
): Effect.Effect<Backend.Backend["Type"], BackendError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* resolve(options)
    const { filename } = settings
    const fail = (operation: string, cause: unknown) => Database.failure(filename, operation, cause)
    const { db, statements, touches, writer } = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const { db, statements } = Database.open(settings)
          const touches = new Touches()
          const writer = new Writer(db, {
            maxBatch: settings.maxBatchSize,
            busyTimeout: settings.busyTimeout,
            beforeBatch: () => touches.apply(statements),
            hasPending: () => touches.count > 0,
            fail,
            onCommit: options.onCommit
          })
          return { db, statements, touches, writer }
        },
        catch: (cause) => cause instanceof BackendError ? cause : fail("open", cause)
      }),
      ({ db, writer }) =>
        Effect.suspend(() => {
          writer.drain()
          try {
            db.close()
            return Effect.void
          } catch (cause) {
            return Effect.annotateLogs(Effect.logWarning("closing the database failed", fail("close", cause)), {
              file: filename,
              operation: "close"
            })
          }
        })
    )
    const shared = { statements, writer, touches, sweepBatchSize: settings.sweepBatchSize, fail }
    // Synchronous, so a cache on this backend is ready as soon as its layer is built.
    const register = db.transaction((open: Backend.OpenOptions) => {
      statements.registerNamespace.run(open.namespace, open.namespace)
      return makeStore(shared, open)
    }).immediate
    return Backend.Backend.of({
      name: "sqlite",
      open: (open) =>
        Effect.suspend((): Effect.Effect<Backend.Store, BackendError | ConfigError> => {
          if (!(open.maxSize === Infinity || (Number.isInteger(open.maxSize) && open.maxSize > 0))) {
            return Effect.fail(new ConfigError({ field: "maxSize", reason: `expected a positive integer or Infinity` }))
          }
          if (!policies.includes(open.evictionPolicy)) {
            return Effect.fail(
              new ConfigError({ field: "evictionPolicy", reason: `the sqlite backend does not support it` })
            )
          }
          try {
            return Effect.succeed(Database.waitingLong(db, settings.busyTimeout, () => register(open)))
          } catch (cause) {
            return Effect.fail(fail("open", cause))
          }
        })
    })
  })

/**
 * A `Backend` on one SQLite file; see `make`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: SqliteOptions): Layer.Layer<Backend.Backend, BackendError | ConfigError> =>
  Layer.scoped(Backend.Backend, make(options))

// internal

const policies: ReadonlyArray<string> = ["ttl-only", "lru", "lfu"]

interface Resolved extends Database.OpenSettings {
  readonly sweepBatchSize: number
  readonly maxBatchSize: number
}

const fields: ReadonlyArray<keyof SqliteOptions> = [
  "filename",
  "busyTimeout",
  "synchronous",
  "sweepBatchSize",
  "maxBatchSize",
  "onCommit"
]

const resolve = (options: SqliteOptions): Effect.Effect<Resolved, ConfigError> =>
  Effect.gen(function*() {
    const malformed = Backend.checkOptions("options", options, fields)
    if (malformed !== undefined) return yield* malformed
    if (typeof options?.filename !== "string" || options.filename.trim().length === 0) {
      return yield* new ConfigError({ field: "filename", reason: `expected a path or ":memory:"` })
    }
    const busy = Duration.decodeUnknown(options.busyTimeout ?? "5 seconds")
    const busyTimeout = busy._tag === "Some" ? Duration.toMillis(busy.value) : NaN
    if (!(busyTimeout >= 0 && busyTimeout <= 0x7fffffff)) {
      return yield* new ConfigError({ field: "busyTimeout", reason: "expected a finite duration" })
    }
    const synchronous = options.synchronous ?? "full"
    if (synchronous !== "full" && synchronous !== "normal") {
      return yield* new ConfigError({ field: "synchronous", reason: `expected "full" or "normal"` })
    }
    const sweepBatchSize = yield* count("sweepBatchSize", options.sweepBatchSize ?? 1_000)
    const maxBatchSize = yield* count("maxBatchSize", options.maxBatchSize ?? 10_000)
    return {
      filename: options.filename,
      busyTimeout: Math.round(busyTimeout),
      synchronous,
      sweepBatchSize,
      maxBatchSize
    }
  })

const count = (field: string, value: number): Effect.Effect<number, ConfigError> =>
  Number.isInteger(value) && value > 0
    ? Effect.succeed(value)
    : Effect.fail(new ConfigError({ field, reason: `expected a positive integer, got ${String(value)}` }))
