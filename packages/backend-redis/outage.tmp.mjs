import { Local, Vela } from "@vela/core"
import { Effect, Exit, Layer, Scope } from "effect"
import { spawn } from "node:child_process"
import { Redis } from "./dist/index.js"
const port = 17999
const start = () =>
  spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore"
  })
let server = start()
process.on("exit", () => server.kill("SIGKILL"))
await new Promise((r) => setTimeout(r, 300))
const scope = Effect.runSync(Scope.make())
const ctx = await Effect.runPromise(
  Layer.buildWithScope(Local.layer.pipe(Layer.provide(Redis.layer({ url: `redis://127.0.0.1:${port}` }))), scope)
)
const cache = await Effect.runPromise(
  Vela.make({ name: "o" }).pipe(Effect.provide(ctx), Effect.provideService(Scope.Scope, scope))
)
await Effect.runPromise(cache.put("k", "v"))
const time = async (label, eff) => {
  const s = performance.now()
  const exit = await Effect.runPromiseExit(eff)
  console.log(
    label,
    (performance.now() - s).toFixed(2),
    "ms",
    exit._tag,
    exit._tag === "Failure" ? exit.cause.error?._tag ?? exit.cause._tag : ""
  )
}
server.kill("SIGKILL")
await new Promise((r) => server.once("exit", r))
await time("get right after kill", cache.get("k"))
await time("put after kill", cache.put("k", "w"))
await new Promise((r) => setTimeout(r, 200))
await time("get 200ms later", cache.get("k"))
server = start()
const s = performance.now()
while (true) {
  const exit = await Effect.runPromiseExit(cache.put("k", "back"))
  if (exit._tag === "Success") break
  await new Promise((r) => setTimeout(r, 5))
}
console.log("recovered after restart in", (performance.now() - s).toFixed(0), "ms")
server.kill("SIGSTOP")
await time("get while frozen (commandTimeout 1s)", cache.get("k"))
server.kill("SIGCONT")
await Effect.runPromise(Scope.close(scope, Exit.void))
