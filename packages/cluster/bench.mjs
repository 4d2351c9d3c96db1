// Remote `get` throughput of the Partitioned topology across three processes, against raw ioredis
// `GET` on a local redis-server in the same run, and a local-owner get against Local (Memory).
//
// What: this process is node A; it spawns nodes B and C (this script with `--peer`). 10,000 keys
// (small objects, ~60 bytes of JSON) are written through A with replicas 0 and 1. Measured, with
// 64 concurrent workers over uniformly drawn keys: `cache.get` of keys whose holders are all on
// other processes (every read is an RPC, batched per peer per event-loop turn), `cache.get` of keys
// A owns, `cache.get` on Memory + Local, and ioredis `GET` on the same values' JSON; and `cache.put`
// of the remote keys (acknowledged once every holder applied it).
// Then Replicated over three processes: `cache.get` (always local) and `cache.put` (applied here,
// acknowledged once both peers applied it).
// Run: npx tsc -b packages/cluster && node packages/cluster/bench.mjs   (OPS=… ROUNDS=… to change)
import { ClusterNode, HashRing, Partitioned, Replicated } from "@vela/cluster"
import { Backend, Local, Memory, Topology, Vela } from "@vela/core"
import { Effect, Exit, Layer, Scope } from "effect"
import { spawn } from "node:child_process"
import { createServer, Socket } from "node:net"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"

const SECRET = "bench"
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64)
const KEYS = 10_000
const OPS = Number(process.env.OPS ?? 100_000)
const ROUNDS = Number(process.env.ROUNDS ?? 3)
const valueOf = (i) => ({ id: `user:${i}`, name: `User number ${i}`, age: i % 90, active: i % 2 === 0 })

const startNode = (port, seeds, replicas) =>
  Effect.gen(function*() {
    const node = yield* ClusterNode.make({ host: "127.0.0.1", port, seeds, secret: SECRET })
    // replicas -1: the Replicated topology.
    const topology = yield* (replicas < 0 ? Replicated.make() : Partitioned.make({ replicas })).pipe(
      Effect.provideService(ClusterNode.ClusterNode, node),
      Effect.provideServiceEffect(Backend.Backend, Memory.make())
    )
    return { node, topology }
  })

if (process.argv[2] === "--peer") {
  // A peer: serves until its parent closes stdin.
  const [seed, replicas] = [process.argv[3], Number(process.argv[4])]
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const { node } = yield* startNode(0, [seed], replicas)
    process.stdout.write(`${node.id}\n`)
    yield* Effect.async((resume) => {
      process.stdin.on("end", () => resume(Effect.void))
      process.stdin.resume()
    })
  })))
  process.exit(0)
}

const freePort = () =>
  new Promise((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

const waitForPort = (port) =>
  new Promise((resolve, reject) => {
    const deadline = Date.now() + 10_000
    const attempt = () => {
      const socket = new Socket()
      socket.once("connect", () => {
        socket.destroy()
        resolve()
      })
      socket.once("error", () => {
        socket.destroy()
        if (Date.now() > deadline) reject(new Error(`port ${port} did not open`))
        else setTimeout(attempt, 20)
      })
      socket.connect(port, "127.0.0.1")
    }
    attempt()
  })

const children = []
const spawnPeer = (seed, replicas) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "--peer", seed, String(replicas)], {
      stdio: ["pipe", "pipe", "inherit"]
    })
    children.push(child)
    readline.createInterface({ input: child.stdout }).once("line", resolve)
    child.once("exit", (code) => reject(new Error(`peer exited with ${code}`)))
  })
const stopAll = () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL")
}
process.on("exit", stopAll)

/** Runs `op(i)` OPS times with CONCURRENCY workers; ops/s and latency percentiles in µs. */
const measure = async (label, op) => {
  const results = []
  for (let round = 0; round < ROUNDS; round++) {
    const latencies = new Float64Array(OPS)
    let next = 0
    const started = performance.now()
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < OPS) {
        const i = next++
        const t = performance.now()
        await op(i)
        latencies[i] = performance.now() - t
      }
    }))
    const elapsed = performance.now() - started
    latencies.sort()
    results.push({
      ops: Math.round(OPS / (elapsed / 1000)),
      p50: Math.round(latencies[Math.floor(OPS * 0.5)] * 1000),
      p99: Math.round(latencies[Math.floor(OPS * 0.99)] * 1000)
    })
  }
  const best = results.reduce((a, b) => (a.ops > b.ops ? a : b))
  console.log(`${label.padEnd(48)} ${String(best.ops).padStart(9)} ops/s   p50 ${best.p50} µs   p99 ${best.p99} µs`)
  return best
}

const randomKeys = (pool) => Array.from({ length: OPS }, () => pool[Math.floor(Math.random() * pool.length)])

// Raw ioredis on a local redis-server, same run.
try {
  const { Redis: IORedis } = await import("ioredis")
  const port = await freePort()
  const server = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" }
  )
  children.push(server)
  await waitForPort(port)
  const redis = new IORedis({ port, host: "127.0.0.1" })
  const pipeline = redis.pipeline()
  for (let i = 0; i < KEYS; i++) pipeline.set(`user:${i}`, JSON.stringify(valueOf(i)))
  await pipeline.exec()
  const draws = randomKeys(Array.from({ length: KEYS }, (_, i) => `user:${i}`))
  await measure("ioredis GET (raw, redis-server)", (i) => redis.get(draws[i]))
  redis.disconnect()
  server.kill("SIGKILL")
} catch (error) {
  console.log(`ioredis GET: skipped (${error.message})`)
}

// Local (Memory) for reference.
{
  const scope = Effect.runSync(Scope.make())
  const cache = await Effect.runPromise(
    Vela.make({ name: "bench" }).pipe(
      Effect.provide(Local.layer.pipe(Layer.provide(Memory.layer()))),
      Scope.extend(scope)
    )
  )
  for (let i = 0; i < KEYS; i++) await Effect.runPromise(cache.put(`user:${i}`, valueOf(i)))
  const draws = randomKeys(Array.from({ length: KEYS }, (_, i) => `user:${i}`))
  await measure("Local (Memory) get", (i) => Effect.runPromise(cache.get(draws[i])))
  await Effect.runPromise(Scope.close(scope, Exit.void))
}

for (const replicas of [0, 1]) {
  const scope = Effect.runSync(Scope.make())
  const { node, topology } = await Effect.runPromise(Scope.extend(startNode(0, [], replicas), scope))
  await Promise.all([spawnPeer(node.id, replicas), spawnPeer(node.id, replicas)])
  const deadline = Date.now() + 10_000
  while ((await Effect.runPromise(node.members.get)).length < 3) {
    if (Date.now() > deadline) throw new Error("the cluster did not form")
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const cache = await Effect.runPromise(
    Vela.make({ name: "bench" }).pipe(Effect.provideService(Topology.Topology, topology), Scope.extend(scope))
  )
  const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`)
  await Effect.runPromise(
    Effect.forEach(keys, (key, i) => cache.put(key, valueOf(i)), { concurrency: 64, discard: true })
  )
  const ring = HashRing.make(await Effect.runPromise(node.members.get))
  const remote = keys.filter((key) => !HashRing.holders(ring, key, 1 + replicas).includes(node.id))
  const owned = keys.filter((key) => HashRing.owner(ring, key) === node.id)
  const remoteDraws = randomKeys(remote)
  const ownedDraws = randomKeys(owned)
  await measure(
    `Partitioned r${replicas}: remote get (${remote.length} keys)`,
    (i) => Effect.runPromise(cache.get(remoteDraws[i]))
  )
  await measure(
    `Partitioned r${replicas}: put (acknowledged by ${1 + replicas} holder${replicas === 0 ? "" : "s"})`,
    (i) => Effect.runPromise(cache.put(remoteDraws[i], valueOf(i)))
  )
  await measure(`Partitioned r${replicas}: local-owner get`, (i) => Effect.runPromise(cache.get(ownedDraws[i])))
  for (const child of children.splice(0)) child.stdin?.end()
  await Effect.runPromise(Scope.close(scope, Exit.void))
}
{
  const scope = Effect.runSync(Scope.make())
  const { node, topology } = await Effect.runPromise(Scope.extend(startNode(0, [], -1), scope))
  await Promise.all([spawnPeer(node.id, -1), spawnPeer(node.id, -1)])
  const deadline = Date.now() + 10_000
  while ((await Effect.runPromise(node.members.get)).length < 3) {
    if (Date.now() > deadline) throw new Error("the cluster did not form")
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const cache = await Effect.runPromise(
    Vela.make({ name: "bench" }).pipe(Effect.provideService(Topology.Topology, topology), Scope.extend(scope))
  )
  const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`)
  const draws = randomKeys(keys)
  await measure("Replicated: put (acknowledged by 2 peers)", (i) => Effect.runPromise(cache.put(draws[i], valueOf(i))))
  await measure("Replicated: get (local)", (i) => Effect.runPromise(cache.get(draws[i])))
  for (const child of children.splice(0)) child.stdin?.end()
  await Effect.runPromise(Scope.close(scope, Exit.void))
}
stopAll()
process.exit(0)
