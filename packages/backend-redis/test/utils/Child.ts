/**
 * A child Node process running `test/fixtures/child.mjs` (a cache on the built packages): requests
 * go as JSON lines to its stdin, answers come back on its stdout. Closing the scope ends its stdin,
 * and kills it if it has not exited within five seconds.
 */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

const script = fileURLToPath(new URL("../fixtures/child.mjs", import.meta.url))
const built = fileURLToPath(new URL("../../dist/index.js", import.meta.url))

export interface Child {
  readonly pid: number
  readonly request: (request: Record<string, unknown>) => Effect.Effect<unknown, string>
}

export const start = (url: string, name: string, mode: "near" | "plain") =>
  Effect.gen(function*() {
    if (!existsSync(built)) return yield* Effect.die(new Error(`${built} is missing: run npm run build first`))
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => spawn(process.execPath, [script, url, name, mode], { stdio: ["pipe", "pipe", "inherit"] })),
      (child) =>
        Effect.async<void>((resume) => {
          if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
          const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
          child.once("exit", () => {
            clearTimeout(timer)
            resume(Effect.void)
          })
          child.stdin?.end()
        })
    )
    const pending = new Map<number, (line: { value?: unknown; error?: string }) => void>()
    let ready: (() => void) | undefined
    const lines = createInterface({ input: child.stdout! })
    lines.on("line", (text) => {
      const line = JSON.parse(text)
      if ("ready" in line) return ready?.()
      pending.get(line.id)?.(line)
      pending.delete(line.id)
    })
    yield* Effect.async<void>((resume) => {
      ready = () => resume(Effect.void)
      child.once("exit", (code) => resume(Effect.die(new Error(`child exited with ${code} before it was ready`))))
    })
    let next = 0
    return {
      pid: child.pid!,
      request: (request) =>
        Effect.async<unknown, string>((resume) => {
          const id = ++next
          pending.set(id, (line) =>
            resume(line.error === undefined ? Effect.succeed(line.value) : Effect.fail(line.error)))
          child.stdin!.write(`${JSON.stringify({ ...request, id })}\n`)
        })
    } satisfies Child
  })
