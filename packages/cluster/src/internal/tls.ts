/**
 * TLS for the cluster transport: a `tls.Server` that requires client certificates from the
 * cluster CA (mutual TLS), and the client side, raw (lanes) or as a `Socket` (RPC). The HMAC handshake still runs inside the tunnel; TLS adds confidentiality.
 */
import { NodeSocket } from "@effect/platform-node"
import * as Socket from "@effect/platform/Socket"
import * as Effect from "effect/Effect"
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

/**
 * A mutual-TLS server: it requires a client certificate signed by the cluster CA, within
 * `handshakeTimeout` of the connection's open.
 */
export const createServer = (
  tls: TlsOptions,
  handshakeTimeout: number,
  onConnection: (conn: Net.Socket) => void
): Tls.Server => {
  const server = Tls.createServer({
    key: tls.key,
    cert: tls.cert,
    ca: tls.ca,
    requestCert: true,
    rejectUnauthorized: true,
    noDelay: true,
    handshakeTimeout
  }, onConnection)
  // A failed TLS handshake (a peer without a valid certificate) affects only that connection.
  server.on("tlsClientError", (_error, conn) => conn.destroy())
  return server
}

/** A raw client socket to `host:port` over mutual TLS; `onSecure` once the TLS handshake is done. */
export const connectRaw = (
  tls: TlsOptions,
  target: { readonly host: string; readonly port: number },
  onSecure: () => void
): Tls.TLSSocket => {
  const conn = Tls.connect({ host: target.host, port: target.port, key: tls.key, cert: tls.cert, ca: tls.ca }, onSecure)
  conn.setNoDelay(true)
  return conn
}

/** A client socket to `host:port` over mutual TLS. */
export const connect = (
  tls: TlsOptions,
  target: { readonly host: string; readonly port: number },
  openTimeout: number
): Effect.Effect<Socket.Socket> =>
  NodeSocket.fromDuplex(
    Effect.acquireRelease(
      Effect.async<Tls.TLSSocket, Socket.SocketError>((resume) => {
        const conn = connectRaw(tls, target, () => resume(Effect.succeed(conn)))
        conn.once("error", (cause) => resume(Effect.fail(new Socket.SocketGenericError({ reason: "Open", cause }))))
      }),
      (conn) => Effect.sync(() => conn.destroy())
    ),
    { openTimeout }
  )
