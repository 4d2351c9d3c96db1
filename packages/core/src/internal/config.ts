/** Validation of cache config and call options: every nonsensical value becomes a `ConfigError`. */
import { Duration, Either } from "effect"
import type { EvictionPolicy } from "../Backend.js"
import { ConfigError, InvalidKey } from "../Errors.js"

/** Longest key accepted, in UTF-16 code units. */
export const maxKeyLength = 8_192

export const policies: ReadonlyArray<EvictionPolicy> = ["ttl-only", "lru", "lfu", "tinylfu"]

/** `undefined` when `key` is valid, otherwise why not. */
export const checkKey = (key: unknown): InvalidKey | undefined => {
  if (typeof key !== "string") return new InvalidKey({ key, reason: `expected a string, got ${typeof key}` })
  if (key.length === 0) return new InvalidKey({ key, reason: "the key is empty" })
  if (key.length > maxKeyLength) {
    return new InvalidKey({ key, reason: `the key has ${key.length} characters, more than ${maxKeyLength}` })
  }
  return undefined
}

/**
 * A positive duration in milliseconds (zero too where `allowZero`); `"infinity"` (and an infinite
 * duration) only where `allowInfinity`.
 */
export const millis = (
  field: string,
  input: unknown,
  allowInfinity: boolean,
  allowZero = false
): Either.Either<number, ConfigError> => {
  if (input === "infinity") {
    return allowInfinity ? Either.right(Infinity) : Either.left(new ConfigError({ field, reason: "must be finite" }))
  }
  if (typeof input === "number" && Number.isNaN(input)) {
    return Either.left(new ConfigError({ field, reason: "NaN is not a duration" }))
  }
  // `Duration` clamps a negative input to zero; a negative duration is a mistake to report.
  if ((typeof input === "number" && input < 0) || (typeof input === "string" && input.trim().startsWith("-"))) {
    return Either.left(new ConfigError({ field, reason: `must not be negative, got ${JSON.stringify(input)}` }))
  }
  const duration = Duration.decodeUnknown(input)
  if (duration._tag === "None") {
    return Either.left(
      new ConfigError({ field, reason: `${JSON.stringify(input)} is not a duration (try 30000 or "30 seconds")` })
    )
  }
  const ms = Duration.toMillis(duration.value)
  if (allowZero && ms === 0) return Either.right(0)
  if (!(ms > 0)) {
    return Either.left(new ConfigError({ field, reason: `must be positive, got ${JSON.stringify(input)}` }))
  }
  if (ms === Infinity && !allowInfinity) return Either.left(new ConfigError({ field, reason: "must be finite" }))
  return Either.right(ms)
}

/** A size bound: a positive integer or `"infinity"`. */
export const size = (field: string, input: unknown): Either.Either<number, ConfigError> => {
  if (input === "infinity" || input === Infinity) return Either.right(Infinity)
  if (typeof input === "number" && Number.isInteger(input) && input > 0) return Either.right(input)
  return Either.left(
    new ConfigError({ field, reason: `expected a positive integer or "infinity", got ${JSON.stringify(input)}` })
  )
}

export const policy = (input: unknown): Either.Either<EvictionPolicy, ConfigError> =>
  policies.includes(input as EvictionPolicy)
    ? Either.right(input as EvictionPolicy)
    : Either.left(
      new ConfigError({
        field: "evictionPolicy",
        reason: `expected one of ${policies.map((p) => JSON.stringify(p)).join(", ")}, got ${JSON.stringify(input)}`
      })
    )

export const boolean = (field: string, input: unknown): Either.Either<boolean, ConfigError> =>
  typeof input === "boolean"
    ? Either.right(input)
    : Either.left(new ConfigError({ field, reason: `expected true or false, got ${JSON.stringify(input)}` }))

/** Tags: an array of non-empty strings. */
export const tags = (input: unknown): Either.Either<ReadonlyArray<string>, ConfigError> =>
  Array.isArray(input) && input.every((tag) => typeof tag === "string" && tag.length > 0)
    ? Either.right(input)
    : Either.left(new ConfigError({ field: "tags", reason: "expected an array of non-empty strings" }))
