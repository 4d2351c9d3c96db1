// Throughput of the Redis backend through the Effect API against raw ioredis, same server, same run.
//
// What: `cache.put` / `cache.get` (Local topology, Redis backend, auto-pipelining, bus on and off)
// against ioredis `SET` / `GET` of the same JSON text, 64 concurrent workers each; and a NearCache
// hit against a Memory hit. Keys: 10,000, uniform; values: a small object (~60 bytes of JSON).
// Run: npx tsc -b packages/backend-redis && node packages/backend-redis/bench.mjs
// (set REDIS_URL to use a running server; otherwise a redis-server is spawned on a free port.)
import { Local, Memory, NearCache, Vela } from "@vela/core"
import { Effect, Exit, Layer, Scope } from "effect"
import { Redis as IORedis } from "ioredis"
import { spawn } from "node:child_process"
import { createServer, Socket } from "node:net"
import { Redis } from "./dist/index.js"

const CONCURRENCY = 64
const KEYS = 10_000
const OPS = Number(process.env.OPS ?? 200_000)
const ROUNDS = Number(process.env.ROUNDS ?? 3)

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
        if (Date.now() > deadline) reject(new Error(`redis-server did not start on ${port}`))
        else setTimeout(attempt, 20)
      })
      socket.connect(port, "127.0.0.1")
    }
    attempt()
  })

let server
let url = process.env.REDIS_URL
if (url === undefined) {
  const port = await freePort()
  server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore"
  })
  // Whatever happens next, the server goes with this process.
  process.on("exit", () => server.kill("SIGKILL"))
  await waitForPort(port)
  url = `redis://127.0.0.1:${port}`
}

const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`)
const valueOf = (i) => ({ id: `user:${i}`, name: `User number ${i}`, age: i % 90, active: i % 2 === 0 })

/** Runs `op(i)` OPS times over CONCURRENCY async workers; returns ops/s. */
const timePromises = async (op) => {
  let next = 0
  const worker = async () => {
    while (next < OPS) await op(next++ % KEYS)
  }
  const start = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return OPS / ((performance.now() - start) / 1000)
}

/** The same inside one Effect program: CONCURRENCY fibers; returns ops/s. */
const timeEffect = (op) => {
  let next = 0
  const worker = Effect.suspend(function loop() {
    if (next >= OPS) return Effect.void
    return Effect.zipRight(op(next++ % KEYS), Effect.suspend(loop))
  })
  return Effect.runPromise(Effect.gen(function*() {
    const start = performance.now()
    yield* Effect.all(Array.from({ length: CONCURRENCY }, () => worker), { concurrency: "unbounded", discard: true })
    return OPS / ((performance.now() - start) / 1000)
  }))
}

const raw = new IORedis(url, { enableAutoPipelining: true })
const rawKey = (i) => `raw:${keys[i]}`

const scope = Effect.runSync(Scope.make())
const cacheOn = async (topology, name) => {
  const context = await Effect.runPromise(Layer.buildWithScope(topology, scope))
  return Effect.runPromise(Vela.make({ name }).pipe(Effect.provide(context), Effect.provideService(Scope.Scope, scope)))
}

const redisLocal = Local.layer.pipe(Layer.provide(Redis.layer({ url })))
const quietLocal = Local.layer.pipe(Layer.provide(Redis.layer({ url, bus: false })))
const cache = await cacheOn(redisLocal, "bench")
const quiet = await cacheOn(quietLocal, "bench-quiet")
const memory = await cacheOn(Local.layer.pipe(Layer.provide(Memory.layer())), "bench-memory")
const near = await cacheOn(NearCache.layer({ ttl: "10 minutes" }).pipe(Layer.provide(redisLocal)), "bench-near")

const scenarios = {
  "raw ioredis SET": () => timePromises((i) => raw.set(rawKey(i), JSON.stringify(valueOf(i)))),
  "Effect put (bus on)": () => timeEffect((i) => cache.put(keys[i], valueOf(i))),
  "Effect put (bus off)": () => timeEffect((i) => quiet.put(keys[i], valueOf(i))),
  "raw ioredis GET": () => timePromises((i) => raw.get(rawKey(i)).then((text) => JSON.parse(text))),
  "Effect get": () => timeEffect((i) => cache.get(keys[i])),
  "Memory hit (Effect get)": () => timeEffect((i) => memory.get(keys[i])),
  "NearCache over Redis hit (Effect get)": () => timeEffect((i) => near.get(keys[i]))
}

// Fill what the reads read.
await Promise.all(keys.map((key, i) => raw.set(rawKey(i), JSON.stringify(valueOf(i)))))
await Effect.runPromise(
  Effect.forEach(
    keys,
    (key, i) => Effect.all([cache.put(key, valueOf(i)), memory.put(key, valueOf(i)), near.put(key, valueOf(i))]),
    {
      concurrency: 64,
      discard: true
    }
  )
)
// Check each side returns what was stored before timing it.
if (JSON.parse(await raw.get(rawKey(7))).name !== "User number 7") throw new Error("raw read is wrong")
for (const c of [cache, memory, near]) {
  const got = await Effect.runPromise(c.get(keys[7]))
  if (got.name !== "User number 7") throw new Error(`${c.name} read is wrong`)
}

const results = Object.fromEntries(Object.keys(scenarios).map((name) => [name, []]))
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(scenarios)) results[name].push(await run())
}
const best = (name) => Math.max(...results[name])
const fmt = (n) => `${Math.round(n).toLocaleString("en-US")} ops/s`
console.log(`concurrency ${CONCURRENCY}, ${OPS.toLocaleString("en-US")} ops per run, best of ${ROUNDS}`)
for (const name of Object.keys(scenarios)) {
  console.log(
    `${name.padEnd(40)} ${fmt(best(name)).padStart(16)}   runs: ${results[name].map((n) => Math.round(n)).join(", ")}`
  )
}
const ratio = (a, b) => `${(100 * best(a) / best(b)).toFixed(0)}%`
console.log(
  `put / SET: ${ratio("Effect put (bus on)", "raw ioredis SET")} (bus on), ${
    ratio("Effect put (bus off)", "raw ioredis SET")
  } (bus off)`
)
console.log(`get / GET: ${ratio("Effect get", "raw ioredis GET")}`)
console.log(`NearCache hit / Memory hit: ${ratio("NearCache over Redis hit (Effect get)", "Memory hit (Effect get)")}`)

await Effect.runPromise(Scope.close(scope, Exit.void))
raw.disconnect()
server?.kill("SIGKILL")
