/**
 * A `redis-server` of the run's own on a free loopback port, without persistence; stopped by
 * `stop()` and, whatever happens, when this process exits.
 */
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { createServer, Socket } from "node:net"

export interface RedisServer {
  readonly url: string
  readonly stop: () => Promise<void>
}

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const waitForPort = (port: number, child: ChildProcess) =>
  new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 10_000
    const attempt = () => {
      if (child.exitCode !== null) return reject(new Error(`redis-server exited with ${child.exitCode}`))
      const socket = new Socket()
      socket.once("connect", () => {
        socket.destroy()
        resolve()
      })
      socket.once("error", () => {
        socket.destroy()
        if (Date.now() > deadline) reject(new Error(`redis-server did not listen on ${port} within 10 s`))
        else setTimeout(attempt, 25)
      })
      socket.connect(port, "127.0.0.1")
    }
    attempt()
  })

/** Starts a server; fails when `redis-server` is not on the PATH or does not listen within 10 s. */
export const start = async (binary = process.env.REDIS_SERVER ?? "redis-server"): Promise<RedisServer> => {
  const port = await freePort()
  const child = spawn(
    binary,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: "ignore" }
  )
  const spawned = new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve)
    child.once("error", reject)
  })
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  process.once("exit", kill)
  try {
    await spawned
    await waitForPort(port, child)
  } catch (error) {
    kill()
    throw error
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        process.off("exit", kill)
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once("exit", () => resolve())
        child.kill("SIGTERM")
        setTimeout(kill, 2_000).unref()
      })
  }
}
