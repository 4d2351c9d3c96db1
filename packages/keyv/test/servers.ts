/**
 * What the Keyv tests run on besides Memory and SQLite: a real `redis-server` on a free loopback
 * port (killed by `stop`), and clusters of in-process nodes on 127.0.0.1 (closed by `close`).
 * Without `redis-server` on the PATH the Redis cases are skipped, unless `VELA_REQUIRE_REDIS=1`.
 */
import { ClusterNode, Partitioned, Replicated } from "@vela/cluster"
import { Backend, Memory, Topology } from "@vela/core"
import { Effect, Exit, Layer, Scope } from "effect"
import { spawn } from "node:child_process"
import { accessSync, constants } from "node:fs"
import { createServer, Socket } from "node:net"
import { delimiter, join } from "node:path"

const onPath = (binary: string) =>
  (process.env.PATH ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, binary), constants.X_OK)
      return true
    } catch {
      return false
    }
  })

/** Whether the Redis cases run; throws when CI requires them and `redis-server` is missing. */
export const redisAvailable = (() => {
  if (onPath("redis-server")) return true
  const missing = "redis-server is not on the PATH (Debian/Ubuntu: apt-get install redis-server)"
  if (process.env.VELA_REQUIRE_REDIS === "1") throw new Error(`VELA_REQUIRE_REDIS=1 but ${missing}`)
  console.warn(`@vela/keyv: Redis cases skipped: ${missing}`)
  return false
})()

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const listening = (port: number) => {
  const socket = new Socket()
  return new Promise<boolean>((resolve) => {
    socket.once("connect", () => resolve(true))
    socket.once("error", () => resolve(false))
    socket.connect(port, "127.0.0.1")
  }).finally(() => socket.destroy())
}

/** A `redis-server` without persistence, up within ten seconds or an error. */
export const startRedis = async (): Promise<{ readonly url: string; readonly stop: () => Promise<void> }> => {
  const port = await freePort()
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" }
  )
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve()
      child.once("exit", () => resolve())
      child.kill("SIGKILL")
    })
  const deadline = Date.now() + 10_000
  while (!(await listening(port))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop()
      throw new Error(`redis-server did not listen on ${port} within 10 s`)
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return { url: `redis://127.0.0.1:${port}`, stop }
}

/**
 * `count` nodes of one topology over Memory backends, each seeded with the first, once every node
 * sees them all. The failure timeout is long: the TTL tests move `Date` forward.
 */
export const startCluster = async (
  kind: "Partitioned" | "Replicated",
  count: number
): Promise<{ readonly topologies: ReadonlyArray<Topology.Topology["Type"]>; readonly close: () => Promise<void> }> => {
  const scope = Effect.runSync(Scope.make())
  const node = (seeds: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const node = yield* ClusterNode.make({
        host: "127.0.0.1",
        port: 0,
        seeds,
        secret: "keyv-test",
        heartbeatInterval: "100 millis",
        failureTimeout: "1 minute"
      })
      const backend = yield* Memory.make()
      const topology = yield* (kind === "Partitioned" ? Partitioned.make() : Replicated.make()).pipe(
        Effect.provideService(ClusterNode.ClusterNode, node),
        Effect.provideService(Backend.Backend, backend)
      )
      return { node, topology }
    })
  try {
    const started = await Effect.runPromise(
      Effect.gen(function*() {
        const first = yield* node([])
        const nodes = [first]
        for (let i = 1; i < count; i++) nodes.push(yield* node([first.node.id]))
        return nodes
      }).pipe(Scope.extend(scope))
    )
    const deadline = Date.now() + 15_000
    while (started.some(({ node }) => node.currentMembers().length < count)) {
      if (Date.now() > deadline) throw new Error(`${kind}: the ${count} nodes did not see each other within 15 s`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return {
      topologies: started.map(({ topology }) => topology),
      close: () => Effect.runPromise(Scope.close(scope, Exit.void))
    }
  } catch (error) {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    throw error
  }
}

/** The facade's `topology` option for a topology already running. */
export const on = (topology: Topology.Topology["Type"]) => Layer.succeed(Topology.Topology, topology)
