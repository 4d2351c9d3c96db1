/**
 * A real `redis-server` for tests: spawned on a free loopback port, without persistence, and killed
 * when the layer's scope closes. `stop` and `start` kill and restart it on the same port, for
 * outage tests.
 */
import { Context, Effect, Layer } from "effect"
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { createServer, Socket } from "node:net"

export class RedisServer extends Context.Tag("test/RedisServer")<RedisServer, {
  readonly port: number
  readonly url: string
  /** Kills the server (SIGKILL) and waits for it to exit. */
  readonly stop: Effect.Effect<void>
  /** Starts it again on the same port and waits until it accepts connections. */
  readonly start: Effect.Effect<void>
  /** Freezes (SIGSTOP) or thaws (SIGCONT) the server: connections stay open, replies stop. */
  readonly freeze: (frozen: boolean) => Effect.Effect<void>
}>() {}

/** A port nobody listens on right now. */
export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Resolves once something accepts TCP connections on `port`, polling for at most ten seconds. */
export const waitForPort = (port: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const deadline = Date.now() + 10_000
    let timer: ReturnType<typeof setTimeout> | undefined
    const attempt = () => {
      const socket = new Socket()
      socket.once("connect", () => {
        socket.destroy()
        resume(Effect.void)
      })
      socket.once("error", () => {
        socket.destroy()
        if (Date.now() > deadline) resume(Effect.die(new Error(`nothing listens on port ${port}`)))
        else timer = setTimeout(attempt, 20)
      })
      socket.connect(port, "127.0.0.1")
    }
    attempt()
    return Effect.sync(() => clearTimeout(timer))
  })

/** Spawns `redis-server` with `args` and waits until it accepts connections. */
export const spawnServer = (
  port: number,
  args: ReadonlyArray<string> = [],
  cwd?: string
): Effect.Effect<ChildProcess> =>
  Effect.suspend(() => {
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...args],
      { stdio: "ignore", ...(cwd === undefined ? {} : { cwd }) }
    )
    return Effect.as(Effect.onInterrupt(waitForPort(port), () => kill(child)), child)
  })

/** Sends SIGKILL and waits for the exit (a stopped process dies of SIGKILL too). */
export const kill = (child: ChildProcess): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill("SIGKILL")
  })

export const layer: Layer.Layer<RedisServer> = Layer.scoped(
  RedisServer,
  Effect.gen(function*() {
    const port = yield* freePort
    let current: ChildProcess | undefined = yield* spawnServer(port)
    yield* Effect.addFinalizer(() => current === undefined ? Effect.void : kill(current))
    const stop = Effect.suspend(() => {
      const child = current
      current = undefined
      return child === undefined ? Effect.void : kill(child)
    })
    return RedisServer.of({
      port,
      url: `redis://127.0.0.1:${port}`,
      stop,
      start: Effect.zipRight(
        stop,
        Effect.map(spawnServer(port), (child) => {
          current = child
        })
      ),
      freeze: (frozen) =>
        Effect.sync(() => {
          current?.kill(frozen ? "SIGSTOP" : "SIGCONT")
        })
    })
  })
)
