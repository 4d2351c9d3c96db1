/**
 * A cache's config and call options: their shapes, their defaults, their checks (the first
 * nonsensical field is a `ConfigError` naming it).
 */
import type * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import type * as Schema from "effect/Schema"
import type { EvictionPolicy } from "../../Backend.js"
import * as Codec from "../../Codec.js"
import { ConfigError } from "../../Errors.js"
import * as Check from "../config.js"
import { SEPARATOR } from "./namespace.js"

export interface Config<V = unknown, I = unknown> {
  /** Namespace on the backend; default: the Tag's key. */
  readonly name?: string | undefined
  /** TTL of a `put` without `ttl`; a number is milliseconds. Default `"infinity"`. */
  readonly defaultTtl?: Duration.DurationInput | "infinity" | undefined
  /** Default `"infinity"`. */
  readonly maxSize?: number | "infinity" | undefined
  /** Default `"ttl-only"`. */
  readonly evictionPolicy?: EvictionPolicy | undefined
  /** Default `true`. */
  readonly stampedeProtection?: boolean | undefined
  /** How long a `getOrFetch` caller waits for a fetch. Default `"5 seconds"`. */
  readonly stampedeTimeout?: Duration.DurationInput | undefined
  /** Default `true`. */
  readonly statsEnabled?: boolean | undefined
  /** Default `["vela", "cache"]`. */
  readonly telemetryPrefix?: ReadonlyArray<string> | undefined
  /** Default `"30 seconds"`. */
  readonly sweepInterval?: Duration.DurationInput | undefined
  /** Encodes and validates values where they leave the process. */
  readonly value?: Schema.Schema<V, I> | undefined
  /** Default `grace` of `getOrFetch` (default 0: no stale values). */
  readonly grace?: Duration.DurationInput | undefined
  /** Default `softTimeout` of `getOrFetch` (default 0). */
  readonly softTimeout?: Duration.DurationInput | undefined
  /** Default `hardTimeout` of `getOrFetch` (default `"infinity"`). */
  readonly hardTimeout?: Duration.DurationInput | "infinity" | undefined
  /** After a refresh of a stale entry fails, how long its stale value is served before the next try (default `"5 seconds"`). */
  readonly refreshBackoff?: Duration.DurationInput | undefined
}

export interface PutOptions {
  /** Default: the cache's `defaultTtl`. */
  readonly ttl?: Duration.DurationInput | "infinity" | undefined
  readonly tags?: ReadonlyArray<string> | undefined
}

export interface FetchOptions<V> {
  /**
   * TTL of the fetched value (default: the cache's `defaultTtl`); a function of the value decides
   * per value (`(user) => user.isAdmin ? "1 minute" : "1 hour"`).
   */
  readonly ttl?: Duration.DurationInput | "infinity" | ((value: V) => Duration.DurationInput | "infinity") | undefined
  /** Tags of the fetched value, or a function of the value that gives them. */
  readonly tags?: ReadonlyArray<string> | ((value: V) => ReadonlyArray<string>) | undefined
  /**
   * How long past its TTL the fetched entry is kept, to be served stale while a refresh runs
   * (stale-while-revalidate). Plain reads (`get`, `getOption`, `getMany`) treat it as expired.
   */
  readonly grace?: Duration.DurationInput | undefined
  /** How long a caller holding a stale value waits for the refresh before it takes the stale value (0: never). */
  readonly softTimeout?: Duration.DurationInput | undefined
  /** A fetch running longer than this is interrupted and fails with `FetchTimeout`. */
  readonly hardTimeout?: Duration.DurationInput | "infinity" | undefined
  /**
   * Whether to cache a fetched value: `false` keeps it out (errors, empty results), `true` caches it
   * with `ttl`, a duration caches it for that long instead (negative caching with its own TTL).
   */
  readonly cacheIf?: ((value: V) => boolean | Duration.DurationInput) | undefined
}

/** A config with its defaults applied and its durations in milliseconds. */
export interface ResolvedConfig {
  readonly name: string
  readonly defaultTtl: number
  readonly maxSize: number
  readonly evictionPolicy: EvictionPolicy
  readonly stampedeProtection: boolean
  readonly stampedeTimeout: number
  readonly statsEnabled: boolean
  readonly telemetryPrefix: ReadonlyArray<string>
  readonly sweepInterval: number
  readonly codec: Codec.Codec<any>
  readonly grace: number
  readonly softTimeout: number
  readonly hardTimeout: number
  readonly refreshBackoff: number
}

/** Applies defaults and checks every field; the first nonsensical one is a `ConfigError`. */
export const resolve = <V, I>(
  config: Config<V, I> & { readonly name: string }
): Either.Either<ResolvedConfig, ConfigError> =>
  Either.gen(function*() {
    const unknown = Check.options("config", config, configFields)
    if (unknown !== undefined) return yield* Either.left(unknown)
    if (typeof config.name !== "string" || config.name.length === 0) {
      return yield* Either.left(new ConfigError({ field: "name", reason: "expected a non-empty string" }))
    }
    if (config.name.includes(SEPARATOR)) {
      return yield* Either.left(
        new ConfigError({ field: "name", reason: "a name may not hold U+001F (it separates namespaces)" })
      )
    }
    const prefix = config.telemetryPrefix ?? ["vela", "cache"]
    if (
      !Array.isArray(prefix) || prefix.length === 0 ||
      !prefix.every((part) => typeof part === "string" && part.length > 0)
    ) {
      return yield* Either.left(new ConfigError({ field: "telemetryPrefix", reason: "expected non-empty strings" }))
    }
    if (config.value !== undefined && !isSchema(config.value)) {
      return yield* Either.left(new ConfigError({ field: "value", reason: "expected a Schema" }))
    }
    return {
      name: config.name,
      defaultTtl: yield* Check.ttl("defaultTtl", config.defaultTtl ?? "infinity"),
      maxSize: yield* Check.size("maxSize", config.maxSize ?? "infinity"),
      evictionPolicy: yield* Check.policy(config.evictionPolicy ?? "ttl-only"),
      stampedeProtection: yield* Check.boolean("stampedeProtection", config.stampedeProtection ?? true),
      stampedeTimeout: yield* Check.timer("stampedeTimeout", config.stampedeTimeout ?? "5 seconds", false),
      statsEnabled: yield* Check.boolean("statsEnabled", config.statsEnabled ?? true),
      telemetryPrefix: prefix,
      sweepInterval: yield* Check.timer("sweepInterval", config.sweepInterval ?? "30 seconds", false),
      codec: config.value === undefined ? Codec.json : Codec.fromSchema(config.value),
      grace: yield* Check.millis("grace", config.grace ?? 0, false, true),
      softTimeout: yield* Check.timer("softTimeout", config.softTimeout ?? 0, false, true),
      hardTimeout: yield* Check.timer("hardTimeout", config.hardTimeout ?? "infinity", true),
      refreshBackoff: yield* Check.millis("refreshBackoff", config.refreshBackoff ?? "5 seconds", false, true)
    }
  })

/** The fields of `Config`, `PutOptions` and `FetchOptions`: any other key is a typo. */
const configFields: ReadonlyArray<keyof Config> = [
  "name",
  "defaultTtl",
  "maxSize",
  "evictionPolicy",
  "stampedeProtection",
  "stampedeTimeout",
  "statsEnabled",
  "telemetryPrefix",
  "sweepInterval",
  "value",
  "grace",
  "softTimeout",
  "hardTimeout",
  "refreshBackoff"
]
export const putFields: ReadonlyArray<keyof PutOptions> = ["ttl", "tags"]
const fetchFields: ReadonlyArray<keyof FetchOptions<unknown>> = [
  ...putFields,
  "grace",
  "softTimeout",
  "hardTimeout",
  "cacheIf"
]

/** What a `put` writes besides the value: its TTL in milliseconds and its tags. */
export interface EntryOptions {
  readonly ttl: number
  readonly tags: ReadonlyArray<string>
}

/** What a `getOrFetch` does on a miss or a stale read, from its options and the config's defaults. */
export interface FetchPlan<V> extends EntryOptions {
  /** The ttl and tags of a fetched value, when options gave them as functions of it (else `ttl` and `tags`). */
  readonly ttlOf: ((value: V) => unknown) | undefined
  readonly tagsOf: ((value: V) => unknown) | undefined
  readonly grace: number
  readonly softTimeout: number
  readonly hardTimeout: number
  readonly cacheIf: ((value: V) => boolean | Duration.DurationInput) | undefined
}

/**
 * The checks of call options against a resolved config: `entry` for the ttl and tags of options
 * already known to be an object of known fields (or `undefined`), `plan` for `getOrFetch`'s options.
 */
export const makeOptions = (resolved: ResolvedConfig) => {
  const defaults = Either.right<EntryOptions>({ ttl: resolved.defaultTtl, tags: [] })
  const entry = (options: PutOptions | undefined): Either.Either<EntryOptions, ConfigError> => {
    if (options === undefined || (options.ttl === undefined && options.tags === undefined)) return defaults
    const ttl = options.ttl === undefined ? Either.right(resolved.defaultTtl) : Check.ttl("ttl", options.ttl)
    if (Either.isLeft(ttl)) return Either.left(ttl.left)
    const tags = options.tags === undefined ? Either.right([]) : Check.tags(options.tags)
    if (Either.isLeft(tags)) return Either.left(tags.left)
    return Either.right({ ttl: ttl.right, tags: tags.right })
  }
  const fetchDefaults = {
    grace: resolved.grace,
    softTimeout: resolved.softTimeout,
    hardTimeout: resolved.hardTimeout,
    cacheIf: undefined,
    ttlOf: undefined,
    tagsOf: undefined
  }
  const plan = <V>(options: FetchOptions<V> | undefined): Either.Either<FetchPlan<V>, ConfigError> => {
    const malformed = Check.options("options", options, fetchFields)
    if (malformed !== undefined) return Either.left(malformed)
    const ttlOf = typeof options?.ttl === "function" ? options.ttl : undefined
    const tagsOf = typeof options?.tags === "function" ? options.tags : undefined
    const parsed = entry(
      ttlOf === undefined && tagsOf === undefined ? options as PutOptions | undefined : {
        ttl: ttlOf === undefined ? options?.ttl as PutOptions["ttl"] : undefined,
        tags: tagsOf === undefined ? options?.tags as PutOptions["tags"] : undefined
      }
    )
    if (Either.isLeft(parsed)) return Either.left(parsed.left)
    if (options === undefined) return Either.right({ ...parsed.right, ...fetchDefaults })
    const grace = options.grace === undefined
      ? Either.right(resolved.grace)
      : Check.millis("grace", options.grace, false, true)
    if (Either.isLeft(grace)) return Either.left(grace.left)
    const softTimeout = options.softTimeout === undefined
      ? Either.right(resolved.softTimeout)
      : Check.timer("softTimeout", options.softTimeout, false, true)
    if (Either.isLeft(softTimeout)) return Either.left(softTimeout.left)
    const hardTimeout = options.hardTimeout === undefined
      ? Either.right(resolved.hardTimeout)
      : Check.timer("hardTimeout", options.hardTimeout, true)
    if (Either.isLeft(hardTimeout)) return Either.left(hardTimeout.left)
    if (options.cacheIf !== undefined && typeof options.cacheIf !== "function") {
      return Either.left(new ConfigError({ field: "cacheIf", reason: "expected a function" }))
    }
    return Either.right({
      ...parsed.right,
      grace: grace.right,
      softTimeout: softTimeout.right,
      hardTimeout: hardTimeout.right,
      cacheIf: options.cacheIf,
      ttlOf,
      tagsOf
    })
  }
  return { entry, plan }
}

/**
 * `Schema.isSchema`, without loading `effect/Schema` (about 100 KB) into every cache: a Schema
 * carries an object under the symbol `effect/Schema`.
 */
const isSchema = (u: unknown): boolean => {
  const variance = typeof u === "function" || (typeof u === "object" && u !== null)
    ? (u as Record<symbol, unknown>)[SchemaTypeId]
    : undefined
  return (typeof variance === "object" && variance !== null) || typeof variance === "function"
}

const SchemaTypeId = Symbol.for("effect/Schema")
