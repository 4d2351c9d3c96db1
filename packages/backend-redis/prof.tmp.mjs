import { Local, Vela } from "@vela/core"
import { Effect, Exit, Layer, Scope } from "effect"
import { Redis } from "./dist/index.js"
const url = "redis://127.0.0.1:16999"
const OPS = 300000, C = 64
const timeE = (op) => {
  let n = 0
  const w = Effect.suspend(function loop() {
    if (n >= OPS) return Effect.void
    return Effect.zipRight(op(n++ % 10000), Effect.suspend(loop))
  })
  return Effect.runPromise(Effect.gen(function*() {
    const s = performance.now()
    yield* Effect.all(Array.from({ length: C }, () => w), { concurrency: "unbounded", discard: true })
    return Math.round(OPS / ((performance.now() - s) / 1000))
  }))
}
const scope = Effect.runSync(Scope.make())
const ctx = await Effect.runPromise(Layer.buildWithScope(Local.layer.pipe(Layer.provide(Redis.layer({ url }))), scope))
const cache = await Effect.runPromise(
  Vela.make({ name: "p" }).pipe(Effect.provide(ctx), Effect.provideService(Scope.Scope, scope))
)
await timeE((i) => cache.put("k" + i, { id: i, name: "User number " + i }))
console.log("get", await timeE((i) => cache.get("k" + i)))
console.log("put", await timeE((i) => cache.put("k" + i, { id: i, name: "User number " + i })))
await Effect.runPromise(Scope.close(scope, Exit.void))
