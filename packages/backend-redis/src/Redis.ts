/**
 * The Redis backend, on ioredis 5: `layer` for one server, `layerCluster` for a Redis Cluster.
 * Every process that uses the same server and prefix shares the entries, and hears the others'
 * changes on the invalidation bus, so a `NearCache` in front stays coherent across processes.
 *
 * ```ts
 * const UsersLive = Vela.layer(Users, { defaultTtl: "5 minutes" }).pipe(
 *   Layer.provide(NearCache.layer({ ttl: "30 seconds" })),
 *   Layer.provide(Local.layer),
 *   Layer.provide(Redis.layer({ url: "redis://127.0.0.1:6379", prefix: "myapp:" }))
 * )
 * ```
 */
import type { BackendError, ConfigError } from "@vela/core"
import { Backend } from "@vela/core"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Redis } from "ioredis"
import * as Connection from "./internal/connection.js"
import * as Settings from "./internal/settings.js"
import * as Store from "./internal/store.js"

/**
 * Options shared by `layer` and `layerCluster`.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommonOptions {
  /** Put before every key and channel name, so several applications can share a server. Default `"vela:"`. */
  readonly prefix?: string | undefined
  /** How long one command may take before it fails with `BackendError`. Default `"1 second"`. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** How long connecting may take, at start and on every reconnection. Default `"1 second"`. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Publish every change on the invalidation bus and listen to the others'. Default `true`. */
  readonly bus?: boolean | undefined
  /**
   * How much longer than its TTL Redis keeps an entry; reads still end it at its `expiresAt` by the
   * cache's clock. Default `0`. Raise it when clocks that drive caches run apart from Redis's (a
   * `TestClock`, skewed hosts): Redis then never drops an entry that the cache still counts as live.
   */
  readonly expiryGrace?: Duration.DurationInput | undefined
  /**
   * Offer the cache a single flight across processes: on a `getOrFetch` miss, one process takes a
   * short lease on the key (`SET NX PX`) and fetches; the others wait for its value. Default `true`;
   * `false` saves that round trip on every miss where a stampede across processes does no harm.
   */
  readonly singleFlight?: boolean | undefined
}

/**
 * Options of `make` and `layer`: one Redis server.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisOptions extends CommonOptions {
  /** Default `"redis://127.0.0.1:6379"`; ignored when `client` is given. */
  readonly url?: string | undefined
  /**
   * A connection of yours, used as it is and left open when the layer closes. For prompt failures
   * during an outage give it `enableOfflineQueue: false`, `maxRetriesPerRequest: 0` and a
   * `commandTimeout`; `enableAutoPipelining: true` for throughput.
   */
  readonly client?: Redis | undefined
}

/**
 * Options of `makeCluster` and `layerCluster`: a Redis Cluster.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClusterOptions extends CommonOptions {
  /** Some nodes of the cluster (`"127.0.0.1:7000"` or `{ host, port }`); the rest are discovered. */
  readonly nodes: ReadonlyArray<string | { readonly host: string; readonly port: number }>
  /**
   * Slots one cache is spread over (1 to 256). Each key, with its tags and lease, lives in one of
   * them; `invalidateTag` runs one script per bucket. Default 16.
   */
  readonly buckets?: number | undefined
}

/**
 * A backend on one Redis server. Fails with `BackendError` when it cannot connect within `connectTimeout`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: RedisOptions = {}
): Effect.Effect<Backend.Backend["Type"], BackendError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* Settings.resolve(options, Settings.serverFields)
    const connection = yield* Connection.server(options, settings)
    return Backend.Backend.of({ name: connection.name, open: (open) => Store.open(connection, open) })
  })

/**
 * A backend on a Redis Cluster.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCluster = (
  options: ClusterOptions
): Effect.Effect<Backend.Backend["Type"], BackendError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* Settings.resolve(options, Settings.clusterFields)
    const connection = yield* Connection.cluster(options, settings)
    return Backend.Backend.of({ name: connection.name, open: (open) => Store.open(connection, open) })
  })

/**
 * `make` as a layer: the connections close with it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RedisOptions = {}): Layer.Layer<Backend.Backend, BackendError | ConfigError> =>
  Layer.scoped(Backend.Backend, make(options))

/**
 * `makeCluster` as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCluster = (options: ClusterOptions): Layer.Layer<Backend.Backend, BackendError | ConfigError> =>
  Layer.scoped(Backend.Backend, makeCluster(options))
