/**
 * The data lane: key operations between nodes on a connection of their own, as length-prefixed
 * MessagePack frames, without `@effect/rpc`'s fiber, envelope and stream per request. Membership,
 * the handshake of the RPC connection and every other request stay on `@effect/rpc`; `Batch`es,
 * the hot path of every topology, go here.
 *
 * Why: a `Batch` over `@effect/rpc` cost the caller a request fiber, a timeout fiber and a Schema
 * pass, and the server a fiber and a stream element; with those gone a remote get goes from about
 * 40k to well over 100k operations a second across three processes (see the cluster benchmark).
 *
 * Wire: a lane connection opens with `MAGIC` (its first byte, 0xc1, is never the first byte of an
 * RPC frame's length, so the listener tells lanes from RPC connections by it). Then the same
 * challenge–response as the RPC handshake: the client sends a nonce, the server its own nonce and
 * a proof, the client its member record and a proof, the server `true`. Only then are requests
 * `[id, now, ops]` accepted, each answered by `[id, results]` or `[id, null, message]`, in any
 * order. Frames are those of `frames.ts`; one longer than `maxFrameBytes`, bytes that do not
 * decode, or a frame that does not match its Schema (`protocol.ts`, the same definitions as the
 * RPCs') close the connection. Until the handshake is done the listener bounds the connection's
 * time and bytes.
 */
import { NodeUnavailable } from "@vela/core"
import type * as Net from "node:net"
import type { Secret } from "./auth.js"
import { nonce as freshNonce } from "./auth.js"
import { encode, reader } from "./frames.js"
import type { MemberRecord, Op, OpResult } from "./protocol.js"
import { isLaneChallenge, isLaneProof, isLaneRequest, isOpResults } from "./protocol.js"

export const MAGIC = Buffer.from([0xc1, 0x56, 0x4c, 0x31])

// Server

export interface ServeOptions {
  readonly id: string
  readonly secret: Secret
  readonly maxFrameBytes: number
  /** Runs a batch from an authenticated member; `answer` is called once with its results or a failure. */
  readonly batch: (
    from: string,
    now: number,
    ops: ReadonlyArray<Op>,
    answer: (results: ReadonlyArray<OpResult> | string) => void
  ) => void
  /** A peer refused because it does not know the secret (other bad connections close silently). */
  readonly refused: (reason: string) => void
}

/**
 * Serves one lane connection: returns what reads its bytes, from the first (the opening) on.
 * `admit` is called once the peer proved the secret; until then the listener bounds the time and
 * the bytes the connection may take.
 */
export const serve = (socket: Net.Socket, admit: () => void, options: ServeOptions): (chunk: Buffer) => void => {
  let magic = false
  let head: Buffer | undefined
  let serverNonce: string | undefined
  let clientNonce: string | undefined
  let member: string | undefined
  const close = () => {
    socket.destroy()
  }
  const send = (message: unknown) => {
    if (!socket.destroyed) socket.write(encode(message))
  }
  const onFrame = (message: unknown) => {
    if (socket.destroyed) return
    if (member !== undefined) {
      if (!isLaneRequest(message)) return close()
      const id = message[0]
      return options.batch(member, message[1], message[2], (results) => {
        send(typeof results === "string" ? [id, null, results] : [id, results])
      })
    }
    if (clientNonce === undefined) {
      if (typeof message !== "string") return close()
      clientNonce = message
      serverNonce = freshNonce()
      return send([options.id, serverNonce, options.secret.prove("server", clientNonce, serverNonce, options.id)])
    }
    if (!isLaneProof(message)) return close()
    const expected = options.secret.prove("client", serverNonce!, clientNonce, message[0].id)
    if (!options.secret.check(expected, message[1])) {
      options.refused(`${message[0].id} does not know the cluster secret`)
      return close()
    }
    member = message[0].id
    admit()
    send(true)
  }
  const read = reader(options.maxFrameBytes, onFrame, close)
  return (chunk) => {
    if (magic) return read(chunk)
    const buffer = head === undefined ? chunk : Buffer.concat([head, chunk])
    head = undefined
    const length = Math.min(buffer.length, MAGIC.length)
    if (!buffer.subarray(0, length).equals(MAGIC.subarray(0, length))) {
      return close()
    }
    if (buffer.length < MAGIC.length) {
      head = buffer
      return
    }
    magic = true
    if (buffer.length > MAGIC.length) read(buffer.subarray(MAGIC.length))
  }
}

// Client

export interface LaneOptions {
  readonly self: MemberRecord
  readonly peer: string
  readonly secret: Secret
  readonly maxFrameBytes: number
  readonly connectTimeout: number
  readonly requestTimeout: number
  /**
   * The peer closes a connection idle this long; the lane closes itself, with nothing in flight,
   * after half of it, so that the peer never cuts it under a request.
   */
  readonly idleTimeout: number
  /** Opens the transport (TCP, or TLS) to the peer; `onOpen` once it is ready to write. */
  readonly open: (onOpen: () => void) => Net.Socket
  /** The lane closed (connection lost, refused, or `close()`); the owner forgets it. */
  readonly onClose: () => void
}

export interface Lane {
  /** Sends `ops`; `done` is called once, with the results in order or why there are none. */
  readonly send: (
    now: number,
    ops: ReadonlyArray<Op>,
    done: (answer: ReadonlyArray<OpResult> | NodeUnavailable) => void
  ) => void
  readonly close: () => void
}

interface Request {
  readonly id: number
  readonly frame: Buffer
  readonly done: (answer: ReadonlyArray<OpResult> | NodeUnavailable) => void
  readonly timer: ReturnType<typeof setTimeout>
  readonly count: number
}

/**
 * A lane to one peer: connects and proves the secret at once, queues requests until then, and
 * closes for good on any failure, or once idle (the owner opens a new one for the next request). A
 * request times out after `requestTimeout` on its own; the connection stays.
 */
export const connect = (options: LaneOptions): Lane => {
  const { peer } = options
  const unavailable = (cause: unknown) => new NodeUnavailable({ node: peer, cause })
  const inflight = new Map<number, Request>()
  const queued: Array<Request> = []
  let nextId = 0
  let ready = false
  let closed = false
  const nonce = freshNonce()
  let greeted = false

  const close = (cause: unknown) => {
    if (closed) return
    closed = true
    clearTimeout(connectTimer)
    clearInterval(idleTimer)
    socket.destroy()
    options.onClose()
    const failure = unavailable(cause)
    for (const request of queued.splice(0)) finish(request, failure)
    for (const request of inflight.values()) finish(request, failure)
    inflight.clear()
  }
  const finish = (request: Request, answer: ReadonlyArray<OpResult> | NodeUnavailable) => {
    clearTimeout(request.timer)
    request.done(answer)
  }
  const write = (request: Request) => {
    inflight.set(request.id, request)
    socket.write(request.frame)
  }

  const onFrame = (message: unknown) => {
    if (closed) return
    if (ready) {
      if (!Array.isArray(message) || typeof message[0] !== "number") return close("a malformed reply")
      const request = inflight.get(message[0])
      if (request === undefined) return // timed out already
      inflight.delete(request.id)
      const results = message[1]
      if (results === null) return finish(request, unavailable(typeof message[2] === "string" ? message[2] : "refused"))
      if (!isOpResults(results) || results.length !== request.count) {
        return finish(request, unavailable(`${peer} answered with a malformed batch`))
      }
      return finish(request, results)
    }
    if (!greeted) {
      if (!isLaneChallenge(message)) return close("a malformed handshake")
      const expected = options.secret.prove("server", nonce, message[1], message[0])
      if (!options.secret.check(expected, message[2])) return close(`${peer} does not know the cluster secret`)
      greeted = true
      socket.write(encode([options.self, options.secret.prove("client", message[1], nonce, options.self.id)]))
      return
    }
    if (message !== true) return close("the handshake was refused")
    ready = true
    clearTimeout(connectTimer)
    for (const request of queued.splice(0)) write(request)
  }

  const connectTimer = setTimeout(() => close("connection timed out"), options.connectTimeout)
  // Idle: no request sent between two looks a quarter of `idleTimeout` apart, and none waiting.
  let nextIdAtLastLook = 0
  const idleTimer = setInterval(() => {
    if (nextId === nextIdAtLastLook && inflight.size === 0 && queued.length === 0) close("idle")
    nextIdAtLastLook = nextId
  }, options.idleTimeout / 4)
  idleTimer.unref()
  const socket = options.open(() => socket.write(Buffer.concat([MAGIC, encode(nonce)])))
  socket.setNoDelay(true)
  socket.on("data", reader(options.maxFrameBytes, onFrame, close))
  socket.on("error", (error) => close(error))
  socket.on("close", () => close("connection closed"))

  return {
    send: (now, ops, done) => {
      if (closed) return done(unavailable("connection closed"))
      const id = nextId++
      const request: Request = {
        id,
        frame: encode([id, now, ops]),
        done,
        count: ops.length,
        timer: setTimeout(() => {
          if (inflight.delete(id) || queued.includes(request)) {
            const at = queued.indexOf(request)
            if (at >= 0) queued.splice(at, 1)
            done(unavailable("request timed out"))
          }
        }, options.requestTimeout)
      }
      if (ready) write(request)
      else queued.push(request)
    },
    close: () => close("the node is closing")
  }
}
