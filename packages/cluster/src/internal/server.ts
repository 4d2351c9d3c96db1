/**
 * What this node serves on its one port: `@effect/rpc` (the handshake, membership, stats and the
 * cache operations that are not key operations) and the data lane (batches of key operations),
 * both handed to the topology that `serve`s. A request reaches the topology only from a connection
 * that proved the secret (`auth.ts`); one that comes before any topology serves fails with
 * `RemoteFailure`, and so does a Replicated request to a node that serves another topology.
 */
import * as SocketServer from "@effect/platform/SocketServer"
import { RpcSerialization, RpcServer } from "@effect/rpc"
import type { Stats } from "@vela/core"
import { BackendError, ConfigError } from "@vela/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Mailbox from "effect/Mailbox"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type { Secret } from "./auth.js"
import { makeGate } from "./auth.js"
import * as Lane from "./lane.js"
import * as Listener from "./listener.js"
import type { Membership } from "./membership.js"
import * as Check from "./options.js"
import type * as Protocol from "./protocol.js"
import { RemoteFailure, Rpcs } from "./protocol.js"
import { notWildcard } from "./settings.js"

/** What a topology serves to peers: the cache operations of `Rpcs`, namespaced. */
export interface Service {
  readonly batch: (
    from: string,
    now: number,
    ops: ReadonlyArray<Protocol.Op>
  ) => Effect.Effect<ReadonlyArray<Protocol.OpResult>, RemoteFailure>
  readonly invalidateTag: (
    from: string,
    request: Protocol.InvalidateTagRequest
  ) => Effect.Effect<ReadonlyArray<string>, RemoteFailure>
  readonly clear: (from: string, request: Protocol.ClearRequest) => Effect.Effect<void, RemoteFailure>
  readonly size: (request: Protocol.SizeRequest) => Effect.Effect<Protocol.SizeAnswer, RemoteFailure>
  readonly lease: (ns: string, key: string, timeout: number) => Effect.Effect<Protocol.LeaseOutcome, RemoteFailure>
  readonly release: (ns: string, key: string) => Effect.Effect<void, RemoteFailure>
  readonly invalidate: (from: string, ns: string, change: Protocol.Change) => Effect.Effect<void, RemoteFailure>
  /** Replicated: the state of every namespace in brief. */
  readonly digest?: (() => Effect.Effect<ReadonlyArray<Protocol.SpaceDigest>, RemoteFailure>) | undefined
  /** Replicated: what is known in some buckets of a namespace, as much as one reply holds. */
  readonly pull?: ((request: Protocol.PullRequest) => Effect.Effect<Protocol.PullAnswer, RemoteFailure>) | undefined
}

/** The bound port, before anything is served on it. */
export interface Listening {
  readonly listener: Listener.Listener
  readonly port: number
  /** Lanes are served from here on; one that comes earlier is closed. */
  readonly serveLanes: (options: Lane.ServeOptions) => void
}

/** Binds the port, closed with the scope. */
export const listen = (
  options: Listener.ListenOptions
): Effect.Effect<Listening, BackendError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    let lanes: Lane.ServeOptions | undefined
    const listener = yield* Listener.make(
      options,
      (conn, admit) => lanes === undefined ? undefined : Lane.serve(conn, admit, lanes)
    ).pipe(Effect.mapError((cause) => new BackendError({ backend: "cluster", operation: "listen", cause })))
    const address = listener.server.address
    // A host name can resolve to a wildcard too: what was bound is what counts.
    if (address._tag === "TcpAddress" && Check.isWildcard(address.hostname)) {
      return yield* new ConfigError({ field: "host", reason: notWildcard })
    }
    return {
      listener,
      port: address._tag === "TcpAddress" ? address.port : options.port,
      serveLanes: (served) => {
        lanes = served
      }
    }
  })

export interface ServerOptions {
  readonly membership: Membership
  readonly secret: Secret
  readonly serialization: RpcSerialization.RpcSerialization["Type"]
  readonly maxFrameBytes: number
  /** The counters of the caches named `ns` in this process. */
  readonly statsHere: (ns: string) => Stats.Stats
}

/**
 * Serves RPCs and lanes on `listening` while the scope is open; returns what installs the topology's
 * service (one at a time) for as long as its own scope is open.
 */
export const start = (
  listening: Listening,
  options: ServerOptions
): Effect.Effect<(service: Service) => Effect.Effect<void, never, Scope.Scope>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { membership, secret } = options
    const id = membership.self.id
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const gate = makeGate(id, secret)
    const base = yield* RpcServer.makeProtocolSocketServer.pipe(
      Effect.provideService(SocketServer.SocketServer, listening.listener.server),
      Effect.provideService(RpcSerialization.RpcSerialization, options.serialization)
    )
    // Forget a connection's auth as soon as it closes; the server sees the same disconnects.
    const disconnects = yield* Mailbox.make<number>()
    yield* base.disconnects.take.pipe(
      Effect.flatMap((clientId) => {
        gate.forget(clientId)
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
    const served = <A>(
      clientId: number,
      rpc: string,
      f: (service: Service, from: string) => Effect.Effect<A, RemoteFailure>
    ) =>
      gate.authenticated(
        clientId,
        rpc,
        (from) => service === undefined ? Effect.fail(noService) : f(service, from.id)
      )

    const handlers = yield* Rpcs.toHandlersContext({
      Hello: ({ nonce }, { clientId }) => Effect.sync(() => gate.hello(clientId, nonce)),
      Authenticate: ({ member, proof }, { clientId, headers }) =>
        gate.authenticate(clientId, member, proof, () => {
          listening.listener.admit(headers)
          membership.heard(member)
        }),
      Gossip: ({ from, members }, { clientId }) =>
        gate.authenticated(clientId, "Gossip", () =>
          Effect.sync(() => {
            membership.heard(from)
            membership.learn(members)
            return membership.view()
          })),
      Leave: ({ member }, { clientId }) =>
        gate.authenticated(clientId, "Leave", () => Effect.sync(() => membership.left(member))),
      Stats: ({ ns }, { clientId }) =>
        gate.authenticated(clientId, "Stats", () => Effect.sync(() => ({ ...options.statsHere(ns) }))),
      InvalidateTag: (request, { clientId }) =>
        served(clientId, "InvalidateTag", (s, from) => s.invalidateTag(from, request)),
      Clear: (request, { clientId }) => served(clientId, "Clear", (s, from) => s.clear(from, request)),
      Size: (request, { clientId }) => served(clientId, "Size", (s) => s.size(request)),
      Lease: ({ key, ns, timeout }, { clientId }) => served(clientId, "Lease", (s) => s.lease(ns, key, timeout)),
      Release: ({ key, ns }, { clientId }) => served(clientId, "Release", (s) => s.release(ns, key)),
      Invalidate: ({ change, ns }, { clientId }) =>
        served(clientId, "Invalidate", (s, from) => s.invalidate(from, ns, change)),
      Digest: (_, { clientId }) =>
        served(clientId, "Digest", (s) => s.digest === undefined ? Effect.fail(notReplicated) : s.digest()),
      Pull: (request, { clientId }) =>
        served(clientId, "Pull", (s) => s.pull === undefined ? Effect.fail(notReplicated) : s.pull(request))
    })
    yield* RpcServer.make(Rpcs, { disableTracing: true, concurrency: "unbounded" }).pipe(
      Effect.provide(handlers),
      Effect.provideService(RpcServer.Protocol, protocol),
      Effect.forkScoped
    )

    listening.serveLanes({
      id,
      secret,
      maxFrameBytes: options.maxFrameBytes,
      batch: (from, now, ops, answer) => {
        if (service === undefined) return answer(noService.message)
        runFork(service.batch(from, now, ops), { immediate: true }).addObserver((exit) =>
          answer(Exit.isSuccess(exit) ? exit.value : `a batch failed on ${id}: ${Cause.pretty(exit.cause)}`)
        )
      },
      refused: (reason) => {
        runFork(Effect.logWarning(`vela cluster ${id}: refused a lane connection: ${reason}`))
      }
    })

    return (next: Service) =>
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
