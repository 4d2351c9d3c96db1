/** Helpers of the cluster tests: waiting on membership, raw sockets. */
import { ClusterNode, Partitioned, Replicated } from "@vela/cluster"
import type { BackendError, ConfigError } from "@vela/core"
import { Backend, Memory, Topology, Vela } from "@vela/core"
import { openOptions } from "@vela/core/testing"
import type { Duration, Scope } from "effect"
import { Effect, Schedule, Stream } from "effect"
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"

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

/** A port that was free a moment ago on 127.0.0.1. */
export const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
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
  options: { readonly replicas?: number; readonly secret?: string; readonly maxFrameBytes?: number } = {}
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
    const topology = yield* Partitioned.make({ replicas: options.replicas ?? 1 }).pipe(
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

/** A cluster node in a child `node` process (test/fixtures/node.mjs), killed when the scope closes. */
export interface NodeProcess {
  readonly id: string
  readonly port: number
  readonly child: ChildProcess.ChildProcess
  readonly request: <A = unknown>(op: string, args?: Record<string, unknown>) => Effect.Effect<A, Error>
}

/** Starts `fixture` (a script in test/fixtures speaking node.mjs's protocol) and waits until it is ready. */
export const spawnNode = (
  env: {
    readonly SEEDS?: string
    readonly SECRET?: string
    readonly REPLICAS?: string
    readonly PORT?: string
    /** `"replicated"` for the Replicated topology; Partitioned otherwise. */
    readonly TOPOLOGY?: string
    /** `connectTimeout` in milliseconds. */
    readonly CONNECT_TIMEOUT?: string
    readonly MAX_CONNECTIONS?: string
    /** The `"host:port"` peers dial, when not the node's own. */
    readonly ADVERTISE?: string
    /** `"1"`: the node's cache has a near cache. */
    readonly NEAR?: string
  },
  fixture = "node.mjs",
  options: {
    /** Where the process's logs go: here (default), nowhere, or an open file descriptor. */
    readonly stderr?: "inherit" | "ignore" | number
    /** How long it may take to be ready (default 30 s). */
    readonly startTimeout?: number
  } = {}
) =>
  Effect.acquireRelease(
    Effect.async<NodeProcess, Error>((resume) => {
      const child = ChildProcess.spawn(process.execPath, [
        fileURLToPath(new URL(`./fixtures/${fixture}`, import.meta.url))
      ], {
        env: { ...process.env, PORT: "0", ...env },
        stdio: ["pipe", "pipe", options.stderr ?? "inherit"]
      })
      const pending = new Map<number, (answer: { ok?: unknown; error?: string }) => void>()
      let next = 0
      let ready = false
      const lines = Readline.createInterface({ input: child.stdout! })
      const startTimeout = options.startTimeout ?? 30_000
      const timer = setTimeout(() => {
        child.kill("SIGKILL")
        resume(Effect.fail(new Error(`node process did not start within ${startTimeout / 1000} s`)))
      }, startTimeout)
      child.on("exit", () => {
        for (const answer of pending.values()) answer({ error: "process exited" })
        pending.clear()
        if (!ready) {
          clearTimeout(timer)
          resume(Effect.fail(new Error("node process exited before it was ready")))
        }
      })
      lines.on("line", (line) => {
        const message = JSON.parse(line)
        if ("ready" in message) {
          ready = true
          clearTimeout(timer)
          const id: string = message.ready
          const request = <A>(op: string, args: Record<string, unknown> = {}) =>
            Effect.async<A, Error>((answer) => {
              const id = next++
              pending.set(id, (reply) =>
                answer(
                  reply.error === undefined ? Effect.succeed(reply.ok as A) : Effect.fail(new Error(reply.error))
                ))
              child.stdin!.write(JSON.stringify({ id, op, args }) + "\n")
            }).pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error(`${op} timed out`) }))
          resume(Effect.succeed({ id, port: Number(id.split(":")[1]), child, request }))
          return
        }
        const answer = pending.get(message.id)
        pending.delete(message.id)
        answer?.(message)
      })
    }),
    ({ child }) =>
      Effect.async<void>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
        const timer = setTimeout(() => child.kill("SIGKILL"), 3_000)
        child.once("exit", () => {
          clearTimeout(timer)
          resume(Effect.void)
        })
        // Closing stdin asks for a graceful leave.
        child.stdin!.end()
      })
  )

/** Waits until the node in process `node` sees exactly `expected` as the live members. */
export const seesMembers = (node: NodeProcess, expected: ReadonlyArray<NodeProcess>) =>
  poll(Effect.flatMap(node.request<Array<string>>("members"), (seen) => {
    const want = expected.map((n) => n.id).sort().join(",")
    return seen.join(",") === want ? Effect.void : Effect.fail(new Error(`${node.id} sees ${seen.join(",")}`))
  }))

/** Three node processes, the first the seed of the others, once they all see each other. */
export const spawnThree = (env: Parameters<typeof spawnNode>[0] = {}) =>
  Effect.gen(function*() {
    const a = yield* spawnNode(env)
    const [b, c] = yield* Effect.all([spawnNode({ ...env, SEEDS: a.id }), spawnNode({ ...env, SEEDS: a.id })], {
      concurrency: "unbounded"
    })
    yield* Effect.all([a, b, c].map((n) => seesMembers(n, [a, b, c])), { concurrency: "unbounded" })
    return [a, b, c] as const
  })

/** Polls `check` every 50 ms until it succeeds, at most `timeout`. */
export const poll = <A, E>(check: Effect.Effect<A, E>, timeout: Duration.DurationInput = "15 seconds") =>
  Effect.retry(check, Schedule.spaced("50 millis")).pipe(
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error("condition not met in time") })
  )
