/**
 * The quick start of the README, run by `npm start`: one cache on the embedded default (Memory +
 * Local), through the Effect API and then the Promise facade. Prints what happens and exits.
 */
import { Vela } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Context, Effect, Schema } from "effect"

class User extends Schema.Class<User>("User")({ id: Schema.String, name: Schema.String }) {}

class UserCache extends Context.Tag("UserCache")<UserCache, Vela.Cache<User>>() {}

const line = (text: string) => Effect.sync(() => console.log(text))

const program = Effect.gen(function*() {
  const cache = yield* UserCache
  yield* line("── Effect API ─────────────────────────────────────────")

  yield* cache.put("user_1", new User({ id: "user_1", name: "Alice" }))
  const alice = yield* cache.get("user_1")
  yield* line(`put user_1, get user_1        → ${alice.name}`)

  const missing = yield* Effect.either(cache.get("user_404"))
  yield* line(`get user_404                  → ${missing._tag === "Left" ? missing.left._tag : "found?"}`)

  yield* cache.put("session", new User({ id: "s", name: "short-lived" }), { ttl: "200 millis" })
  yield* line(`put session with ttl 200 ms   → exists: ${yield* cache.exists("session")}`)
  yield* Effect.sleep("250 millis")
  yield* line(`250 ms later                  → exists: ${yield* cache.exists("session")}`)

  yield* cache.put("user_2", new User({ id: "user_2", name: "Bob" }), { tags: ["users"] })
  yield* cache.put("user_3", new User({ id: "user_3", name: "Carol" }), { tags: ["users"] })
  yield* cache.put("product_1", new User({ id: "product_1", name: "Widget" }), { tags: ["products"] })
  const removed = yield* cache.invalidateTag("users")
  yield* line(`invalidateTag("users")        → ${removed} removed, product_1 kept: ${yield* cache.exists("product_1")}`)

  let fetches = 0
  const loadUser = (key: string) =>
    Effect.gen(function*() {
      fetches++
      yield* Effect.sleep("50 millis") // a slow database
      return new User({ id: key, name: "Dave" })
    })
  const started = Date.now()
  const users = yield* Effect.all(
    Array.from({ length: 1_000 }, () => cache.getOrFetch("user_4", loadUser)),
    { concurrency: "unbounded" }
  )
  yield* line(
    `1,000 concurrent getOrFetch    → ${users.length} answers, ${fetches} fetch, ${Date.now() - started} ms`
  )

  const stats = yield* cache.stats()
  yield* line(`stats                         → ${JSON.stringify(stats)}`)
})

const facade = async () => {
  console.log("── Promise facade ─────────────────────────────────────")
  await using cache = createCache<{ name: string }>({ name: "users", defaultTtl: 300_000 })
  await cache.put("user_1", { name: "Alice" }, { tags: ["users"] })
  console.log(`await cache.get("user_1")     → ${(await cache.get("user_1"))?.name}`)
  console.log(`await cache.get("user_404")   → ${await cache.get("user_404")}`)
  let fetches = 0
  const load = async () => {
    fetches++
    await new Promise((resolve) => setTimeout(resolve, 50))
    return { name: "Erin" }
  }
  await Promise.all(Array.from({ length: 1_000 }, () => cache.getOrFetch("user_5", load)))
  console.log(`1,000 concurrent getOrFetch    → ${fetches} fetch`)
  console.log(`invalidateTag("users")        → ${await cache.invalidateTag("users")} removed`)
}

await Effect.runPromise(Effect.provide(program, Vela.layerMemory(UserCache, { defaultTtl: "5 minutes", value: User })))
await facade()
