/**
 * The node's one port: a `SocketServer` for `@effect/rpc` over a TCP (or mutual-TLS) server, that
 * hands connections opening with the lane magic byte to the data lane instead. It reads the first
 * bytes of a connection, and puts them back before the RPC protocol reads it.
 */
import { NodeSocket } from "@effect/platform-node"
import type * as Socket from "@effect/platform/Socket"
import * as SocketServer from "@effect/platform/SocketServer"
import type { Scope } from "effect"
import { Effect, FiberSet } from "effect"
import * as Net from "node:net"
import { MAGIC } from "./lane.js"
import * as Tls from "./tls.js"

export const make = (
  listen: { readonly host: string; readonly port: number; readonly tls?: Tls.TlsOptions | undefined },
  onLane: (conn: Net.Socket, first: Buffer) => void
): Effect.Effect<SocketServer.SocketServer["Type"], SocketServer.SocketServerError, Scope.Scope> =>
  Effect.gen(function*() {
    // Connections accepted before the RPC server runs wait for it.
    const waiting: Array<Net.Socket> = []
    let rpc = (conn: Net.Socket): void => {
      waiting.push(conn)
    }
    const open = new Set<Net.Socket>()
    const accept = (conn: Net.Socket) => {
      open.add(conn)
      conn.on("close", () => open.delete(conn))
      conn.on("error", () => conn.destroy())
      const sniff = () => {
        const first: Buffer | null = conn.read()
        if (first === null) return
        conn.off("readable", sniff)
        if (first[0] === MAGIC[0]) return onLane(conn, first)
        conn.unshift(first)
        rpc(conn)
      }
      conn.on("readable", sniff)
    }
    const server = listen.tls === undefined
      ? Net.createServer({ noDelay: true }, accept)
      : Tls.createServer(listen.tls, accept)
    yield* Effect.acquireRelease(
      Effect.async<void, SocketServer.SocketServerError>((resume) => {
        const onError = (cause: Error) =>
          resume(Effect.fail(new SocketServer.SocketServerError({ reason: "Open", cause })))
        server.once("error", onError)
        server.listen({ host: listen.host, port: listen.port }, () => {
          server.off("error", onError)
          resume(Effect.void)
        })
      }),
      () =>
        Effect.async<void>((resume) => {
          for (const conn of open) conn.destroy()
          server.close(() => resume(Effect.void))
        })
    )
    const address = server.address() as Net.AddressInfo
    return SocketServer.SocketServer.of({
      address: { _tag: "TcpAddress", hostname: address.address, port: address.port },
      run: <R, E, _>(handler: (socket: Socket.Socket) => Effect.Effect<_, E, R>) =>
        Effect.gen(function*() {
          const fibers = yield* FiberSet.make()
          const runFork = yield* FiberSet.runtime(fibers)<R>()
          const serve = (conn: Net.Socket) => {
            const socket = NodeSocket.fromDuplex(
              Effect.acquireRelease(Effect.succeed(conn), (c) => Effect.sync(() => c.destroy()))
            )
            runFork(Effect.catchAllCause(Effect.flatMap(socket, handler), () => Effect.void))
          }
          rpc = serve
          waiting.splice(0).forEach(serve)
          return yield* Effect.never
        }).pipe(Effect.scoped)
    })
  })
