/**
 * A cache's config overridden from Effect `Config` (`VELA_DEFAULT_TTL`, …), for `Vela.layerConfig`:
 * apart from `config.ts`, so that caches built without it do not load `effect/Config`.
 */
import * as EffectConfig from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { ConfigError } from "../../Errors.js"
import type { Config } from "./config.js"

const environment = {
  name: "NAME",
  defaultTtl: "DEFAULT_TTL",
  maxSize: "MAX_SIZE",
  evictionPolicy: "EVICTION_POLICY",
  stampedeProtection: "STAMPEDE_PROTECTION",
  stampedeTimeout: "STAMPEDE_TIMEOUT",
  statsEnabled: "STATS_ENABLED",
  telemetryPrefix: "TELEMETRY_PREFIX",
  sweepInterval: "SWEEP_INTERVAL",
  grace: "GRACE",
  softTimeout: "SOFT_TIMEOUT",
  hardTimeout: "HARD_TIMEOUT",
  refreshBackoff: "REFRESH_BACKOFF"
} as const

/** Reads the overrides as strings, then turns them into the values a config in code would hold. */
export const fromEnvironment = <V, I>(config: Config<V, I>): Effect.Effect<Config<V, I>, ConfigError> =>
  Effect.reduce(
    Object.entries(environment) as Array<[keyof typeof environment, string]>,
    config,
    (merged, [field, variable]) =>
      EffectConfig.option(EffectConfig.string(variable)).pipe(
        EffectConfig.nested("VELA"),
        Effect.mapError((error) => new ConfigError({ field, reason: String(error) })),
        Effect.flatMap(Option.match({
          onNone: () => Effect.succeed(merged),
          onSome: (text) => Effect.map(parseOverride(field, text.trim()), (value) => ({ ...merged, [field]: value }))
        }))
      )
  )

const parseOverride = (field: keyof typeof environment, text: string): Effect.Effect<unknown, ConfigError> => {
  switch (field) {
    case "stampedeProtection":
    case "statsEnabled":
      return text === "true" || text === "false"
        ? Effect.succeed(text === "true")
        : Effect.fail(new ConfigError({ field, reason: `expected true or false, got ${JSON.stringify(text)}` }))
    case "telemetryPrefix":
      return Effect.succeed(text.split(",").map((part) => part.trim()))
    case "maxSize":
      return Effect.succeed(/^\d+$/.test(text) ? Number(text) : text)
    case "defaultTtl":
    case "stampedeTimeout":
    case "sweepInterval":
    case "grace":
    case "softTimeout":
    case "hardTimeout":
    case "refreshBackoff":
      // A bare number is milliseconds, as in code; anything else goes to the duration parser.
      return Effect.succeed(/^\d+(\.\d+)?$/.test(text) ? Number(text) : text)
    default:
      return Effect.succeed(text)
  }
}
