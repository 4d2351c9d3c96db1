/** The options of `Redis.layer` and `Redis.layerCluster`, checked and resolved once, with their defaults. */
import { Backend, ConfigError } from "@vela/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { ClusterOptions, CommonOptions, RedisOptions } from "../Redis.js"

export interface Settings {
  readonly prefix: string
  readonly commandTimeout: number
  readonly connectTimeout: number
  readonly bus: boolean
  readonly expiryGrace: number
  readonly singleFlight: boolean
}

const commonFields: ReadonlyArray<keyof CommonOptions> = [
  "prefix",
  "commandTimeout",
  "connectTimeout",
  "bus",
  "expiryGrace",
  "singleFlight"
]
export const serverFields: ReadonlyArray<keyof RedisOptions> = [...commonFields, "url", "client"]
export const clusterFields: ReadonlyArray<keyof ClusterOptions> = [...commonFields, "nodes", "buckets"]

/** The common settings, once `options` is known to hold only `known` keys. */
export const resolve = (options: CommonOptions, known: ReadonlyArray<string>): Effect.Effect<Settings, ConfigError> =>
  Effect.gen(function*() {
    const malformed = Backend.checkOptions("options", options, known)
    if (malformed !== undefined) return yield* malformed
    const prefix = options.prefix ?? "vela:"
    if (typeof prefix !== "string") {
      return yield* new ConfigError({ field: "prefix", reason: "expected a string" })
    }
    return {
      prefix,
      commandTimeout: yield* millis("commandTimeout", options.commandTimeout, 1_000, false),
      connectTimeout: yield* millis("connectTimeout", options.connectTimeout, 1_000, false),
      bus: options.bus ?? true,
      expiryGrace: yield* millis("expiryGrace", options.expiryGrace, 0, true),
      singleFlight: options.singleFlight ?? true
    }
  })

const millis = (
  field: string,
  input: Duration.DurationInput | undefined,
  fallback: number,
  allowZero: boolean
): Effect.Effect<number, ConfigError> => {
  if (input === undefined) return Effect.succeed(fallback)
  const decoded = Duration.decodeUnknown(input)
  const ms = decoded._tag === "Some" ? Duration.toMillis(decoded.value) : NaN
  return Number.isFinite(ms) && (ms > 0 || (allowZero && ms === 0))
    ? Effect.succeed(Math.ceil(ms))
    : Effect.fail(
      new ConfigError({ field, reason: `expected a finite positive duration, got ${JSON.stringify(input)}` })
    )
}
