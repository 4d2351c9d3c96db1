/**
 * Cluster nodes in child processes (test/fixtures/*.mjs over the built `dist`), for the
 * multi-process tests and the chaos rig; no test framework here, so the rig also runs on its own.
 */
import type { Duration } from "effect"
import { Effect, Schedule } from "effect"
import * as ChildProcess from "node:child_process"
import * as Net from "node:net"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"

/** A port that was free a moment ago on 127.0.0.1. */
export const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

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
    /** Partitioned's `handoffGrace` (default 10 s). */
    readonly HANDOFF_GRACE?: string
    readonly FAILURE_TIMEOUT?: string
    /** `connectTimeout` in milliseconds. */
    readonly CONNECT_TIMEOUT?: string
    /** `requestTimeout` in milliseconds. */
    readonly REQUEST_TIMEOUT?: string
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

/** SIGKILLs the process of `node` and waits until it is gone: no leave is announced. */
export const crash = (node: NodeProcess) =>
  Effect.async<void>((resume) => {
    if (node.child.exitCode !== null || node.child.signalCode !== null) return resume(Effect.void)
    node.child.once("exit", () => resume(Effect.void))
    node.child.kill("SIGKILL")
  })

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
