/**
 * One cluster node per process: an `@effect/rpc` server on a TCP port, a pool of authenticated
 * connections to the other nodes, and the membership every cluster topology builds on.
 *
 * Auth: a connection proves the shared secret before anything else is accepted. The client sends a
 * nonce (`Hello`); the server answers with its own nonce and an HMAC-SHA256 over both nonces and
 * its id, which the client checks; the client then sends an HMAC over the nonces and its own id
 * (`Authenticate`). The secret never crosses the wire and a proof is good for one connection only.
 * Every other request on a connection that has not authenticated fails with `Unauthorized` and is
 * logged, so a node with a wrong secret can neither read, write, flush nor join.
 *
 * Membership: a node gossips with every peer it knows, and with its seeds, every
 * `heartbeatInterval`: it sends its live view and receives the peer's, so knowing one live seed is
 * enough to learn everyone. A peer is live while this node has heard from it directly (a gossip
 * answered or received) within `failureTimeout`; liveness is never taken from hearsay. A node
 * leaving gracefully tells every peer (`Leave`). `incarnation` (the start time) tells a restarted
 * process at the same address apart from the one that left, so it rejoins.
 * Invariant: `members` holds this node and exactly the peers heard from within `failureTimeout`
 * that have not left, sorted by id.
 *
 * Bad input: frames are bounded (`maxFrameBytes`); bytes that are not MessagePack, or decode to
 * something that is not a request, get an error reply or a closed connection, and only that
 * connection is affected. Before a connection has authenticated, the listener bounds its time
 * (`connectTimeout`) and bytes (a few KB), and strangers never hold more than a quarter of
 * `maxConnections` (`listener.ts`). Internals run on the live clock, so a `TestClock` in the caller's
 * context never stalls heartbeats or network timeouts.
 */
import { NodeSocket } from "@effect/platform-node"
import * as Socket from "@effect/platform/Socket"
import * as SocketServer from "@effect/platform/SocketServer"
import { RpcClient, RpcClientError, RpcSerialization, RpcServer } from "@effect/rpc"
import type { RpcGroup } from "@effect/rpc"
import { BackendError, ConfigError, NodeUnavailable, Stats } from "@vela/core"
import type { Duration, Scope } from "effect"
import {
  Cause,
  Context,
  Deferred,
  Effect,
  ExecutionStrategy,
  Exit,
  FiberId,
  FiberSet,
  Layer,
  Mailbox,
  Redacted,
  Runtime,
  Schedule,
  Scope as ScopeModule,
  SubscriptionRef
} from "effect"
import { randomBytes } from "node:crypto"
import * as Net from "node:net"
import { Discovery } from "./Discovery.js"
import { serialization } from "./internal/frames.js"
import * as Lane from "./internal/lane.js"
import * as Listener from "./internal/listener.js"
import { live } from "./internal/live.js"
import * as Check from "./internal/options.js"
import type { Change, LeaseOutcome, MemberRecord, Op, OpResult, ReplicaItem, SpaceDigest } from "./internal/protocol.js"
import { RemoteFailure, Rpcs, Unauthorized } from "./internal/protocol.js"
import * as Tls from "./internal/tls.js"

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

/** The RPC client of one peer connection, as topologies use it. */
export type Client = RpcClient.RpcClient<RpcGroup.Rpcs<typeof Rpcs>, RpcClientError.RpcClientError>

/** What a topology serves to peers: the cache operations of `Rpcs`, namespaced. */
export interface Service {
  readonly batch: (
    from: string,
    now: number,
    ops: ReadonlyArray<Op>
  ) => Effect.Effect<ReadonlyArray<OpResult>, RemoteFailure>
  readonly invalidateTag: (
    from: string,
    now: number,
    ns: string,
    tag: string
  ) => Effect.Effect<ReadonlyArray<string>, RemoteFailure>
  readonly clear: (from: string, ns: string) => Effect.Effect<void, RemoteFailure>
  readonly size: (now: number, ns: string, members: ReadonlyArray<string>) => Effect.Effect<number, RemoteFailure>
  readonly lease: (ns: string, key: string, timeout: number) => Effect.Effect<LeaseOutcome, RemoteFailure>
  readonly release: (ns: string, key: string) => Effect.Effect<void, RemoteFailure>
  readonly invalidate: (from: string, ns: string, change: Change) => Effect.Effect<void, RemoteFailure>
  /** Replicated: the state of every namespace in brief. */
  readonly digest?: (() => Effect.Effect<ReadonlyArray<SpaceDigest>, RemoteFailure>) | undefined
  /** Replicated: everything known in `buckets` of `ns`. */
  readonly pull?:
    | ((ns: string, buckets: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<ReplicaItem>, RemoteFailure>)
    | undefined
}

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
  readonly call: <A, E>(
    peer: string,
    f: (client: Client) => Effect.Effect<A, E | RpcClientError.RpcClientError | Unauthorized>
  ) => Effect.Effect<A, Exclude<E, RpcClientError.RpcClientError | Unauthorized> | NodeUnavailable>
  /**
   * Sends a batch of key operations to `peer` on the data lane (a connection of its own, opened
   * and authenticated on first use); `done` is called once, with the results in order or a
   * `NodeUnavailable`. Plain callbacks: this is the hot path of every topology.
   */
  readonly batch: (
    peer: string,
    now: number,
    ops: ReadonlyArray<Op>,
    done: (answer: ReadonlyArray<OpResult> | NodeUnavailable) => void
  ) => void
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

/** Starts a node; it leaves the cluster gracefully and stops serving when the scope closes. */
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
 */
export const layer = (options: ClusterNodeOptions): Layer.Layer<ClusterNode, ConfigError | BackendError> =>
  Layer.scoped(ClusterNode, make(options))

// internal

interface PeerState {
  incarnation: number
  /** Live-clock millis of the last direct contact; 0 before any. */
  lastHeard: number
  /** The incarnation that announced its leave, or -1. */
  leftIncarnation: number
  /** When it was first or last heard of, for forgetting the dead. */
  lastSeen: number
}

interface Connection {
  readonly client: Client
  readonly scope: ScopeModule.CloseableScope
  /** The pool slot this connection fills. */
  slot?: Deferred.Deferred<Connection, NodeUnavailable>
}

const makeNode = (options: ClusterNodeOptions) =>
  Effect.gen(function*() {
    const heartbeat = yield* Check.millis("heartbeatInterval", options.heartbeatInterval ?? "500 millis")
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
    const notWildcard = "expected the address peers reach this node at, not a wildcard such as 0.0.0.0 or ::"
    if (typeof options.host !== "string" || options.host.length === 0 || Check.isWildcard(options.host)) {
      return yield* new ConfigError({ field: "host", reason: notWildcard })
    }
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
      return yield* new ConfigError({ field: "port", reason: "expected an integer from 0 to 65535" })
    }
    if (options.advertise !== undefined && Check.parseAddress(options.advertise) === undefined) {
      return yield* new ConfigError({
        field: "advertise",
        reason: `${JSON.stringify(options.advertise)} is not "host:port"`
      })
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
    const discovery = yield* Effect.serviceOption(Discovery)
    const wire = serialization(maxFrameBytes)
    const now = () => live.unsafeCurrentTimeMillis()

    // Server

    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const proofs = Lane.secretOf(secret)
    // Lanes are served once the service below is defined; one that comes earlier is closed.
    const lanesServed: { options?: Lane.ServeOptions } = {}
    const listener = yield* Listener.make(
      { host: options.host, port: options.port, tls: options.tls, connectTimeout, idleTimeout, maxConnections },
      (conn, admit) => lanesServed.options === undefined ? undefined : Lane.serve(conn, admit, lanesServed.options)
    ).pipe(Effect.mapError((cause) => new BackendError({ backend: "cluster", operation: "listen", cause })))
    const socketServer = listener.server
    const address = socketServer.address
    // A host name can resolve to a wildcard too: what was bound is what counts.
    if (address._tag === "TcpAddress" && Check.isWildcard(address.hostname)) {
      return yield* new ConfigError({ field: "host", reason: notWildcard })
    }
    const port = address._tag === "TcpAddress" ? address.port : options.port
    const id = options.advertise ?? `${options.host}:${port}`
    const incarnation = now() * 1000 + Math.floor(Math.random() * 1000)
    const self: MemberRecord = { id, incarnation }

    interface ConnectionState {
      nonce?: string
      clientNonce?: string
      member?: MemberRecord
      warned?: boolean
    }
    const connections = new Map<number, ConnectionState>()
    const base = yield* RpcServer.makeProtocolSocketServer.pipe(
      Effect.provideService(SocketServer.SocketServer, socketServer),
      Effect.provideService(RpcSerialization.RpcSerialization, wire)
    )
    // Forget a connection's auth as soon as it closes; the server sees the same disconnects.
    const disconnects = yield* Mailbox.make<number>()
    yield* base.disconnects.take.pipe(
      Effect.flatMap((clientId) => {
        connections.delete(clientId)
        return disconnects.offer(clientId)
      }),
      Effect.forever,
      Effect.ignore,
      Effect.forkScoped
    )
    const protocol = RpcServer.Protocol.of({ ...base, disconnects })

    let service: Service | undefined
    const noService = new RemoteFailure({ message: `node ${id} serves no cache topology`, cause: null })
    const notReplicated = new RemoteFailure({
      message: `node ${id} does not serve the Replicated topology`,
      cause: null
    })

    const authenticated = <A, E>(clientId: number, rpc: string, f: () => Effect.Effect<A, E>) => {
      const state = connections.get(clientId)
      if (state?.member !== undefined) return f()
      return Effect.zipRight(
        state?.warned === true ? Effect.void : Effect.logWarning(
          `vela cluster ${id}: refused ${rpc} from a connection that has not authenticated`
        ).pipe(Effect.tap(() => {
          connections.set(clientId, { ...state, warned: true })
        })),
        Effect.fail(new Unauthorized({ reason: "authenticate first" }))
      )
    }
    const served = <A>(
      clientId: number,
      rpc: string,
      f: (service: Service, from: string) => Effect.Effect<A, RemoteFailure>
    ) =>
      authenticated(
        clientId,
        rpc,
        () => service === undefined ? Effect.fail(noService) : f(service, connections.get(clientId)!.member!.id)
      )

    const handlers = yield* Rpcs.toHandlersContext({
      Hello: ({ nonce }, { clientId }) =>
        Effect.sync(() => {
          const serverNonce = randomBytes(18).toString("base64")
          connections.set(clientId, { nonce: serverNonce, clientNonce: nonce })
          return { id, nonce: serverNonce, proof: proofs.prove("server", nonce, serverNonce, id) }
        }),
      Authenticate: ({ member, proof }, { clientId, headers }) =>
        Effect.suspend(() => {
          const state = connections.get(clientId)
          if (state?.nonce === undefined || state.clientNonce === undefined) {
            return Effect.fail(new Unauthorized({ reason: "say Hello first" }))
          }
          const expected = proofs.prove("client", state.nonce, state.clientNonce, member.id)
          if (!proofs.check(expected, proof)) {
            connections.set(clientId, { warned: true })
            return Effect.zipRight(
              Effect.logWarning(`vela cluster ${id}: refused ${member.id}: it does not know the cluster secret`),
              Effect.fail(new Unauthorized({ reason: "wrong secret" }))
            )
          }
          connections.set(clientId, { member })
          listener.admit(headers)
          heard(member)
          return Effect.void
        }),
      Gossip: ({ from, members }, { clientId }) =>
        authenticated(clientId, "Gossip", () =>
          Effect.sync(() => {
            heard(from)
            learn(members)
            return view()
          })),
      Leave: ({ member }, { clientId }) => authenticated(clientId, "Leave", () => Effect.sync(() => left(member))),
      Stats: ({ ns }, { clientId }) =>
        authenticated(clientId, "Stats", () => Effect.sync(() => ({ ...statsHere(ns) }))),
      InvalidateTag: ({ now, ns, tag }, { clientId }) =>
        served(clientId, "InvalidateTag", (s, from) => s.invalidateTag(from, now, ns, tag)),
      Clear: ({ ns }, { clientId }) => served(clientId, "Clear", (s, from) => s.clear(from, ns)),
      Size: ({ members, now, ns }, { clientId }) => served(clientId, "Size", (s) => s.size(now, ns, members)),
      Lease: ({ key, ns, timeout }, { clientId }) => served(clientId, "Lease", (s) => s.lease(ns, key, timeout)),
      Release: ({ key, ns }, { clientId }) => served(clientId, "Release", (s) => s.release(ns, key)),
      Invalidate: ({ change, ns }, { clientId }) =>
        served(clientId, "Invalidate", (s, from) => s.invalidate(from, ns, change)),
      Digest: (_, { clientId }) =>
        served(clientId, "Digest", (s) => s.digest === undefined ? Effect.fail(notReplicated) : s.digest()),
      Pull: ({ buckets, ns }, { clientId }) =>
        served(clientId, "Pull", (s) => s.pull === undefined ? Effect.fail(notReplicated) : s.pull(ns, buckets))
    })
    yield* RpcServer.make(Rpcs, { disableTracing: true, concurrency: "unbounded" }).pipe(
      Effect.provide(handlers),
      Effect.provideService(RpcServer.Protocol, protocol),
      Effect.forkScoped
    )

    lanesServed.options = {
      id,
      secret: proofs,
      maxFrameBytes,
      batch: (from, now, ops, answer) => {
        if (service === undefined) return answer(noService.message)
        runFork(service.batch(from, now, ops), { immediate: true }).addObserver((exit) =>
          answer(Exit.isSuccess(exit) ? exit.value : `a batch failed on ${id}: ${Cause.pretty(exit.cause)}`)
        )
      },
      refused: (reason) => {
        runFork(Effect.logWarning(`vela cluster ${id}: refused a lane connection: ${reason}`))
      }
    }

    // Stats: the counters of the caches open in this process, by namespace.

    const sharedStats = new Map<string, Set<() => Stats.Stats>>()
    const statsHere = (ns: string): Stats.Stats => Stats.sum(Array.from(sharedStats.get(ns) ?? [], (read) => read()))
    const shareStats: ClusterNode["Type"]["shareStats"] = (ns, counters) =>
      Effect.gen(function*() {
        if (counters !== undefined) {
          yield* Effect.acquireRelease(
            Effect.sync(() => {
              let shared = sharedStats.get(ns)
              if (shared === undefined) sharedStats.set(ns, shared = new Set())
              shared.add(counters)
            }),
            () =>
              Effect.sync(() => {
                const shared = sharedStats.get(ns)
                shared?.delete(counters)
                if (shared?.size === 0) sharedStats.delete(ns)
              })
          )
        }
        return Effect.map(
          Effect.forEach(
            published.filter((member) => member !== id),
            (peer) => Effect.option(call(peer, (client) => client.Stats({ ns }))),
            { concurrency: "unbounded" }
          ),
          (remote) =>
            Stats.sum([statsHere(ns), ...remote.flatMap((answer) => answer._tag === "Some" ? [answer.value] : [])])
        )
      })

    // Membership

    const peers = new Map<string, PeerState>()
    const members = yield* SubscriptionRef.make<ReadonlyArray<string>>([id])
    let published: ReadonlyArray<string> = [id]

    const isLive = (peer: PeerState, at: number) =>
      peer.leftIncarnation < peer.incarnation && peer.lastHeard > 0 && at - peer.lastHeard < failureTimeout

    const liveIds = (at: number) => {
      const ids = [id]
      for (const [peerId, peer] of peers) if (isLive(peer, at)) ids.push(peerId)
      return ids.sort()
    }

    const view = (): ReadonlyArray<MemberRecord> => {
      const at = now()
      const records: Array<MemberRecord> = [self]
      for (const [peerId, peer] of peers) {
        if (isLive(peer, at)) records.push({ id: peerId, incarnation: peer.incarnation })
      }
      return records
    }

    /** Recomputes the live set and publishes it when it changed. */
    const publish = Effect.suspend(() => {
      const next = liveIds(now())
      if (next.length === published.length && next.every((m, i) => m === published[i])) return Effect.void
      published = next
      return SubscriptionRef.set(members, next)
    })
    const publishNow = () => Effect.runFork(publish)

    /** Direct contact with `member`. */
    const heard = (member: MemberRecord) => {
      if (member.id === id) return
      const at = now()
      const peer = peers.get(member.id)
      if (peer === undefined) {
        peers.set(member.id, { incarnation: member.incarnation, lastHeard: at, leftIncarnation: -1, lastSeen: at })
      } else if (member.incarnation >= peer.incarnation) {
        if (member.incarnation > peer.incarnation) peer.leftIncarnation = -1
        peer.incarnation = member.incarnation
        if (peer.leftIncarnation < peer.incarnation) {
          peer.lastHeard = at
          peer.lastSeen = at
        }
      }
      publishNow()
    }

    /** Hearsay: members another node lists; they become live only once heard from directly. */
    const learn = (records: ReadonlyArray<MemberRecord>) => {
      const at = now()
      for (const record of records) {
        if (record.id === id) continue
        const peer = peers.get(record.id)
        if (peer === undefined) {
          peers.set(record.id, { incarnation: record.incarnation, lastHeard: 0, leftIncarnation: -1, lastSeen: at })
        } else if (record.incarnation > peer.incarnation) {
          peer.incarnation = record.incarnation
          peer.leftIncarnation = -1
          peer.lastSeen = at
        }
      }
    }

    const left = (member: MemberRecord) => {
      const peer = peers.get(member.id)
      if (peer !== undefined && member.incarnation >= peer.incarnation) {
        peer.incarnation = member.incarnation
        peer.leftIncarnation = member.incarnation
      }
      publishNow()
    }

    // Connections

    const pool = new Map<string, Deferred.Deferred<Connection, NodeUnavailable>>()
    // The pool has its own scope: it must still accept connections while the leave is announced.
    const poolScope = yield* ScopeModule.make()
    yield* Effect.addFinalizer((exit) => ScopeModule.close(poolScope, exit))

    const unavailable = (peer: string, cause: unknown) => new NodeUnavailable({ node: peer, cause })

    const connect = (peer: string): Effect.Effect<Connection, NodeUnavailable> =>
      Effect.gen(function*() {
        const target = Check.parseAddress(peer)
        if (target === undefined) return yield* unavailable(peer, "not a host:port address")
        const scope = yield* ScopeModule.fork(poolScope, ExecutionStrategy.sequential)
        return yield* Effect.gen(function*() {
          const socket = yield* (options.tls === undefined
            ? NodeSocket.makeNet({ host: target.host, port: target.port, noDelay: true, openTimeout: connectTimeout })
            : Tls.connect(options.tls, target, connectTimeout))
          const clientProtocol = yield* RpcClient.makeProtocolSocket({ retrySchedule: Schedule.stop }).pipe(
            Effect.provideService(Socket.Socket, socket),
            Effect.provideService(RpcSerialization.RpcSerialization, wire)
          )
          const client = yield* RpcClient.make(Rpcs, { disableTracing: true }).pipe(
            Effect.provideService(RpcClient.Protocol, clientProtocol)
          )
          const nonce = randomBytes(18).toString("base64")
          const hello = yield* client.Hello({ nonce })
          if (!proofs.check(proofs.prove("server", nonce, hello.nonce, hello.id), hello.proof)) {
            return yield* Effect.fail(new Unauthorized({ reason: `${peer} does not know the cluster secret` }))
          }
          yield* client.Authenticate({ member: self, proof: proofs.prove("client", hello.nonce, nonce, self.id) })
          return { client, scope }
        }).pipe(
          ScopeModule.extend(scope),
          Effect.timeoutFail({ duration: connectTimeout, onTimeout: () => "connection timed out" }),
          Effect.tapError(() => ScopeModule.close(scope, Exit.void)),
          Effect.mapError((cause) => unavailable(peer, cause))
        )
      })

    const connection = (peer: string): Effect.Effect<Connection, NodeUnavailable> =>
      Effect.suspend(() => {
        const existing = pool.get(peer)
        if (existing !== undefined) return Deferred.await(existing)
        const deferred = Deferred.unsafeMake<Connection, NodeUnavailable>(FiberId.none)
        pool.set(peer, deferred)
        return Effect.onExit(connect(peer), (exit) => {
          if (Exit.isFailure(exit)) pool.delete(peer)
          else exit.value.slot = deferred
          return Deferred.done(deferred, exit)
        })
      })

    const drop = (peer: string, dropped: Connection) =>
      Effect.suspend(() => {
        if (dropped.slot !== undefined && pool.get(peer) === dropped.slot) pool.delete(peer)
        return ScopeModule.close(dropped.scope, Exit.void)
      })

    const call = <A, E>(
      peer: string,
      f: (client: Client) => Effect.Effect<A, E | RpcClientError.RpcClientError | Unauthorized>
    ): Effect.Effect<A, Exclude<E, RpcClientError.RpcClientError | Unauthorized> | NodeUnavailable> => {
      const attempt = (retry: boolean): Effect.Effect<A, any> =>
        Effect.flatMap(connection(peer), (conn) =>
          Effect.catchIf(
            f(conn.client),
            (error): error is RpcClientError.RpcClientError | Unauthorized =>
              error instanceof RpcClientError.RpcClientError || error instanceof Unauthorized,
            (error) =>
              Effect.zipRight(
                drop(peer, conn),
                retry ? attempt(false) : Effect.fail(unavailable(peer, error))
              )
          ))
      return deadline(attempt(true), requestTimeout, () => unavailable(peer, "request timed out")).pipe(
        Effect.withClock(live)
      )
    }

    const lanes = new Map<string, Lane.Lane>()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const lane of lanes.values()) lane.close()
      })
    )
    const batch: ClusterNode["Type"]["batch"] = (peer, now, ops, done) => {
      let lane = lanes.get(peer)
      if (lane === undefined) {
        const target = Check.parseAddress(peer)
        if (target === undefined) return done(unavailable(peer, "not a host:port address"))
        const opened: Lane.Lane = Lane.connect({
          self,
          peer,
          secret: proofs,
          maxFrameBytes,
          connectTimeout,
          requestTimeout,
          idleTimeout,
          open: (onOpen) =>
            options.tls === undefined
              ? Net.connect({ host: target.host, port: target.port, noDelay: true }, onOpen)
              : Tls.connectRaw(options.tls, target, onOpen),
          onClose: () => {
            if (lanes.get(peer) === opened) lanes.delete(peer)
          }
        })
        lanes.set(peer, lane = opened)
      }
      lane.send(now, ops, done)
    }

    // Heartbeats

    const inflight = new Set<string>()
    const gossips = yield* FiberSet.make<void, never>()
    const gossipWith = (target: string) =>
      Effect.suspend(() => {
        inflight.add(target)
        return call(target, (client) => client.Gossip({ from: self, members: view() })).pipe(
          Effect.tap((records) => {
            const responder = records[0]
            if (responder !== undefined) heard(responder)
            learn(records)
          }),
          Effect.ignore,
          Effect.ensuring(Effect.sync(() => inflight.delete(target)))
        )
      })

    const round = Effect.gen(function*() {
      const discovered = discovery._tag === "Some" ? yield* discovery.value.seeds : []
      const at = now()
      const targets = new Set<string>()
      for (const [peerId, peer] of peers) {
        if (peer.leftIncarnation >= peer.incarnation) continue
        // The dead are forgotten after a while; a restarted one finds us again through its seeds.
        const seeded = seeds.includes(peerId) || discovered.includes(peerId)
        if (at - Math.max(peer.lastSeen, peer.lastHeard) > 10 * failureTimeout && !seeded) {
          peers.delete(peerId)
          continue
        }
        targets.add(peerId)
      }
      for (const seed of discovered.length === 0 ? seeds : [...seeds, ...discovered]) {
        const known = peers.get(seed)
        if (seed !== id && (known === undefined || !isLive(known, at))) targets.add(seed)
      }
      for (const target of targets) {
        if (!inflight.has(target)) yield* FiberSet.run(gossips, gossipWith(target))
      }
      yield* publish
    })

    // Leaving: stop gossiping, tell every live peer, then the pool and the server close.
    yield* Effect.addFinalizer(() =>
      Effect.forEach(
        liveIds(now()).filter((m) => m !== id),
        (peer) => Effect.ignore(call(peer, (client) => client.Leave({ member: self })).pipe(Effect.timeout(1000))),
        { concurrency: "unbounded", discard: true }
      ).pipe(Effect.withClock(live))
    )
    yield* round.pipe(Effect.repeat(Schedule.spaced(heartbeat)), Effect.interruptible, Effect.forkScoped)

    return ClusterNode.of({
      id,
      incarnation,
      seeded: seeds.some((seed) => seed !== id) || discovery._tag === "Some",
      maxFrameBytes,
      members,
      currentMembers: () => published,
      call,
      batch,
      shareStats,
      serve: (next) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            service = next
          }),
          () =>
            Effect.sync(() => {
              if (service === next) service = undefined
            })
        )
    })
  })

/**
 * `self`, failed with `onTimeout()` (and interrupted) unless it ends within `millis` of real time.
 * What `Effect.timeoutFail` does, for the price of one fiber and one timer: every batch pays it,
 * and `timeoutFail`'s race of fibers and a clock sleep costs about 40 µs of CPU a call.
 */
const deadline = <A, E, E2>(
  self: Effect.Effect<A, E>,
  millis: number,
  onTimeout: () => E2
): Effect.Effect<A, E | E2> =>
  Effect.flatMap(Effect.fork(self), (fiber) =>
    Effect.async<A, E | E2>((resume) => {
      let done = false
      const timer = setTimeout(() => {
        if (done) return
        done = true
        fiber.unsafeInterruptAsFork(FiberId.none)
        resume(Effect.fail(onTimeout()))
      }, millis)
      fiber.addObserver((exit) => {
        if (done) return
        done = true
        clearTimeout(timer)
        resume(exit)
      })
      return Effect.sync(() => {
        done = true
        clearTimeout(timer)
        fiber.unsafeInterruptAsFork(FiberId.none)
      })
    }))
