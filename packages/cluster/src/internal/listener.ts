/**
 * The node's one port: a `SocketServer` for `@effect/rpc` over a TCP (or mutual-TLS) server, that
 * hands connections opening with the lane magic byte to the data lane instead. It reads the first
 * bytes of a connection, and puts them back before the RPC protocol reads it.
 *
 * Strangers: a connection is one until it proves the secret (`admit`). It is closed if it has not
 * within `connectTimeout`, and as soon as it sends more than `PRE_AUTH_BYTES` or a frame header
 * announcing more (so a stranger costs the node a few KB for a few seconds). At most
 * `maxConnections` connections are open, strangers at most a quarter of them; a new connection
 * over either bound takes the place of the oldest stranger, so strangers never keep a member out.
 * An admitted connection with no traffic for `idleTimeout` is closed.
 */
import { NodeSocket } from "@effect/platform-node"
import * as Socket from "@effect/platform/Socket"
import * as SocketServer from "@effect/platform/SocketServer"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import type * as Scope from "effect/Scope"
import * as Net from "node:net"
import { preAuthGate } from "./frames.js"
import { MAGIC } from "./lane.js"
import * as Tls from "./tls.js"

/** What a connection may send before it proves the secret; a handshake takes about 300 bytes. */
export const PRE_AUTH_BYTES = 8 * 1024

/** The header naming an RPC connection to this listener, for `admit`. */
const CONNECTION_HEADER = "vela-connection"

export interface ListenOptions {
  readonly host: string
  readonly port: number
  readonly tls?: Tls.TlsOptions | undefined
  readonly connectTimeout: number
  readonly idleTimeout: number
  readonly maxConnections: number
}

export interface Listener {
  readonly server: SocketServer.SocketServer["Type"]
  /** The RPC connection whose request carried `headers` proved the secret. */
  readonly admit: (headers: Readonly<Record<string, string | undefined>>) => void
}

export const make = (
  options: ListenOptions,
  /** Serves a data lane: returns what reads its bytes (the first ones included), or `undefined` to refuse it. */
  onLane: (conn: Net.Socket, admit: () => void) => ((chunk: Buffer) => void) | undefined
): Effect.Effect<Listener, SocketServer.SocketServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const maxStrangers = Math.max(1, Math.floor(options.maxConnections / 4))
    const open = new Set<Net.Socket>()
    /** Connections that have not proved the secret, oldest first, with their deadline. */
    const strangers = new Map<Net.Socket, ReturnType<typeof setTimeout>>()
    /** RPC connections that have not proved the secret, by the number their requests carry. */
    const rpcStrangers = new Map<string, Net.Socket>()
    let nextConnection = 0

    /** Takes `conn` off the strangers, with its deadline; whether it was one. */
    const unstrange = (conn: Net.Socket) => {
      clearTimeout(strangers.get(conn))
      return strangers.delete(conn)
    }
    const forget = (conn: Net.Socket) => {
      open.delete(conn)
      unstrange(conn)
    }
    const close = (conn: Net.Socket) => {
      forget(conn)
      conn.destroy()
    }
    const admit = (conn: Net.Socket) => {
      if (unstrange(conn)) conn.setTimeout(options.idleTimeout, () => close(conn))
    }

    // Connections accepted before the RPC server runs wait for it.
    const waiting: Array<[Net.Socket, string, (chunk: Uint8Array) => boolean]> = []
    let rpc = (conn: Net.Socket, number: string, pass: (chunk: Uint8Array) => boolean): void => {
      waiting.push([conn, number, pass])
    }
    const accept = (conn: Net.Socket) => {
      if (open.size >= options.maxConnections || strangers.size >= maxStrangers) {
        const oldest = strangers.keys().next()
        if (oldest.done === true) return conn.destroy()
        close(oldest.value)
      }
      open.add(conn)
      strangers.set(conn, setTimeout(() => close(conn), options.connectTimeout))
      conn.on("close", () => forget(conn))
      conn.on("error", () => close(conn))
      const sniff = () => {
        const first: Buffer | null = conn.read()
        if (first === null) return
        conn.off("readable", sniff)
        if (first[0] === MAGIC[0]) {
          const read = onLane(conn, () => admit(conn))
          if (read === undefined) return close(conn)
          const pass = preAuthGate(PRE_AUTH_BYTES, MAGIC.length)
          const onData = (chunk: Buffer) => {
            if (strangers.has(conn) && !pass(chunk)) return close(conn)
            read(chunk)
          }
          onData(first)
          if (!conn.destroyed) conn.on("data", onData)
          return
        }
        const number = String(nextConnection++)
        rpcStrangers.set(number, conn)
        conn.on("close", () => rpcStrangers.delete(number))
        conn.unshift(first)
        rpc(conn, number, preAuthGate(PRE_AUTH_BYTES, 0))
      }
      conn.on("readable", sniff)
    }
    const server = options.tls === undefined
      ? Net.createServer({ noDelay: true }, accept)
      : Tls.createServer(options.tls, options.connectTimeout, accept)
    yield* Effect.acquireRelease(
      Effect.async<void, SocketServer.SocketServerError>((resume) => {
        const onError = (cause: Error) =>
          resume(Effect.fail(new SocketServer.SocketServerError({ reason: "Open", cause })))
        server.once("error", onError)
        server.listen({ host: options.host, port: options.port }, () => {
          server.off("error", onError)
          // A failed accept (out of descriptors) costs that connection only, not the process.
          server.on("error", () => {})
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
    const socketServer = SocketServer.SocketServer.of({
      address: { _tag: "TcpAddress", hostname: address.address, port: address.port },
      run: <R, E, _>(handler: (socket: Socket.Socket) => Effect.Effect<_, E, R>) =>
        Effect.gen(function*() {
          const fibers = yield* FiberSet.make()
          const runFork = yield* FiberSet.runtime(fibers)<R>()
          // The RPC server's connection handler also takes headers that it adds to every request
          // of the connection (as it does for a WebSocket's); they name the connection for `admit`.
          const serveWith = handler as (
            socket: Socket.Socket,
            headers: ReadonlyArray<[string, string]>
          ) => Effect.Effect<_, E, R>
          const serve = (conn: Net.Socket, number: string, pass: (chunk: Uint8Array) => boolean) => {
            const socket = NodeSocket.fromDuplex(
              Effect.acquireRelease(Effect.succeed(conn), (c) => Effect.sync(() => c.destroy()))
            ).pipe(Effect.map((socket) => gated(socket, conn, pass)))
            runFork(
              Effect.catchAllCause(
                Effect.flatMap(socket, (s) => serveWith(s, [[CONNECTION_HEADER, number]])),
                () => Effect.void
              )
            )
          }
          /** `socket`, whose bytes go through `pass` while its connection is a stranger. */
          const gated = (socket: Socket.Socket, conn: Net.Socket, pass: (chunk: Uint8Array) => boolean) => {
            const guard = <A>(read: (chunk: Uint8Array) => A) => (chunk: Uint8Array | string) => {
              const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk
              if (strangers.has(conn) && !pass(bytes)) return close(conn)
              return read(bytes)
            }
            return Socket.Socket.of({
              ...socket,
              run: (read, runOptions) => socket.run(guard(read), runOptions),
              runRaw: (read, runOptions) => socket.runRaw(guard(read), runOptions)
            })
          }
          rpc = serve
          for (const [conn, number, pass] of waiting.splice(0)) if (!conn.destroyed) serve(conn, number, pass)
          return yield* Effect.never
        }).pipe(Effect.scoped)
    })
    return {
      server: socketServer,
      admit: (headers) => {
        const conn = rpcStrangers.get(headers[CONNECTION_HEADER] ?? "")
        if (conn === undefined) return
        rpcStrangers.delete(headers[CONNECTION_HEADER]!)
        admit(conn)
      }
    }
  })
