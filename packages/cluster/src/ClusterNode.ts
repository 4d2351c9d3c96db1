/**
 * One cluster node per process: an `@effect/rpc` server on a TCP port, a pool of authenticated
 * connections to the other nodes, and the membership every cluster topology builds on.
 *
 * Auth: a connection proves the shared secret (an HMAC challenge–response; the secret never crosses
 * the wire) before anything else is accepted, so a node with a wrong secret can neither read,
 * write, flush nor join. Membership: a node gossips its live view with every peer it knows and
 * with its seeds every `heartbeatInterval`, so one live seed is enough to learn everyone; a peer is
 * a member while this node has heard from it directly within `failureTimeout`, and a node leaving
 * gracefully tells every peer.
 *
 * Bad input: frames are bounded (`maxFrameBytes`); bytes that are not MessagePack, or decode to
 * something that is not a request, get an error reply or a closed connection, and only that
 * connection is affected. Before a connection has authenticated, the listener bounds its time
 * (`connectTimeout`) and bytes (a few KB), and strangers never hold more than a quarter of
 * `maxConnections`. Internals run on the live clock, so a `TestClock` in the caller's context never
 * stalls heartbeats or network timeouts.
 *
 * Where the work lives (`internal/`): `settings` (options), `server` (the port: RPCs and data
 * lanes), `auth` (the handshake), `membership`, `heartbeats` (gossip and leave), `connections`
 * (the pool of peers and their lanes), `sharedStats`.
 */
import type { BackendError, ConfigError, Stats } from "@vela/core"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as SubscriptionRef from "effect/SubscriptionRef"
import { Discovery } from "./Discovery.js"
import { secretOf } from "./internal/auth.js"
import * as Connections from "./internal/connections.js"
import { serialization } from "./internal/frames.js"
import * as Heartbeats from "./internal/heartbeats.js"
import { live } from "./internal/live.js"
import * as Membership from "./internal/membership.js"
import type { Service } from "./internal/server.js"
import * as Server from "./internal/server.js"
import * as Settings from "./internal/settings.js"
import * as SharedStats from "./internal/sharedStats.js"
import type * as Tls from "./internal/tls.js"

/**
 * Options of a node: where it listens, whom it seeds from, its secret and its bounds.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClusterNodeOptions {
  /** The address to bind to and that peers use to reach this node (never a wildcard). */
  readonly host: string
  /** The TCP port; 0 picks a free one (read it back from `id`). */
  readonly port: number
  /**
   * `"host:port"` peers reach this node at, when that is not `host` and `port` (behind a proxy or a
   * port forward); it is also the node's `id`. Default: `host` and the bound port.
   */
  readonly advertise?: string | undefined
  /**
   * `"host:port"` of other nodes; one live seed is enough to find the whole cluster. A `Discovery`
   * in context adds its seeds to these.
   */
  readonly seeds?: ReadonlyArray<string> | undefined
  /** Shared by every node of the cluster; never sent over the wire. */
  readonly secret: string | Redacted.Redacted<string>
  /** Default `"500 millis"`. */
  readonly heartbeatInterval?: Duration.DurationInput | undefined
  /** A peer not heard from for this long is no longer a member. Default `"3 seconds"`. */
  readonly failureTimeout?: Duration.DurationInput | undefined
  /** Bound of one request to a peer. Default `"5 seconds"`. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** Bound of opening and authenticating a connection. Default `"2 seconds"`. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Largest frame accepted from a peer; a larger one closes its connection. Default 16 MiB. */
  readonly maxFrameBytes?: number | undefined
  /**
   * Bound of the connections open to this node; at most a quarter of them may be strangers (not
   * yet authenticated), and a new connection takes the place of the oldest stranger. Default 512.
   */
  readonly maxConnections?: number | undefined
  /** An authenticated connection with no traffic for this long is closed. Default `"1 minute"`. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /**
   * Mutual TLS between nodes: every node presents a certificate signed by `ca` that names its
   * host. The secret handshake still runs inside. Default: plain TCP.
   */
  readonly tls?: Tls.TlsOptions | undefined
}

/**
 * The cluster node of this process: its identity, membership, connections to peers, and what it serves.
 *
 * @since 0.1.0
 * @category tags
 */
export class ClusterNode extends Context.Tag("@vela/cluster/ClusterNode")<ClusterNode, {
  /** `"host:port"`: how peers name and reach this node. */
  readonly id: string
  /** When this process started; a restart at the same address has a larger one. */
  readonly incarnation: number
  /** Whether this node was given seeds (or a `Discovery`): it expects to find peers. */
  readonly seeded: boolean
  /** The largest frame a peer accepts: topologies refuse an entry that cannot fit in one. */
  readonly maxFrameBytes: number
  /** Live members, this node included, sorted by id. */
  readonly members: SubscriptionRef.SubscriptionRef<ReadonlyArray<string>>
  /** The value of `members` right now, synchronously; the same array until membership changes. */
  readonly currentMembers: () => ReadonlyArray<string>
  /**
   * Runs `f` with an authenticated connection to `peer`, bounded by `requestTimeout`. A broken
   * connection is dropped and reopened once; a peer that cannot be reached is `NodeUnavailable`.
   */
  readonly call: Connections.Connections["call"]
  /**
   * Sends a batch of key operations to `peer` on the data lane (a connection of its own, opened
   * and authenticated on first use); `done` is called once, with the results in order or a
   * `NodeUnavailable`. Plain callbacks: this is the hot path of every topology.
   */
  readonly batch: Connections.Connections["batch"]
  /**
   * Shares `counters` (a cache's own, in this process) with the other members under the cache's
   * namespace `ns` while the scope is open, and returns what reads the counters of `ns` on every
   * live member, added up. A member that does not answer within `requestTimeout` is left out.
   */
  readonly shareStats: (
    ns: string,
    counters: (() => Stats.Stats) | undefined
  ) => Effect.Effect<Effect.Effect<Stats.Stats>, never, Scope.Scope>
  /** Serves cache operations to peers while the scope is open; one service per node. */
  readonly serve: (service: Service) => Effect.Effect<void, never, Scope.Scope>
}>() {}

/**
 * Starts a node; it leaves the cluster gracefully and stops serving when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: ClusterNodeOptions): Effect.Effect<
  ClusterNode["Type"],
  ConfigError | BackendError,
  Scope.Scope
> => Effect.withClock(makeNode(options), live)

/**
 * A cluster node for the whole process:
 *
 * ```ts
 * ClusterNode.layer({ host: "10.0.0.5", port: 4370, seeds: ["10.0.0.4:4370"], secret: Redacted.make(cookie) })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ClusterNodeOptions): Layer.Layer<ClusterNode, ConfigError | BackendError> =>
  Layer.scoped(ClusterNode, make(options))

// internal

const makeNode = (options: ClusterNodeOptions) =>
  Effect.gen(function*() {
    const settings = yield* Settings.resolve(options)
    const discovery = yield* Effect.serviceOption(Discovery)
    const wire = serialization(settings.maxFrameBytes)
    const secret = secretOf(settings.secret)
    const listening = yield* Server.listen({
      host: options.host,
      port: options.port,
      tls: options.tls,
      connectTimeout: settings.connectTimeout,
      idleTimeout: settings.idleTimeout,
      maxConnections: settings.maxConnections
    })
    const id = options.advertise ?? `${options.host}:${listening.port}`
    const incarnation = live.unsafeCurrentTimeMillis() * 1000 + Math.floor(Math.random() * 1000)
    const membership = yield* Membership.make({ id, incarnation }, settings.failureTimeout, settings.heartbeatInterval)
    const stats = SharedStats.make()
    // Finalizers run in reverse: gossip stops and the leave is announced, then the pool, the server
    // and the port close.
    const serve = yield* Server.start(listening, {
      membership,
      secret,
      serialization: wire,
      maxFrameBytes: settings.maxFrameBytes,
      statsHere: stats.here
    })
    const connections = yield* Connections.make({
      ...settings,
      self: membership.self,
      secret,
      serialization: wire,
      tls: options.tls
    })
    yield* Heartbeats.start(membership, connections, { ...settings, discovery })
    const peers = () => membership.current().filter((member) => member !== id)

    return ClusterNode.of({
      id,
      incarnation,
      seeded: settings.seeds.some((seed) => seed !== id) || discovery._tag === "Some",
      maxFrameBytes: settings.maxFrameBytes,
      members: membership.members,
      currentMembers: membership.current,
      call: connections.call,
      batch: connections.batch,
      shareStats: (ns, counters) =>
        Effect.as(
          counters === undefined ? Effect.void : stats.share(ns, counters),
          SharedStats.everywhere(stats, ns, peers, connections.call)
        ),
      serve
    })
  })
