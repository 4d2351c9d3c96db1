/** Helpers of the cluster tests: waiting on membership, raw sockets; node processes (./processes.ts). */
import { ClusterNode, Partitioned, Replicated } from "@vela/cluster"
import type { BackendError, ConfigError } from "@vela/core"
import { Backend, Memory, Topology, Vela } from "@vela/core"
import { openOptions } from "@vela/core/testing"
import type { Duration, Scope } from "effect"
import { Effect, Schedule, Stream } from "effect"
import * as Net from "node:net"

export * from "./processes.js"

/** Waits (at most `timeout`) until `node` sees exactly `expected` live members. */
export const awaitMembers = (
  node: ClusterNode.ClusterNode["Type"],
  expected: ReadonlyArray<string>,
  timeout: Duration.DurationInput = "10 seconds"
) => {
  const want = [...expected].sort().join(",")
  return node.members.changes.pipe(
    Stream.filter((members) => members.join(",") === want),
    Stream.take(1),
    Stream.runDrain,
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => new Error(`${node.id} did not see members ${want}`)
    })
  )
}

/** Waits until every node of `nodes` sees exactly `nodes` as the live members. */
export const connected = (nodes: ReadonlyArray<Started>) =>
  Effect.all(nodes.map((n) => awaitMembers(n.node, nodes.map((m) => m.node.id))), { concurrency: "unbounded" })

/** `count` nodes started by `start`, the first the seed of the others, once they all see each other. */
export const cluster = <E, R>(
  start: (seeds: ReadonlyArray<string>) => Effect.Effect<Started, E, R>,
  count: number
) =>
  Effect.gen(function*() {
    const first = yield* start([])
    const nodes = [first]
    for (let i = 1; i < count; i++) nodes.push(yield* start([first.node.id]))
    yield* connected(nodes)
    return nodes
  })

/** Retries `check` every 20 ms until it passes, for about five seconds at most. */
export const eventually = <A, E>(check: Effect.Effect<A, E>) =>
  Effect.retry(check, Schedule.intersect(Schedule.spaced("20 millis"), Schedule.recurs(250)))

/** Writes `bytes` to `host:port` and resolves with what came back when the peer closed or after `waitMs`. */
export const sendRaw = (port: number, bytes: Uint8Array | string, waitMs = 300) =>
  Effect.async<{ readonly closed: boolean; readonly received: number }, Error>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    let received = 0
    let done = false
    const finish = (closed: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed({ closed, received }))
    }
    const timer = setTimeout(() => finish(false), waitMs)
    socket.on("data", (chunk) => received += chunk.length)
    socket.on("close", () => finish(true))
    socket.on("error", () => finish(true))
    socket.on("connect", () => socket.write(bytes))
    return Effect.sync(() => finish(false))
  })

/** A node and its topology, living in the current scope. */
export interface Started {
  readonly node: ClusterNode.ClusterNode["Type"]
  readonly topology: Topology.Topology["Type"]
  /** The node's own store: what it holds, as the text the writer encoded. */
  readonly backend: Backend.Backend["Type"]
}

/** The text `started` holds for `key` of namespace `ns` (its own copy, whoever owns the key), or `null`. */
export const heldText = (started: Started, ns: string, key: string) =>
  Effect.map(
    started.backend.open(openOptions(ns)),
    (store) => (store.sync?.get(key)?.value as { readonly text: string } | undefined)?.text ?? null
  )

/** A node with a memory backend and the `Partitioned` topology, living in the current scope. */
export const startPartitioned = (
  seeds: ReadonlyArray<string>,
  options: {
    readonly replicas?: number
    readonly secret?: string
    readonly maxFrameBytes?: number
    readonly handoffGrace?: Duration.DurationInput
  } = {}
): Effect.Effect<Started, ConfigError | BackendError, Scope.Scope> =>
  Effect.gen(function*() {
    const node = yield* ClusterNode.make({
      host: "127.0.0.1",
      port: 0,
      seeds,
      secret: options.secret ?? "s3cret",
      heartbeatInterval: "100 millis",
      failureTimeout: "1 second",
      maxFrameBytes: options.maxFrameBytes
    })
    const backend = yield* Memory.make()
    const topology = yield* Partitioned.make({ replicas: options.replicas ?? 1, handoffGrace: options.handoffGrace })
      .pipe(
        Effect.provideService(ClusterNode.ClusterNode, node),
        Effect.provideService(Backend.Backend, backend)
      )
    return { node, topology, backend }
  })

/** A node with a memory backend and the `Replicated` topology, living in the current scope. */
export const startReplicated = (
  seeds: ReadonlyArray<string>,
  options: Replicated.ReplicatedOptions & { readonly port?: number; readonly maxFrameBytes?: number } = {}
): Effect.Effect<Started, ConfigError | BackendError, Scope.Scope> =>
  Effect.gen(function*() {
    const node = yield* ClusterNode.make({
      host: "127.0.0.1",
      port: options.port ?? 0,
      seeds,
      secret: "s3cret",
      heartbeatInterval: "100 millis",
      failureTimeout: "1 second",
      maxFrameBytes: options.maxFrameBytes
    })
    const backend = yield* Memory.make()
    const topology = yield* Replicated.make(options).pipe(
      Effect.provideService(ClusterNode.ClusterNode, node),
      Effect.provideService(Backend.Backend, backend)
    )
    return { node, topology, backend }
  })

/** A cache named `name` on `topology`, closed with the current scope. */
export const cacheOn = <V>(topology: Topology.Topology["Type"], name: string, config: Vela.Config<V> = {}) =>
  Vela.make<V>({ ...config, name }).pipe(Effect.provideService(Topology.Topology, topology))
