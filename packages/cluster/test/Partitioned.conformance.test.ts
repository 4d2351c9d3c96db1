import { ClusterNode, HashRing, Partitioned } from "@vela/cluster"
import { Backend, Memory, Topology } from "@vela/core"
import { conformance } from "@vela/core/testing"
import { Clock, Effect, Layer } from "effect"
import { awaitMembers, freePort } from "./utils.js"

/**
 * Ports for three nodes such that the first node owns the keys of the suite's stampede test.
 *
 * That test forks 50 `getOrFetch` calls and moves the `TestClock` right away, which works only if
 * the fetch's `sleep` is registered before the clock moves. With a remote owner, the read and the
 * lease are network round trips, which take longer than `TestClock.adjust` waits, so the sleep
 * would start after the clock moved and never end. Cross-node stampede protection is tested live
 * in `Partitioned.test.ts`.
 */
const portsOwningStampedeKeys = Effect.gen(function*() {
  for (let attempt = 0; attempt < 500; attempt++) {
    const ports = [yield* freePort, yield* freePort, yield* freePort]
    if (new Set(ports).size < 3) continue
    const ids = ports.map((port) => `127.0.0.1:${port}`)
    const ring = HashRing.make(ids)
    if (["cold", "bad"].every((key) => HashRing.owner(ring, key) === ids[0])) return ports
  }
  return yield* Effect.dieMessage("no suitable ports found")
})

/** Three nodes on loopback, each with its own memory backend; the suite runs through the first. */
const cluster = (replicas: number) =>
  Layer.scoped(
    Topology.Topology,
    Effect.gen(function*() {
      const [pa, pb, pc] = yield* portsOwningStampedeKeys
      const options = { host: "127.0.0.1", secret: "conformance", heartbeatInterval: "200 millis" } as const
      const a = yield* ClusterNode.make({ ...options, port: pa })
      const b = yield* ClusterNode.make({ ...options, port: pb, seeds: [a.id] })
      const c = yield* ClusterNode.make({ ...options, port: pc, seeds: [a.id] })
      const all = [a.id, b.id, c.id]
      yield* Effect.all([awaitMembers(a, all), awaitMembers(b, all), awaitMembers(c, all)], {
        concurrency: "unbounded"
      }).pipe(Effect.withClock(Clock.make()), Effect.orDie)
      const topology = (node: ClusterNode.ClusterNode["Type"]) =>
        Partitioned.make({ replicas }).pipe(
          Effect.provideService(ClusterNode.ClusterNode, node),
          Effect.provideServiceEffect(Backend.Backend, Memory.make())
        )
      yield* topology(b)
      yield* topology(c)
      return yield* topology(a)
    })
  )

conformance("Partitioned, 3 nodes, replicas 1", cluster(1), { runs: 20 })
conformance("Partitioned, 3 nodes, replicas 0", cluster(0), { runs: 15 })
