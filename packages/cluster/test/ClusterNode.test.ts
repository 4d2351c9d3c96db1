import { assert, describe, it } from "@effect/vitest"
import { ClusterNode, Discovery } from "@vela/cluster"
import { NodeUnavailable } from "@vela/core"
import { Effect, Exit, Layer, Scope } from "effect"
import { pack } from "msgpackr"
import { awaitMembers, sendRaw } from "./utils.js"

const fast = { heartbeatInterval: "100 millis", failureTimeout: "800 millis" } as const

const start = (seeds: ReadonlyArray<string>, secret = "s3cret") =>
  ClusterNode.make({ host: "127.0.0.1", port: 0, seeds, secret, ...fast })

/** One batch on `node`'s data lane to `peer`: its results, or why there are none. */
const laneBatch = (node: ClusterNode.ClusterNode["Type"], peer: string) =>
  Effect.async<unknown>((resume) =>
    node.batch(peer, 0, [{ _tag: "Get", ns: "x", key: "k", watch: false }], (answer) => resume(Effect.succeed(answer)))
  )

/** The data lane's opening bytes (see internal/lane.ts), then `frames` as length-prefixed MessagePack. */
const lane = (...frames: ReadonlyArray<Uint8Array>) =>
  Buffer.concat([
    Buffer.from([0xc1, 0x56, 0x4c, 0x31]),
    ...frames.map((body) => Buffer.concat([Buffer.from(new Uint32Array([body.length]).buffer).reverse(), body]))
  ])

describe("ClusterNode", () => {
  it.live("three nodes converge from one seed; a leave is seen at once", () =>
    Effect.scoped(Effect.gen(function*() {
      const a = yield* start([])
      const b = yield* start([a.id])
      const cScope = yield* Scope.make()
      const c = yield* start([a.id]).pipe(Scope.extend(cScope))
      yield* Effect.all([
        awaitMembers(a, [a.id, b.id, c.id]),
        awaitMembers(b, [a.id, b.id, c.id]),
        awaitMembers(c, [a.id, b.id, c.id])
      ], { concurrency: "unbounded" })
      yield* Scope.close(cScope, Exit.void)
      // Well below the failure timeout: the graceful leave, not failure detection, removed it.
      yield* Effect.all([awaitMembers(a, [a.id, b.id], "500 millis"), awaitMembers(b, [a.id, b.id], "500 millis")])
    })), 20_000)

  it.live("a node with the wrong secret cannot join", () =>
    Effect.scoped(Effect.gen(function*() {
      const a = yield* start([])
      const b = yield* start([a.id])
      const intruder = yield* start([a.id], "guess")
      yield* awaitMembers(a, [a.id, b.id])
      yield* Effect.sleep("1 second")
      assert.deepStrictEqual(yield* a.members.get, [a.id, b.id].sort())
      assert.deepStrictEqual(yield* intruder.members.get, [intruder.id])
      const refused = yield* Effect.either(
        intruder.call(a.id, (client) => client.Size({ now: 0, ns: "x", members: [], skip: [], fresh: [] }))
      )
      assert.isTrue(refused._tag === "Left" && refused.left._tag === "NodeUnavailable")
      // The data lane proves the secret the same way: the intruder's batch never reaches a.
      const viaLane = yield* laneBatch(intruder, a.id)
      assert.instanceOf(viaLane, NodeUnavailable)
      assert.include(String(viaLane.cause), "does not know the cluster secret")
      // b's batch is served (a runs no topology: it answers so).
      const served = yield* laneBatch(b, a.id)
      assert.instanceOf(served, NodeUnavailable)
      assert.include(String(served.cause), "serves no cache topology")
    })), 20_000)

  it.live(
    "garbage or an oversized frame gets an error reply or a closed connection; the node keeps serving",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const a = yield* ClusterNode.make({
          host: "127.0.0.1",
          port: 0,
          secret: "s3cret",
          maxFrameBytes: 64 * 1024,
          ...fast
        })
        const b = yield* start([a.id])
        yield* awaitMembers(a, [a.id, b.id])
        const port = Number(a.id.split(":")[1])
        const garbage = [
          Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
          Buffer.from([0xc1, 0xc1, 0xc1, 0xff, 0x00]),
          Buffer.from([0xc0, 0xc0, 0x2a]),
          Buffer.alloc(64 * 1024, 0xd9),
          Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) & 0xff))
        ]
        for (const bytes of garbage) {
          const outcome = yield* sendRaw(port, bytes)
          assert.isTrue(outcome.closed || outcome.received > 0, `no reply to ${bytes.subarray(0, 8).toString("hex")}`)
        }
        // A string header announcing 1 GiB, then more bytes than maxFrameBytes: the connection is closed.
        const oversized = Buffer.concat([Buffer.from([0xdb, 0x40, 0x00, 0x00, 0x00]), Buffer.alloc(100 * 1024, 0x41)])
        assert.isTrue((yield* sendRaw(port, oversized, 2_000)).closed)
        // On the data lane: a frame over the bound, bytes that are not MessagePack, a request before
        // the handshake, or no handshake at all (closed after connectTimeout) close the connection.
        const laneGarbage = [
          Buffer.concat([lane(), Buffer.from([0x7f, 0xff, 0xff, 0xff])]),
          lane(Buffer.from([0xc1, 0xc1, 0xc1])),
          lane(pack([0, 0, [{ _tag: "Get", ns: "x", key: "k", watch: false }]])),
          lane()
        ]
        for (const bytes of laneGarbage) {
          assert.isTrue((yield* sendRaw(port, bytes, 3_000)).closed, `lane left open: ${bytes.toString("hex")}`)
        }
        // An honest node still joins and is served.
        const c = yield* start([a.id])
        yield* awaitMembers(a, [a.id, b.id, c.id])
        const served = yield* Effect.either(
          c.call(a.id, (client) => client.Size({ now: 0, ns: "x", members: [], skip: [], fresh: [] }))
        )
        assert.isTrue(served._tag === "Left" && served.left._tag === "RemoteFailure")
      })),
    20_000
  )

  it.live(
    "Discovery: a node with no seeds finds the cluster through a re-resolved hostname or a static list",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const a = yield* start([])
        const port = Number(a.id.split(":")[1])
        const viaDns = yield* Layer.build(Discovery.layerDns({ hostname: "localhost", port, interval: "200 millis" }))
        const b = yield* start([]).pipe(Effect.provide(viaDns))
        const viaList = yield* Layer.build(Discovery.layerStatic([a.id]))
        const c = yield* start([]).pipe(Effect.provide(viaList))
        yield* Effect.all([a, b, c].map((n) => awaitMembers(n, [a.id, b.id, c.id])), { concurrency: "unbounded" })
        const bad = yield* Effect.flip(Layer.build(Discovery.layerStatic(["nope"])))
        assert.strictEqual(bad._tag, "ConfigError")
      })),
    20_000
  )
})
