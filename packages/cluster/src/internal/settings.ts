/** A node's options, checked once and with their defaults filled in. */
import { ConfigError } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { ClusterNodeOptions } from "../ClusterNode.js"
import * as Check from "./options.js"

export const notWildcard = "expected the address peers reach this node at, not a wildcard such as 0.0.0.0 or ::"

export interface Settings {
  readonly heartbeatInterval: number
  readonly failureTimeout: number
  readonly requestTimeout: number
  readonly connectTimeout: number
  readonly idleTimeout: number
  readonly maxFrameBytes: number
  readonly maxConnections: number
  /** The secret in the clear, never sent. */
  readonly secret: string
  readonly seeds: ReadonlyArray<string>
}

/** `options` with defaults, or a `ConfigError` naming the first option that is wrong. */
export const resolve = (options: ClusterNodeOptions): Effect.Effect<Settings, ConfigError> =>
  Effect.gen(function*() {
    const heartbeatInterval = yield* Check.millis("heartbeatInterval", options.heartbeatInterval ?? "500 millis")
    const failureTimeout = yield* Check.millis("failureTimeout", options.failureTimeout ?? "3 seconds")
    const requestTimeout = yield* Check.millis("requestTimeout", options.requestTimeout ?? "5 seconds")
    const connectTimeout = yield* Check.millis("connectTimeout", options.connectTimeout ?? "2 seconds")
    const idleTimeout = yield* Check.millis("idleTimeout", options.idleTimeout ?? "1 minute")
    const maxFrameBytes = options.maxFrameBytes ?? 16 * 1024 * 1024
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1024) {
      return yield* new ConfigError({ field: "maxFrameBytes", reason: "expected an integer of at least 1024" })
    }
    const maxConnections = options.maxConnections ?? 512
    if (!Number.isInteger(maxConnections) || maxConnections < 4) {
      return yield* new ConfigError({ field: "maxConnections", reason: "expected an integer of at least 4" })
    }
    if (typeof options.host !== "string" || options.host.length === 0 || Check.isWildcard(options.host)) {
      return yield* new ConfigError({ field: "host", reason: notWildcard })
    }
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
      return yield* new ConfigError({ field: "port", reason: "expected an integer from 0 to 65535" })
    }
    if (options.advertise !== undefined) {
      const advertised = Check.parseAddress(options.advertise)
      if (advertised === undefined || Check.isWildcard(advertised.host)) {
        return yield* new ConfigError({
          field: "advertise",
          reason: `${JSON.stringify(options.advertise)} is not the "host:port" peers reach this node at`
        })
      }
    }
    const secret = Redacted.isRedacted(options.secret) ? Redacted.value(options.secret) : options.secret
    if (typeof secret !== "string" || secret.length === 0) {
      return yield* new ConfigError({ field: "secret", reason: "expected a non-empty string" })
    }
    const seeds: Array<string> = []
    for (const seed of options.seeds ?? []) {
      if (Check.parseAddress(seed) === undefined) {
        return yield* new ConfigError({ field: "seeds", reason: `${JSON.stringify(seed)} is not "host:port"` })
      }
      seeds.push(seed)
    }
    return {
      heartbeatInterval,
      failureTimeout,
      requestTimeout,
      connectTimeout,
      idleTimeout,
      maxFrameBytes,
      maxConnections,
      secret,
      seeds
    }
  })
