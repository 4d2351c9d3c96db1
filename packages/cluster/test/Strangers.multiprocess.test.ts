/**
 * Strangers (connections that do not know the secret) on the port of a node in a child process
 * (test/fixtures/node.mjs over the built `dist`): each attack's connections are closed within their
 * bound, the node's RSS grows by less than 50 MB, and members' reads, writes and joins succeed
 * during and after it. Speed is the attack benchmark's (packages/bench, `attack`), not this test's.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import * as Net from "node:net"
import { encode } from "../src/internal/frames.js"
import { MAGIC } from "../src/internal/lane.js"
import type { NodeProcess } from "./utils.js"
import { poll, spawnNode } from "./utils.js"

const CONNECT_TIMEOUT = 1_000
/** How long a stranger may stay: its bound, and a margin for a loaded machine. */
const WITHIN_MS = CONNECT_TIMEOUT + 5_000
const MiB = 1024 * 1024

const members = (node: NodeProcess, expected: ReadonlyArray<NodeProcess>) =>
  poll(Effect.flatMap(node.request<Array<string>>("members"), (seen) => {
    const want = expected.map((n) => n.id).sort().join(",")
    return seen.join(",") === want ? Effect.void : Effect.fail(new Error(`${node.id} sees ${seen.join(",")}`))
  }))

interface Outcome {
  /** Milliseconds from open to close of each connection. */
  readonly closedAfter: ReadonlyArray<number>
  /** How many connections got any bytes back. */
  readonly answered: number
}

/**
 * `count` connections to `port`, each sending `bytes` once open and then nothing; resolves once all
 * are closed by the node, fails if one is still open after `WITHIN_MS`.
 */
const strangers = (port: number, count: number, bytes: () => Buffer) =>
  Effect.async<Outcome, Error>((resume) => {
    const sockets: Array<Net.Socket> = []
    const closedAfter: Array<number> = []
    const answered = new Set<Net.Socket>()
    const timer = setTimeout(() => {
      sockets.forEach((socket) => socket.destroy())
      resume(Effect.fail(new Error(`${count - closedAfter.length} of ${count} strangers still open`)))
    }, WITHIN_MS)
    for (let i = 0; i < count; i++) {
      const opened = Date.now()
      const socket = Net.connect({ host: "127.0.0.1", port }, () => socket.write(bytes()))
      socket.on("data", () => answered.add(socket))
      socket.on("error", () => socket.destroy())
      socket.on("close", () => {
        closedAfter.push(Date.now() - opened)
        if (closedAfter.length < count) return
        clearTimeout(timer)
        resume(Effect.succeed({ closedAfter, answered: answered.size }))
      })
      sockets.push(socket)
    }
    return Effect.sync(() => {
      clearTimeout(timer)
      sockets.forEach((socket) => socket.destroy())
    })
  })

/** An `@effect/rpc` `Hello` request, framed as the node reads it. */
const rpcHello = () => encode({ _tag: "Request", id: "1", tag: "Hello", payload: { nonce: "n0nce" }, headers: [] })
/** The data lane's opening and its first handshake step, the client's nonce. */
const laneHello = () => Buffer.concat([MAGIC, encode("n0nce")])
/** Random bytes that do not open a data lane. */
const garbage = () => {
  const bytes = randomBytes(16 * 1024)
  bytes[0] = 0x01
  return bytes
}

describe("strangers on a node's port", () => {
  it.live(
    "are closed within their bound, cost under 50 MB, and keep no member from reading, writing or joining",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const settings = { REPLICAS: "0", CONNECT_TIMEOUT: String(CONNECT_TIMEOUT), MAX_CONNECTIONS: "64" }
        const a = yield* spawnNode(settings)
        const b = yield* spawnNode({ ...settings, SEEDS: a.id })
        yield* Effect.all([members(a, [a, b]), members(b, [a, b])], { concurrency: "unbounded" })
        // Without replicas, about half of these live on b only: a reads them over b's port.
        yield* a.request("putMany", { from: 0, count: 400, tag: "t" })
        const rssBefore = yield* b.request<number>("rss")

        /** Runs `attack` while a reads every key; checks the reads and b's RSS. */
        const during = <A>(name: string, attack: Effect.Effect<A, Error>) =>
          Effect.gen(function*() {
            const [outcome, read] = yield* Effect.all(
              [attack, a.request<number>("readMany", { from: 0, count: 400 })],
              {
                concurrency: "unbounded"
              }
            )
            assert.strictEqual(read, 400, `${name}: reads during the attack`)
            const rss = yield* b.request<number>("rss")
            assert.isBelow(rss - rssBefore, 50 * MiB, `${name}: RSS grew from ${rssBefore} to ${rss}`)
            return outcome
          })

        // A bin32 header announcing 2 GB: refused from the header, the megabyte behind it never kept.
        const bin32 = Buffer.concat([Buffer.from([0xc6, 0x7f, 0xff, 0xff, 0xff]), Buffer.alloc(MiB, 0x41)])
        yield* during("bin32", strangers(b.port, 20, () => bin32))
        // The same on the data lane, under its bound of maxFrameBytes but over the one of strangers.
        const laneFrame = Buffer.concat([MAGIC, Buffer.from([0x00, 0x10, 0x00, 0x00]), Buffer.alloc(MiB, 0x41)])
        yield* during("lane frame", strangers(b.port, 20, () => laneFrame))
        // Idle connections, many more than the 16 strangers of 64 connections: the oldest make room.
        yield* during("idle", strangers(b.port, 300, () => Buffer.alloc(0)))
        // A Hello is answered, then the connection is closed for not following up.
        const rpc = yield* during("rpc Hello", strangers(b.port, 50, rpcHello))
        assert.isAbove(rpc.answered, 0, "no RPC Hello was answered")
        const lane = yield* during("lane Hello", strangers(b.port, 50, laneHello))
        assert.isAbove(lane.answered, 0, "no lane Hello was answered")
        yield* during("garbage", strangers(b.port, 100, garbage))

        // A node joins through b while strangers keep b's connections full (20 more every 300 ms for
        // 4.5 s): theirs make way for its.
        const flood = Effect.forEach(
          Array.from({ length: 15 }, (_, i) => i),
          (i) => Effect.delay(strangers(b.port, 20, () => Buffer.alloc(0)), i * 300),
          { concurrency: "unbounded", discard: true }
        )
        const [, c] = yield* Effect.all([
          flood,
          Effect.zipRight(Effect.sleep("200 millis"), spawnNode({ ...settings, SEEDS: b.id }))
        ], { concurrency: "unbounded" })
        yield* Effect.all([a, b, c].map((n) => members(n, [a, b, c])), { concurrency: "unbounded" })
        yield* c.request("putMany", { from: 400, count: 100, tag: "t" })
        assert.strictEqual(yield* c.request("readMany", { from: 0, count: 500 }), 500)
        assert.strictEqual(yield* b.request("size"), 500)
      })),
    120_000
  )
})
