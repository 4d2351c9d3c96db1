import { Redis } from "@vela/backend-redis"
import { Local } from "@vela/core"
import { conformance } from "@vela/core/testing"
import { Effect, Layer } from "effect"
import * as RedisServer from "./utils/RedisServer.js"

// A TestClock stands still while real time runs, so Redis must not drop an entry the test clock
// still counts as live: the grace covers the real duration of a run.
const redisLocal = Local.layer.pipe(
  Layer.provide(
    Layer.unwrapEffect(
      Effect.map(RedisServer.RedisServer, (server) => Redis.layer({ url: server.url, expiryGrace: "10 minutes" }))
    )
  ),
  Layer.provide(RedisServer.layer)
)

conformance("Redis + Local", redisLocal, { runs: 20 })
