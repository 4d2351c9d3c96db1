/**
 * The atomic operations of the README on the embedded default (Memory + Local): a rate limiter on
 * `increment`, one-time tokens on `take`, a cart kept by `update`, a sliding session on `ttl` and
 * `touch`, through the Effect API; then the Promise facade, with `memoize` and `namespace`. Every
 * step checks its own result, so a wrong answer ends the run with an error. Run: `npm run build && node examples/dist/operations.js`.
 */
import { Vela } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Context, Duration, Effect, Layer, Option } from "effect"
import * as assert from "node:assert/strict"

class Counters extends Context.Tag("Counters")<Counters, Vela.Cache<number>>() {}
class Carts extends Context.Tag("Carts")<Carts, Vela.Cache<ReadonlyArray<string>>>() {}

const line = (text: string) => Effect.sync(() => console.log(text))

const LIMIT = 100

/** Allowed while the caller's count in the current one-minute window is at most LIMIT. */
const allow = (counters: Vela.Cache<number>, user: string) =>
  Effect.map(counters.increment(`rate:${user}`, 1, { ttl: "1 minute" }), (count) => count <= LIMIT)

const program = Effect.gen(function*() {
  const counters = yield* Counters
  const carts = yield* Carts
  yield* line("── Effect API ─────────────────────────────────────────")

  const answers = yield* Effect.all(Array.from({ length: 1_000 }, () => allow(counters, "alice")), {
    concurrency: "unbounded"
  })
  const allowed = answers.filter(Boolean).length
  assert.equal(allowed, LIMIT)
  assert.equal(yield* counters.get("rate:alice"), 1_000)
  yield* line(`1,000 hits, limit ${LIMIT}/min        → ${allowed} allowed; the counter holds 1,000`)

  yield* counters.put("token:abc", 42, { ttl: "5 minutes" })
  const takes = yield* Effect.all(Array.from({ length: 100 }, () => counters.take("token:abc")), {
    concurrency: "unbounded"
  })
  const winners = takes.filter(Option.isSome)
  assert.equal(winners.length, 1)
  yield* line(`100 concurrent takes of a token   → ${winners.length} winner, the token is gone`)

  yield* carts.put("cart:1", [])
  yield* Effect.all(
    Array.from({ length: 100 }, (_, i) => carts.update("cart:1", (items) => [...items, `item ${i}`])),
    { concurrency: "unbounded" }
  )
  const cart = yield* carts.get("cart:1")
  assert.equal(cart.length, 100)
  yield* line(`100 concurrent updates of a cart  → ${cart.length} items, none lost`)
  assert.ok(Option.isNone(yield* carts.update("cart:404", (items) => items)))

  yield* counters.put("session:s1", 1, { ttl: "30 minutes" })
  yield* counters.touch("session:s1", "2 hours")
  const left = yield* counters.ttl("session:s1")
  assert.ok(Option.isSome(left) && Duration.toMinutes(left.value) > 119)
  yield* line(
    `touch a session for 2 hours       → ttl ${Math.round(Duration.toMinutes(Option.getOrThrow(left)))} minutes`
  )
})

const facade = async () => {
  console.log("── Promise facade ─────────────────────────────────────")
  await using counters = createCache<number>({ name: "counters" })
  const hits = await Promise.all(Array.from({ length: 1_000 }, () => counters.increment("visits")))
  assert.equal(Math.max(...hits), 1_000)
  assert.equal(new Set(hits).size, 1_000)
  console.log(`1,000 concurrent increments       → ${await counters.get("visits")}, each answer distinct`)
  assert.equal(await counters.ttl("visits"), Infinity)
  assert.equal(await counters.touch("visits", 60_000), true)
  const ttl = await counters.ttl("visits")
  assert.ok(ttl !== undefined && ttl <= 60_000)
  console.log(`touch for a minute                → ttl ${ttl} ms`)
  assert.equal(await counters.update("visits", async (n) => n * 2), 2_000)
  assert.equal(await counters.take("visits"), 2_000)
  assert.equal(await counters.take("visits"), undefined)
  console.log(`update ×2, take, take             → 2000, then undefined`)

  await using rates = createCache<number>({ name: "rates" })
  let loads = 0
  const rate = rates.memoize(async (from: string, to: string) => {
    loads++
    return from === to ? 1 : 1.08
  }, { ttl: 60_000 })
  const answers = await Promise.all([rate("EUR", "USD"), rate("EUR", "USD"), rate("EUR", "EUR")])
  assert.deepEqual(answers, [1.08, 1.08, 1])
  assert.equal(loads, 2)
  console.log(`memoize, 3 calls, 2 distinct      → ${loads} loads`)

  const tenant = rates.namespace("tenant:a")
  await tenant.put("limit", 10)
  await rates.put("limit", 99)
  await tenant.flush()
  assert.equal(await tenant.get("limit"), undefined)
  assert.equal(await rates.get("limit"), 99)
  console.log(`namespace flush                   → the parent's "limit" kept: ${await rates.get("limit")}`)
}

await Effect.runPromise(Effect.provide(program, Layer.merge(Vela.layerMemory(Counters), Vela.layerMemory(Carts))))
await facade()
