/**
 * The typed failures of a cache. Every error is a `Data.TaggedError`, so it is also an `Error`
 * with a readable `message`: the Promise facade throws these same instances.
 */
import * as Data from "effect/Data"

/**
 * `get` of a key that is missing or expired.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends Data.TaggedError("NotFound")<{ readonly key: string }> {
  override get message() {
    return `No live entry for key ${JSON.stringify(this.key)}`
  }
}

/**
 * A waiter of `getOrFetch` waited longer than `stampedeTimeout` (in milliseconds).
 *
 * @since 0.1.0
 * @category errors
 */
export class FetchTimeout extends Data.TaggedError("FetchTimeout")<{ readonly key: string; readonly timeout: number }> {
  override get message() {
    return `Fetch of key ${JSON.stringify(this.key)} did not finish within ${this.timeout} ms`
  }
}

/**
 * The store failed: Redis down, disk full, SQLite busy.
 *
 * @since 0.1.0
 * @category errors
 */
export class BackendError extends Data.TaggedError("BackendError")<{
  readonly backend: string
  readonly operation: string
  readonly cause: unknown
}> {
  override get message() {
    return `${this.backend} backend failed during ${this.operation}: ${describe(this.cause)}`
  }
}

/**
 * A value could not be encoded, or stored data no longer decodes.
 *
 * @since 0.1.0
 * @category errors
 */
export class CodecError extends Data.TaggedError("CodecError")<{
  readonly key: string
  readonly direction: "encode" | "decode"
  readonly cause: unknown
}> {
  override get message() {
    return `Could not ${this.direction} the value of key ${JSON.stringify(this.key)}: ${describe(this.cause)}`
  }
}

/**
 * A key that is not a non-empty string, or is too long for the backend.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidKey extends Data.TaggedError("InvalidKey")<{ readonly key: unknown; readonly reason: string }> {
  override get message() {
    return `Invalid key: ${this.reason}`
  }
}

/**
 * A cluster peer that owns the key cannot be reached.
 *
 * @since 0.1.0
 * @category errors
 */
export class NodeUnavailable extends Data.TaggedError("NodeUnavailable")<{
  readonly node: string
  readonly cause: unknown
}> {
  override get message() {
    return `Cluster node ${this.node} is unavailable: ${describe(this.cause)}`
  }
}

/**
 * A layer was given a config it cannot run with, or a call an option that makes no sense.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigError extends Data.TaggedError("ConfigError")<{ readonly field: string; readonly reason: string }> {
  override get message() {
    return `Invalid ${this.field}: ${this.reason}`
  }
}

/**
 * A call after the cache was closed.
 *
 * @since 0.1.0
 * @category errors
 */
export class CacheClosed extends Data.TaggedError("CacheClosed")<{ readonly cache: string }> {
  override get message() {
    return `Cache ${JSON.stringify(this.cache)} is closed`
  }
}

/**
 * An operation the store or topology cannot perform exactly, with why (`Replicated` has no single
 * place where a key's writes are ordered, so it cannot `take` or `increment` without losing one).
 * Never a silent approximation.
 *
 * @since 0.2.0
 * @category errors
 */
export class Unsupported extends Data.TaggedError("Unsupported")<{
  readonly operation: string
  readonly store: string
  readonly reason: string
}> {
  override get message() {
    return `${this.store} does not support ${this.operation}: ${this.reason}`
  }
}

/**
 * An operation found a value of the wrong kind under its key: `increment` of a key holding a
 * non-number, or a sum that is no longer a finite number.
 *
 * @since 0.2.0
 * @category errors
 */
export class WrongType extends Data.TaggedError("WrongType")<{
  readonly key: string
  readonly operation: string
  readonly expected: string
}> {
  override get message() {
    return `${this.operation} of key ${JSON.stringify(this.key)} needs ${this.expected}`
  }
}

/**
 * Every failure of a cache operation but `NotFound` and `FetchTimeout`.
 *
 * @since 0.1.0
 * @category errors
 */
export type CacheError =
  | BackendError
  | CodecError
  | InvalidKey
  | NodeUnavailable
  | ConfigError
  | CacheClosed
  | Unsupported
  | WrongType

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : String(cause)
