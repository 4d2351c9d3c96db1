/** Helpers of the cluster tests: waiting on membership, raw sockets. */
import { ClusterNode, Partitioned } from "@vela/cluster"
import { Backend, Memory, Topology, Vela } from "@vela/core"
import type { Duration } from "effect"
import { Effect, Stream } from "effect"
import * as Net from "node:net"

/** Waits (at most `timeout`) until `node` sees exactly `expected` live members. */
export const awaitMembers = (
  node: ClusterNode.ClusterNode["Type"],
  expected: ReadonlyArray<string>,
  timeout: Duration.DurationInput = "10 seconds"
) => {
  const want = [...expected].sort().join(",")
  return node.members.changes.pipe(
    Stream.filter((members) => members.join(",") === want),
    Stream.take(1),
    Stream.runDrain,
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => new Error(`${node.id} did not see members ${want}`)
    })
  )
}

/** Writes `bytes` to `host:port` and resolves with what came back when the peer closed or after `waitMs`. */
export const sendRaw = (port: number, bytes: Uint8Array | string, waitMs = 300) =>
  Effect.async<{ readonly closed: boolean; readonly received: number }, Error>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    let received = 0
    let done = false
    const finish = (closed: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed({ closed, received }))
    }
    const timer = setTimeout(() => finish(false), waitMs)
    socket.on("data", (chunk) => received += chunk.length)
    socket.on("close", () => finish(true))
    socket.on("error", () => finish(true))
    socket.on("connect", () => socket.write(bytes))
    return Effect.sync(() => finish(false))
  })

/** A port that was free a moment ago on 127.0.0.1. */
export const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** A node with a memory backend and the `Partitioned` topology, living in the current scope. */
export const startPartitioned = (
  seeds: ReadonlyArray<string>,
  options: { readonly replicas?: number; readonly secret?: string } = {}
) =>
  Effect.gen(function*() {
    const node = yield* ClusterNode.make({
      host: "127.0.0.1",
      port: 0,
      seeds,
      secret: options.secret ?? "s3cret",
      heartbeatInterval: "100 millis",
      failureTimeout: "1 second"
    })
    const topology = yield* Partitioned.make({ replicas: options.replicas ?? 1 }).pipe(
      Effect.provideService(ClusterNode.ClusterNode, node),
      Effect.provideServiceEffect(Backend.Backend, Memory.make())
    )
    return { node, topology }
  })

/** A cache named `name` on `topology`, closed with the current scope. */
export const cacheOn = <V>(topology: Topology.Topology["Type"], name: string, config: Vela.Config<V> = {}) =>
  Vela.make<V>({ ...config, name }).pipe(Effect.provideService(Topology.Topology, topology))
