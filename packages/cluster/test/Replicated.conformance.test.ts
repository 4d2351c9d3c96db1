import { ClusterNode, Replicated } from "@vela/cluster"
import { Backend, Memory, Topology } from "@vela/core"
import { conformance } from "@vela/core/testing"
import { Clock, Effect, Layer } from "effect"
import { awaitMembers } from "./utils.js"

/**
 * Three nodes on loopback, each with its own memory backend; the suite runs through the first.
 * The suite's caches run on `TestClock` (epoch 0), the other nodes on the live clock, so expiry
 * differs between them by design here: anti-entropy, which would compare those views, is slowed
 * down to stay out of the way. Replication itself runs on every write.
 */
const cluster = Layer.scoped(
  Topology.Topology,
  Effect.gen(function*() {
    const options = { host: "127.0.0.1", port: 0, secret: "conformance", heartbeatInterval: "200 millis" } as const
    const a = yield* ClusterNode.make(options)
    const b = yield* ClusterNode.make({ ...options, seeds: [a.id] })
    const c = yield* ClusterNode.make({ ...options, seeds: [a.id] })
    const all = [a.id, b.id, c.id]
    yield* Effect.all([awaitMembers(a, all), awaitMembers(b, all), awaitMembers(c, all)], {
      concurrency: "unbounded"
    }).pipe(Effect.withClock(Clock.make()), Effect.orDie)
    const topology = (node: ClusterNode.ClusterNode["Type"]) =>
      Replicated.make({ antiEntropyInterval: "1 hour" }).pipe(
        Effect.provideService(ClusterNode.ClusterNode, node),
        Effect.provideServiceEffect(Backend.Backend, Memory.make())
      )
    const ta = yield* topology(a)
    yield* topology(b)
    yield* topology(c)
    return ta
  })
)

conformance("Replicated, 3 nodes", cluster, { runs: 20, unsupported: ["take", "increment", "update"] })
