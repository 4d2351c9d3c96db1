/**
 * Connecting: the command client (a server's or a cluster's), the scripts loaded on it, and the bus
 * subscriber, all closed with the scope. Commands fail fast while disconnected and are never
 * replayed after the caller saw them fail; the connections this backend opens do not keep Node alive.
 */
import { BackendError, ConfigError } from "@vela/core"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { ClusterNode, RedisOptions as IORedisOptions } from "ioredis"
import { Cluster, Redis } from "ioredis"
import type { ClusterOptions, RedisOptions } from "../Redis.js"
import { Subscriber } from "./bus.js"
import * as Scripts from "./scripts.js"
import type { Settings } from "./settings.js"

/** What a store needs of its backend. */
export interface Connection {
  readonly name: string
  readonly client: Redis | Cluster
  /** The nodes `SCAN` must visit: the server, or every cluster master. */
  readonly masters: () => ReadonlyArray<Redis>
  /** `undefined` when the bus is off. */
  readonly subscriber: Subscriber | undefined
  readonly prefix: string
  readonly buckets: number
  /** How much longer than its TTL Redis keeps an entry (reads still end it at `expiresAt`). */
  readonly expiryGrace: number
  /** Whether the store offers `singleFlight`. */
  readonly singleFlight: boolean
}

/** One server, from `options.url` or the caller's own `options.client` (used as it is, left open). */
export const server = (
  options: RedisOptions,
  settings: Settings
): Effect.Effect<Connection, BackendError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
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
      ? yield* startSubscriber([() => unrefSocket(client.duplicate(subscriberOptions(settings)))], true)
      : undefined
    return {
      name: "redis",
      client,
      masters: () => [client],
      subscriber,
      prefix: settings.prefix,
      buckets: 1,
      expiryGrace: settings.expiryGrace,
      singleFlight: settings.singleFlight
    }
  })

/** A Redis Cluster, discovered from `options.nodes`, each master's connection opened with the scripts loaded. */
export const cluster = (
  options: ClusterOptions,
  settings: Settings
): Effect.Effect<Connection, BackendError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const buckets = options.buckets ?? 16
    if (!Number.isInteger(buckets) || buckets < 1 || buckets > 256) {
      return yield* new ConfigError({ field: "buckets", reason: `expected an integer from 1 to 256, got ${buckets}` })
    }
    if (!Array.isArray(options.nodes) || options.nodes.length === 0) {
      return yield* new ConfigError({ field: "nodes", reason: "expected at least one node" })
    }
    const nodes = options.nodes.map(parseNode)
    const client = yield* Effect.acquireRelease(
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
    yield* connect("redis-cluster", () => client.connect())
    // ioredis opens node connections on their first command; open them now, with the scripts loaded,
    // so the first operations of a cache do not pay for a connection and a NOSCRIPT round trip.
    yield* connect("redis-cluster", () =>
      Promise.all(
        client.nodes("master").map((node) =>
          Promise.all(Scripts.all.map((script) => node.script("LOAD", script.lua) as Promise<unknown>))
        )
      ).then(() => undefined))
    const subscriber = settings.bus
      ? yield* startSubscriber(
        nodes.map((node) => () => unrefSocket(new Redis({ ...node, ...subscriberOptions(settings) }))),
        false
      )
      : undefined
    return {
      name: "redis-cluster",
      client,
      masters: () => client.nodes("master"),
      subscriber,
      prefix: settings.prefix,
      buckets,
      expiryGrace: settings.expiryGrace,
      singleFlight: settings.singleFlight
    }
  })

// internal

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

/** `singleServer`: whether a script may count subscribers (see `Subscriber.self`); not on a cluster, whose pub/sub spans nodes. */
const startSubscriber = (connect: ReadonlyArray<() => Redis>, singleServer: boolean) =>
  Effect.tap(
    Effect.acquireRelease(
      Effect.sync(() => new Subscriber(connect, singleServer)),
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
