/** Option parsing shared by the cluster layers: durations and `host:port` addresses. */
import { ConfigError } from "@vela/core"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Net from "node:net"

/** A positive duration in milliseconds, or a `ConfigError` naming `field`. */
export const millis = (field: string, input: Duration.DurationInput): Either.Either<number, ConfigError> => {
  const decoded = Duration.decodeUnknown(input)
  if (decoded._tag === "None") return Either.left(new ConfigError({ field, reason: "expected a duration" }))
  const ms = Duration.toMillis(decoded.value)
  return ms > 0 && Number.isFinite(ms)
    ? Either.right(ms)
    : Either.left(new ConfigError({ field, reason: "expected a positive, finite duration" }))
}

/** A non-negative integer, or a `ConfigError` naming `field`. */
export const count = (field: string, input: unknown): Either.Either<number, ConfigError> =>
  typeof input === "number" && Number.isInteger(input) && input >= 0
    ? Either.right(input)
    : Either.left(new ConfigError({ field, reason: "expected a non-negative integer" }))

/** `"host:port"` (IPv6 hosts in brackets) split, or `undefined` when it is not one. */
export const parseAddress = (address: string): { readonly host: string; readonly port: number } | undefined => {
  if (typeof address !== "string") return undefined
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address)
  if (match === null) return undefined
  const port = Number(match[3])
  if (port < 1 || port > 65535) return undefined
  return { host: match[1] ?? match[2], port }
}

/**
 * Whether `host` names every interface of the machine, in any spelling the system accepts
 * (`0.0.0.0`, `0`, `0x0`, `0.0.0.0.`, `::`, `[::]`, `::0`, `0:0:0:0:0:0:0:0`, `::ffff:0.0.0.0`, …):
 * it is read as a URL host, which writes IPv4 and IPv6 addresses the one canonical way.
 */
export const isWildcard = (host: string): boolean => {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host
  try {
    const canonical = new URL(`http://${Net.isIPv6(bare) ? `[${bare}]` : bare}/`).hostname
    return canonical === "0.0.0.0" || canonical === "[::]" || canonical === "[::ffff:0:0]"
  } catch {
    return false
  }
}
