/**
 * This node's connections to its peers: a pool of authenticated `@effect/rpc` clients, one per
 * peer, opened on first use and reopened once when broken; and a data lane per peer (`lane.ts`)
 * for batches of key operations, the hot path of every topology.
 */
import { NodeSocket } from "@effect/platform-node"
import * as Socket from "@effect/platform/Socket"
import { RpcClient, RpcClientError, RpcSerialization } from "@effect/rpc"
import type { RpcGroup } from "@effect/rpc"
import { NodeUnavailable } from "@vela/core"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Net from "node:net"
import type { Secret } from "./auth.js"
import { authenticate } from "./auth.js"
import * as Lane from "./lane.js"
import { live } from "./live.js"
import * as Check from "./options.js"
import type { MemberRecord, Op, OpResult } from "./protocol.js"
import { Rpcs, Unauthorized } from "./protocol.js"
import * as Tls from "./tls.js"

/** The RPC client of one peer connection, as topologies use it. */
export type Client = RpcClient.RpcClient<RpcGroup.Rpcs<typeof Rpcs>, RpcClientError.RpcClientError>

export interface ConnectionOptions {
  readonly self: MemberRecord
  readonly secret: Secret
  readonly serialization: RpcSerialization.RpcSerialization["Type"]
  readonly tls: Tls.TlsOptions | undefined
  readonly maxFrameBytes: number
  readonly connectTimeout: number
  readonly requestTimeout: number
  readonly idleTimeout: number
}

export interface Connections {
  /**
   * Runs `f` with an authenticated connection to `peer`, bounded by `requestTimeout`. A broken
   * connection is dropped and reopened once; a peer that cannot be reached is `NodeUnavailable`.
   */
  readonly call: <A, E>(
    peer: string,
    f: (client: Client) => Effect.Effect<A, E | RpcClientError.RpcClientError | Unauthorized>
  ) => Effect.Effect<A, Exclude<E, RpcClientError.RpcClientError | Unauthorized> | NodeUnavailable>
  /** Sends a batch to `peer` on its data lane; `done` is called once, with the results or why there are none. */
  readonly batch: (
    peer: string,
    now: number,
    ops: ReadonlyArray<Op>,
    done: (answer: ReadonlyArray<OpResult> | NodeUnavailable) => void
  ) => void
}

interface Connection {
  readonly client: Client
  readonly scope: Scope.CloseableScope
  /** The pool slot this connection fills. */
  slot?: Deferred.Deferred<Connection, NodeUnavailable>
}

const unavailable = (peer: string, cause: unknown) => new NodeUnavailable({ node: peer, cause })

/** The pool and the lanes, closed with the scope. */
export const make = (options: ConnectionOptions): Effect.Effect<Connections, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { connectTimeout, self } = options
    const pool = new Map<string, Deferred.Deferred<Connection, NodeUnavailable>>()
    // The pool has its own scope: it must still accept connections while the leave is announced.
    const poolScope = yield* Scope.make()
    yield* Effect.addFinalizer((exit) => Scope.close(poolScope, exit))

    const connect = (peer: string): Effect.Effect<Connection, NodeUnavailable> =>
      Effect.gen(function*() {
        const target = Check.parseAddress(peer)
        if (target === undefined) return yield* unavailable(peer, "not a host:port address")
        const scope = yield* Scope.fork(poolScope, ExecutionStrategy.sequential)
        return yield* Effect.gen(function*() {
          const socket = yield* (options.tls === undefined
            ? NodeSocket.makeNet({ host: target.host, port: target.port, noDelay: true, openTimeout: connectTimeout })
            : Tls.connect(options.tls, target, connectTimeout))
          const clientProtocol = yield* RpcClient.makeProtocolSocket({ retrySchedule: Schedule.stop }).pipe(
            Effect.provideService(Socket.Socket, socket),
            Effect.provideService(RpcSerialization.RpcSerialization, options.serialization)
          )
          const client = yield* RpcClient.make(Rpcs, { disableTracing: true }).pipe(
            Effect.provideService(RpcClient.Protocol, clientProtocol)
          )
          yield* authenticate(client, options.secret, self, peer)
          return { client, scope }
        }).pipe(
          Scope.extend(scope),
          Effect.timeoutFail({ duration: connectTimeout, onTimeout: () => "connection timed out" }),
          Effect.tapError(() => Scope.close(scope, Exit.void)),
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
        return Scope.close(dropped.scope, Exit.void)
      })

    const call: Connections["call"] = <A, E>(
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
      return deadline(attempt(true), options.requestTimeout, () => unavailable(peer, "request timed out")).pipe(
        Effect.withClock(live)
      )
    }

    const lanes = new Map<string, Lane.Lane>()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const lane of lanes.values()) lane.close()
      })
    )
    const batch: Connections["batch"] = (peer, now, ops, done) => {
      let lane = lanes.get(peer)
      if (lane === undefined) {
        const target = Check.parseAddress(peer)
        if (target === undefined) return done(unavailable(peer, "not a host:port address"))
        const opened: Lane.Lane = Lane.connect({
          self,
          peer,
          secret: options.secret,
          maxFrameBytes: options.maxFrameBytes,
          connectTimeout,
          requestTimeout: options.requestTimeout,
          idleTimeout: options.idleTimeout,
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

    return { call, batch }
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
