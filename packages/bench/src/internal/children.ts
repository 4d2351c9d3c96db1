/**
 * Child `node` processes of a suite, forked with an IPC channel (stampede_bench's callers, cluster_bench's
 * peers): the next message of a type from each, and a stop that waits for them to exit. Whatever
 * happens they are killed when this process exits, on an error as after Ctrl-C (main.ts closes the
 * run and exits), so that no child outlives the run.
 */
import type { ChildProcess, Serializable } from "node:child_process"
import { fork } from "node:child_process"

export interface Children {
  /**
   * The next `{ type }` message of every child, in order. Rejects on an `{ type: "error", message }`
   * message, or when a child exits first.
   */
  readonly all: (type: string) => Promise<Array<any>>
  /** Sends `message` to every child still running. */
  readonly send: (message: Serializable) => void
  /** SIGKILL to every child still running. */
  readonly kill: () => void
  /** Resolves once every child exited; those still running after `graceMs` are killed. */
  readonly stopped: (graceMs: number) => Promise<void>
}

/** Forks `script` once per element of `argv` (its arguments). */
export const forkAll = (script: string, argv: ReadonlyArray<ReadonlyArray<string>>): Children => {
  const processes = argv.map((args) => fork(script, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] }))
  const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null
  const kill = () => {
    for (const child of processes) if (running(child)) child.kill("SIGKILL")
  }
  process.once("exit", kill)
  const next = (child: ChildProcess, type: string) =>
    new Promise<any>((resolve, reject) => {
      if (!running(child)) return reject(new Error(`a child exited with ${child.exitCode} before "${type}"`))
      const onMessage = (m: any) => {
        if (m?.type !== type && m?.type !== "error") return
        done()
        if (m.type === type) resolve(m)
        else reject(new Error(m.message))
      }
      const onExit = (code: number | null) => {
        done()
        reject(new Error(`a child exited with ${code} before "${type}"`))
      }
      const done = () => {
        child.off("message", onMessage)
        child.off("exit", onExit)
      }
      child.on("message", onMessage)
      child.once("exit", onExit)
    })
  return {
    all: (type) => Promise.all(processes.map((child) => next(child, type))),
    send: (message) => {
      for (const child of processes) if (running(child) && child.connected) child.send(message)
    },
    kill,
    stopped: async (graceMs) => {
      await Promise.all(processes.map((child) =>
        running(child)
          ? new Promise<void>((resolve) => {
            child.once("exit", () => resolve())
            setTimeout(() => child.kill("SIGKILL"), graceMs).unref()
          })
          : undefined
      ))
      process.off("exit", kill)
    }
  }
}
