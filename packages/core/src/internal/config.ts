/** Validation of cache config and call options: every nonsensical value becomes a `ConfigError`. */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import type { EvictionPolicy } from "../Backend.js"
import { ConfigError, InvalidKey } from "../Errors.js"

/** Longest key accepted, in UTF-16 code units. */
export const maxKeyLength = 8_192

export const policies: ReadonlyArray<EvictionPolicy> = ["ttl-only", "lru", "lfu", "tinylfu"]

/** Longest duration a Node timer honours (about 24.8 days): a longer one fires after 1 ms. */
export const maxTimerMillis = 2 ** 31 - 1

/**
 * Longest finite TTL (2^53 - 1 ms, about 285,000 years): no backend can store an expiry past it
 * exactly, so a longer TTL means no expiry, on every backend.
 */
export const maxTtlMillis = Number.MAX_SAFE_INTEGER

/**
 * Whether `text` is well-formed UTF-16 (no lone surrogate): `String.prototype.isWellFormed`, which
 * Node 20 has and the ES2022 library this project compiles against does not declare.
 */
export const isWellFormed = (text: string): boolean => (text as unknown as { isWellFormed(): boolean }).isWellFormed()

/** `undefined` when `key` is valid, otherwise why not. */
export const checkKey = (key: unknown): InvalidKey | undefined => {
  if (typeof key !== "string") return new InvalidKey({ key, reason: `expected a string, got ${typeof key}` })
  if (key.length === 0) return new InvalidKey({ key, reason: "the key is empty" })
  if (key.length > maxKeyLength) {
    return new InvalidKey({ key, reason: `the key has ${key.length} characters, more than ${maxKeyLength}` })
  }
  // Redis and the cluster wire carry keys as UTF-8, where every lone surrogate becomes U+FFFD.
  if (!isWellFormed(key)) {
    return new InvalidKey({ key, reason: "the key has a lone surrogate (not well-formed UTF-16)" })
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

/** A TTL: a positive duration or `"infinity"`; one longer than `maxTtlMillis` is no expiry. */
export const ttl = (field: string, input: unknown): Either.Either<number, ConfigError> =>
  Either.map(millis(field, input, true), (ms) => ms > maxTtlMillis ? Infinity : ms)

/**
 * A duration that drives a timer: 1 ms to `maxTimerMillis`, never clamped (`"infinity"` where
 * `allowInfinity`, 0 where `allowZero`: no timer at all).
 */
export const timer = (
  field: string,
  input: unknown,
  allowInfinity: boolean,
  allowZero = false
): Either.Either<number, ConfigError> =>
  Either.flatMap(
    millis(field, input, allowInfinity, allowZero),
    (ms) =>
      ms === 0 || ms === Infinity || (ms >= 1 && ms <= maxTimerMillis)
        ? Either.right(ms)
        : Either.left(
          new ConfigError({
            field,
            reason: `a timer runs from 1 ms to ${maxTimerMillis} ms (about 24.8 days), got ${JSON.stringify(input)}`
          })
        )
  )

/**
 * The options object of a call: `undefined` or a plain object whose keys are all in `known`; an
 * unknown key (a typo in plain JavaScript) is named in the error.
 */
export const options = (
  field: string,
  input: unknown,
  known: ReadonlyArray<string>
): ConfigError | undefined => {
  if (input === undefined) return undefined
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return new ConfigError({ field, reason: `expected an object or undefined, got ${kindOf(input)}` })
  }
  for (const key in input) {
    if (!known.includes(key)) {
      return new ConfigError({ field: key, reason: `unknown option; expected one of ${known.join(", ")}` })
    }
  }
  return undefined
}

const kindOf = (input: unknown): string => input === null ? "null" : Array.isArray(input) ? "an array" : typeof input

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

/** Tags: an array of non-empty, well-formed strings (as keys are). */
export const tags = (input: unknown): Either.Either<ReadonlyArray<string>, ConfigError> =>
  Array.isArray(input) && input.every((tag) => typeof tag === "string" && tag.length > 0 && isWellFormed(tag))
    ? Either.right(input)
    : Either.left(
      new ConfigError({ field: "tags", reason: "expected an array of non-empty strings without lone surrogates" })
    )
