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
import { Backend, BackendError, ConfigError } from "@vela/core"
import type { Scope } from "effect"
import { Duration, Effect, Layer } from "effect"
import type { ClusterNode, RedisOptions as IORedisOptions } from "ioredis"
import { Cluster, Redis } from "ioredis"
import { Subscriber } from "./internal/bus.js"
import * as Scripts from "./internal/scripts.js"
import type { Connection } from "./internal/store.js"
import * as Store from "./internal/store.js"

/** Options shared by `layer` and `layerCluster`. */
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

export interface ClusterOptions extends CommonOptions {
  /** Some nodes of the cluster (`"127.0.0.1:7000"` or `{ host, port }`); the rest are discovered. */
  readonly nodes: ReadonlyArray<string | { readonly host: string; readonly port: number }>
  /**
   * Slots one cache is spread over (1 to 256). Each key, with its tags and lease, lives in one of
   * them; `invalidateTag` runs one script per bucket. Default 16.
   */
  readonly buckets?: number | undefined
}

/** A backend on one Redis server. Fails with `BackendError` when it cannot connect within `connectTimeout`. */
export const make = (
  options: RedisOptions = {}
): Effect.Effect<Backend.Backend["Type"], BackendError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* resolve(options, serverFields)
    const own = options.client === undefined
    const url = options.url ?? "redis://127.0.0.1:6379"
    if (typeof url !== "string") {
      return yield* new ConfigError({ field: "url", reason: "expected a string such as redis://127.0.0.1:6379" })
    }
    const client = options.client ?? (yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const redis = new Redis(url, { ...clientOptions(settings), lazyConnect: true })
          redis.on("error", () => {})
          return unrefSocket(redis)
        },
        catch: (cause) =>
          new ConfigError({
            field: "url",
            reason: `${JSON.stringify(url)} is not a Redis URL (redis://host:port): ${String(cause)}`
          })
      }),
      (redis) => Effect.sync(() => redis.disconnect())
    ))
    // Scripts are loaded on every (re)connection, so a restarted server rarely answers NOSCRIPT.
    const load = () => {
      for (const script of Scripts.all) client.script("LOAD", script.lua).catch(() => {})
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => client.on("ready", load)),
      () => Effect.sync(() => client.off("ready", load))
    )
    if (own) yield* connect("redis", () => client.connect())
    else if (client.status === "ready") load()
    const subscriber = settings.bus
      ? yield* startSubscriber([() => unrefSocket(client.duplicate(subscriberOptions(settings)))])
      : undefined
    const connection: Connection = {
      name: "redis",
      client,
      masters: () => [client],
      subscriber,
      prefix: settings.prefix,
      buckets: 1,
      expiryGrace: settings.expiryGrace,
      singleFlight: settings.singleFlight
    }
    return Backend.Backend.of({ name: "redis", open: (open) => Store.open(connection, open) })
  })

/** A backend on a Redis Cluster. */
export const makeCluster = (
  options: ClusterOptions
): Effect.Effect<Backend.Backend["Type"], BackendError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* resolve(options, clusterFields)
    const buckets = options.buckets ?? 16
    if (!Number.isInteger(buckets) || buckets < 1 || buckets > 256) {
      return yield* new ConfigError({ field: "buckets", reason: `expected an integer from 1 to 256, got ${buckets}` })
    }
    if (!Array.isArray(options.nodes) || options.nodes.length === 0) {
      return yield* new ConfigError({ field: "nodes", reason: "expected at least one node" })
    }
    const nodes = options.nodes.map(parseNode)
    const cluster = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const { retryStrategy: _, ...redisOptions } = clientOptions(settings)
        const created = new Cluster(nodes as Array<ClusterNode>, {
          enableAutoPipelining: true,
          enableOfflineQueue: false,
          lazyConnect: true,
          clusterRetryStrategy: retryStrategy,
          redisOptions
        })
        created.on("error", () => {})
        created.on("+node", unrefSocket)
        return created
      }),
      (created) => Effect.sync(() => created.disconnect())
    )
    yield* connect("redis-cluster", () => cluster.connect())
    // ioredis opens node connections on their first command; open them now, with the scripts loaded,
    // so the first operations of a cache do not pay for a connection and a NOSCRIPT round trip.
    yield* connect("redis-cluster", () =>
      Promise.all(
        cluster.nodes("master").map((node) =>
          Promise.all(Scripts.all.map((script) => node.script("LOAD", script.lua) as Promise<unknown>))
        )
      ).then(() => undefined))
    const subscriber = settings.bus
      ? yield* startSubscriber(
        nodes.map((node) => () => unrefSocket(new Redis({ ...node, ...subscriberOptions(settings) })))
      )
      : undefined
    const connection: Connection = {
      name: "redis-cluster",
      client: cluster,
      masters: () => cluster.nodes("master"),
      subscriber,
      prefix: settings.prefix,
      buckets,
      expiryGrace: settings.expiryGrace,
      singleFlight: settings.singleFlight
    }
    return Backend.Backend.of({ name: "redis-cluster", open: (open) => Store.open(connection, open) })
  })

/** `make` as a layer: the connections close with it. */
export const layer = (options: RedisOptions = {}): Layer.Layer<Backend.Backend, BackendError | ConfigError> =>
  Layer.scoped(Backend.Backend, make(options))

/** `makeCluster` as a layer. */
export const layerCluster = (options: ClusterOptions): Layer.Layer<Backend.Backend, BackendError | ConfigError> =>
  Layer.scoped(Backend.Backend, makeCluster(options))

// internal

interface Settings {
  readonly prefix: string
  readonly commandTimeout: number
  readonly connectTimeout: number
  readonly bus: boolean
  readonly expiryGrace: number
  readonly singleFlight: boolean
}

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

const commonFields: ReadonlyArray<keyof CommonOptions> = [
  "prefix",
  "commandTimeout",
  "connectTimeout",
  "bus",
  "expiryGrace",
  "singleFlight"
]
const serverFields: ReadonlyArray<keyof RedisOptions> = [...commonFields, "url", "client"]
const clusterFields: ReadonlyArray<keyof ClusterOptions> = [...commonFields, "nodes", "buckets"]

/** The common settings, once `options` is known to hold only `known` keys. */
const resolve = (options: CommonOptions, known: ReadonlyArray<string>): Effect.Effect<Settings, ConfigError> =>
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

/**
 * The connections this backend opens do not keep Node alive, so a program that forgets to close its
 * caches still exits; a command in flight does, through its `commandTimeout` timer.
 */
const unrefSocket = (redis: Redis): Redis => redis.on("connect", () => redis.stream.unref())

const retryStrategy = (times: number) => Math.min(times * 50, 1_000)

/** Fail fast while disconnected, never replay a command the caller already saw fail. */
const clientOptions = (settings: Settings): IORedisOptions => ({
  enableAutoPipelining: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  commandTimeout: settings.commandTimeout,
  connectTimeout: settings.connectTimeout,
  retryStrategy
})

/** The bus connection reconnects through `Subscriber`, which resubscribes before reporting `Connected`. */
const subscriberOptions = (settings: Settings): IORedisOptions => ({
  lazyConnect: true,
  retryStrategy: null,
  enableOfflineQueue: false,
  enableAutoPipelining: false,
  autoResubscribe: false,
  maxRetriesPerRequest: 0,
  commandTimeout: settings.commandTimeout,
  connectTimeout: settings.connectTimeout
})

const connect = (backend: string, run: () => Promise<void>) =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => new BackendError({ backend, operation: "connect", cause })
  })

const startSubscriber = (connect: ReadonlyArray<() => Redis>) =>
  Effect.tap(
    Effect.acquireRelease(
      Effect.sync(() => new Subscriber(connect)),
      (subscriber) => Effect.sync(() => subscriber.close())
    ),
    // Not connected yet is no failure: stores then start with `Disconnected` and the bus catches up.
    (subscriber) => Effect.promise(() => subscriber.start())
  )

const parseNode = (node: string | { readonly host: string; readonly port: number }) => {
  if (typeof node !== "string") return { host: node.host, port: node.port }
  const colon = node.lastIndexOf(":")
  return colon < 0 ? { host: node, port: 6379 } : { host: node.slice(0, colon), port: Number(node.slice(colon + 1)) }
}
