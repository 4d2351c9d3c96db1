/**
 * A real three-master Redis Cluster for tests: three `redis-server --cluster-enabled yes` on free
 * loopback ports (each with its cluster-bus port, +10000, free too), joined by
 * `redis-cli --cluster create`, and killed with their temporary directory when the scope closes.
 */
import { Context, Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { kill, spawnServer } from "./RedisServer.js"

export class RedisCluster extends Context.Tag("test/RedisCluster")<RedisCluster, {
  readonly nodes: ReadonlyArray<string>
}>() {}

const canListen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = createServer()
    server.once("error", () => resolve(false))
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
  })

/** A port that is free along with its cluster-bus port (port + 10000). */
const clusterPort: Effect.Effect<number> = Effect.promise(async () => {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000)
    if ((await canListen(port)) && (await canListen(port + 10_000))) return port
  }
  throw new Error("no free port pair for a cluster node")
})

const run = (command: string, args: ReadonlyArray<string>): Effect.Effect<string> =>
  Effect.async<string>((resume) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (chunk) => output += chunk)
    child.stderr.on("data", (chunk) => output += chunk)
    child.once("exit", (code) =>
      resume(code === 0 ? Effect.succeed(output) : Effect.die(new Error(`${command} failed (${code}): ${output}`))))
    return Effect.sync(() =>
      child.kill("SIGKILL")
    )
  })

/** Polls until every node reports `cluster_state:ok`, for at most twenty seconds. */
const awaitHealthy = (ports: ReadonlyArray<number>): Effect.Effect<void> =>
  Effect.gen(function*() {
    const deadline = Date.now() + 20_000
    while (true) {
      const states = yield* Effect.forEach(ports, (port) =>
        run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "cluster", "info"]))
      if (
        states.every((state) =>
          state.includes("cluster_state:ok")
        )
      ) return
      if (Date.now() > deadline) return yield* Effect.die(new Error(`cluster not ready: ${states.join(" | ")}`))
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
    }
  })

export const layer: Layer.Layer<RedisCluster> = Layer.scoped(
  RedisCluster,
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "vela-redis-cluster-"))),
      (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true }))
    )
    const ports = yield* Effect.forEach([0, 1, 2], () => clusterPort)
    yield* Effect.forEach(ports, (port) =>
      Effect.acquireRelease(
        spawnServer(port, [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          `nodes-${port}.conf`,
          "--cluster-node-timeout",
          "2000",
          "--dir",
          dir
        ], dir),
        kill
      ), { concurrency: "unbounded" })
    const nodes = ports.map((port) => `127.0.0.1:${port}`)
    yield* run("redis-cli", ["--cluster", "create", ...nodes, "--cluster-replicas", "0", "--cluster-yes"])
    yield* awaitHealthy(ports)
    return RedisCluster.of({ nodes })
  })
)
