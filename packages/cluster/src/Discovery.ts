/**
 * Where a `ClusterNode` looks for peers beyond its configured `seeds`: a fixed list, or the A/AAAA
 * records of a hostname re-resolved periodically (a Kubernetes headless service gives one record
 * per ready pod). The node asks for the current seeds on every heartbeat; gossip does the rest.
 */
import { ConfigError } from "@vela/core"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Dns from "node:dns"
import * as Check from "./internal/options.js"

/**
 * Where a node finds seeds beyond those of its options; asked on every heartbeat.
 *
 * @since 0.1.0
 * @category tags
 */
export class Discovery extends Context.Tag("@vela/cluster/Discovery")<Discovery, {
  /** The seed addresses (`"host:port"`) known now; never fails, may be empty. */
  readonly seeds: Effect.Effect<ReadonlyArray<string>>
}>() {}

/**
 * A fixed list of `"host:port"` seeds.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStatic = (seeds: ReadonlyArray<string>): Layer.Layer<Discovery, ConfigError> =>
  Layer.effect(
    Discovery,
    Effect.gen(function*() {
      for (const seed of seeds) {
        if (Check.parseAddress(seed) === undefined) {
          return yield* new ConfigError({ field: "seeds", reason: `${JSON.stringify(seed)} is not "host:port"` })
        }
      }
      const fixed = Array.from(seeds)
      return Discovery.of({ seeds: Effect.succeed(fixed) })
    })
  )

/**
 * Options of `layerDns`.
 *
 * @since 0.1.0
 * @category models
 */
export interface DnsOptions {
  /** Resolved with the system resolver (`/etc/hosts`, then DNS), every address family. */
  readonly hostname: string
  /** The cluster port every address listens on. */
  readonly port: number
  /** Default `"5 seconds"`. */
  readonly interval?: Duration.DurationInput | undefined
}

/**
 * The addresses `hostname` resolves to, re-resolved every `interval`; a failed lookup keeps the
 * last answer (and is logged), so a resolver hiccup never empties the seeds.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerDns = (options: DnsOptions): Layer.Layer<Discovery, ConfigError> =>
  Layer.scoped(
    Discovery,
    Effect.gen(function*() {
      const interval = yield* Check.millis("interval", options.interval ?? "5 seconds")
      if (typeof options.hostname !== "string" || options.hostname.length === 0) {
        return yield* new ConfigError({ field: "hostname", reason: "expected a hostname" })
      }
      if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
        return yield* new ConfigError({ field: "port", reason: "expected an integer from 1 to 65535" })
      }
      let current: ReadonlyArray<string> = []
      const resolve = Effect.tryPromise(() => Dns.promises.lookup(options.hostname, { all: true })).pipe(
        Effect.map((addresses) =>
          addresses.map(({ address, family }) =>
            family === 6 ? `[${address}]:${options.port}` : `${address}:${options.port}`
          )
        ),
        Effect.tap((seeds) => {
          current = seeds
        }),
        Effect.catchAll((error) => Effect.logWarning(`vela discovery: cannot resolve ${options.hostname}`, error))
      )
      yield* resolve
      yield* resolve.pipe(Effect.schedule(Schedule.spaced(interval)), Effect.interruptible, Effect.forkScoped)
      return Discovery.of({ seeds: Effect.sync(() => current) })
    })
  )
