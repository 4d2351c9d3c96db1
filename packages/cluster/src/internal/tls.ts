/**
 * TLS for the cluster transport: a `SocketServer` over `tls.createServer` that requires client
 * certificates from the cluster CA (mutual TLS), and the client side as a `Socket` over
 * `tls.connect`. The HMAC handshake still runs inside the tunnel; TLS adds confidentiality.
 */
import { NodeSocket } from "@effect/platform-node"
import * as Socket from "@effect/platform/Socket"
import * as SocketServer from "@effect/platform/SocketServer"
import type { Scope } from "effect"
import { Effect, FiberSet } from "effect"
import type * as Net from "node:net"
import * as Tls from "node:tls"

export interface TlsOptions {
  /** This node's private key (PEM). */
  readonly key: string | Buffer
  /** This node's certificate (PEM), naming its host (DNS name or IP address). */
  readonly cert: string | Buffer
  /** The certificate authority every node's certificate is signed by (PEM). */
  readonly ca: string | Buffer
}

/** A mutual-TLS server bound to `host:port`, closed with the scope. */
export const server = (
  tls: TlsOptions,
  listen: { readonly host: string; readonly port: number }
): Effect.Effect<SocketServer.SocketServer["Type"], SocketServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const waiting: Array<Tls.TLSSocket> = []
    let accept = (conn: Tls.TLSSocket): void => {
      waiting.push(conn)
    }
    const tlsServer = Tls.createServer({
      key: tls.key,
      cert: tls.cert,
      ca: tls.ca,
      requestCert: true,
      rejectUnauthorized: true,
      noDelay: true
    }, (conn) => accept(conn))
    // A failed TLS handshake (a peer without a valid certificate) affects only that connection.
    tlsServer.on("tlsClientError", (_error, conn) => conn.destroy())
    yield* Effect.acquireRelease(
      Effect.async<void, SocketServer.SocketServerError>((resume) => {
        const onError = (cause: Error) =>
          resume(Effect.fail(new SocketServer.SocketServerError({ reason: "Open", cause })))
        tlsServer.once("error", onError)
        tlsServer.listen({ host: listen.host, port: listen.port }, () => {
          tlsServer.off("error", onError)
          resume(Effect.void)
        })
      }),
      () => Effect.async<void>((resume) => void tlsServer.close(() => resume(Effect.void)))
    )
    const address = tlsServer.address() as Net.AddressInfo
    return SocketServer.SocketServer.of({
      address: { _tag: "TcpAddress", hostname: address.address, port: address.port },
      run: <R, E, _>(handler: (socket: Socket.Socket) => Effect.Effect<_, E, R>) =>
        Effect.gen(function*() {
          const fibers = yield* FiberSet.make()
          const runFork = yield* FiberSet.runtime(fibers)<R>()
          const serve = (conn: Tls.TLSSocket) => {
            conn.on("error", () => {})
            const socket = NodeSocket.fromDuplex(
              Effect.acquireRelease(Effect.succeed(conn), (c) => Effect.sync(() => c.destroy()))
            )
            runFork(Effect.catchAllCause(Effect.flatMap(socket, handler), () => Effect.void))
          }
          accept = serve
          waiting.splice(0).forEach(serve)
          return yield* Effect.never
        }).pipe(Effect.scoped)
    })
  })

type SocketServerError = SocketServer.SocketServerError

/** A client socket to `host:port` over mutual TLS. */
export const connect = (
  tls: TlsOptions,
  target: { readonly host: string; readonly port: number },
  openTimeout: number
): Effect.Effect<Socket.Socket> =>
  NodeSocket.fromDuplex(
    Effect.acquireRelease(
      Effect.async<Tls.TLSSocket, Socket.SocketError>((resume) => {
        const conn = Tls.connect({
          host: target.host,
          port: target.port,
          key: tls.key,
          cert: tls.cert,
          ca: tls.ca
        })
        conn.setNoDelay(true)
        conn.once("secureConnect", () => resume(Effect.succeed(conn)))
        conn.once("error", (cause) => resume(Effect.fail(new Socket.SocketGenericError({ reason: "Open", cause }))))
      }),
      (conn) => Effect.sync(() => conn.destroy())
    ),
    { openTimeout }
  )
