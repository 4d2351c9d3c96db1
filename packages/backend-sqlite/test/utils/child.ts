/**
 * Runs `test/fixtures/child.mjs` as a real `node` process on the built packages, and a temp
 * directory that is removed with the scope. Every process started here is killed when its scope
 * closes, whatever the test did.
 */
import { Effect } from "effect"
import type { ChildProcess, SpawnOptions } from "node:child_process"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const fixture = fileURLToPath(new URL("../fixtures/child.mjs", import.meta.url))
const built = fileURLToPath(new URL("../../dist/index.js", import.meta.url))

export type Line = Record<string, any>

export interface Child {
  readonly process: ChildProcess
  readonly lines: Array<Line>
  /** Resolves with the exit code (or the signal) and every line printed. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: string | null; readonly stderr: string }>
  /** Resolves when a line satisfies `predicate`. */
  readonly until: (predicate: (line: Line) => boolean) => Promise<Line>
}

const start = (args: ReadonlyArray<string>, options: SpawnOptions = {}): Child => {
  if (!fs.existsSync(built)) throw new Error(`${built} is missing: run \`npm run build\` first`)
  const child = spawn(process.execPath, [fixture, ...args], { stdio: ["ignore", "pipe", "pipe"], ...options })
  const lines: Array<Line> = []
  const waiters = new Set<{ predicate: (line: Line) => boolean; resolve: (line: Line) => void }>()
  let buffer = ""
  let stderr = ""
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    buffer += chunk
    let newline: number
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = JSON.parse(buffer.slice(0, newline)) as Line
      buffer = buffer.slice(newline + 1)
      lines.push(line)
      for (const waiter of waiters) {
        if (waiter.predicate(line)) {
          waiters.delete(waiter)
          waiter.resolve(line)
        }
      }
    }
  })
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => stderr += chunk)
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stderr }))
  )
  const until = (predicate: (line: Line) => boolean) =>
    new Promise<Line>((resolve, reject) => {
      const found = lines.find(predicate)
      if (found !== undefined) return resolve(found)
      waiters.add({ predicate, resolve })
      exited.then(({ code, signal, stderr }) =>
        reject(new Error(`child exited (${code ?? signal}) before the expected line; stderr: ${stderr}`))
      )
    })
  return { process: child, lines, exited, until }
}

/** A child process killed with the scope. */
export const spawnChild = (args: ReadonlyArray<string>, options: SpawnOptions = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => start(args, options)),
    (child) =>
      Effect.promise(() => {
        if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL")
        return child.exited
      })
  )

/** Runs a child to its end; fails when it exits with an unexpected code. */
export const runChild = (args: ReadonlyArray<string>, options: SpawnOptions = {}, expectedCode = 0) =>
  Effect.scoped(Effect.gen(function*() {
    const child = yield* spawnChild(args, options)
    const { code, signal, stderr } = yield* Effect.promise(() => child.exited)
    if (code !== expectedCode) {
      return yield* Effect.die(new Error(`child ${args.join(" ")} exited ${code ?? signal}: ${stderr}`))
    }
    return child.lines
  }))

/** A fresh temp directory, removed with the scope. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "vela-sqlite-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/**
 * How to run a child that file permissions apply to: as is for an ordinary user; as `nobody` for
 * root (root writes through permission bits), when `nobody` can read the fixture and its packages.
 * `undefined` when neither works here.
 */
export const unprivileged = ((): SpawnOptions | undefined => {
  const uid = process.getuid?.()
  if (uid === undefined) return undefined
  if (uid !== 0) return {}
  const as = { uid: 65534, gid: 65534 }
  const probe = spawnSync(process.execPath, [fixture, "open", ":memory:"], { ...as, encoding: "utf8", timeout: 30_000 })
  return probe.status === 0 && probe.stdout.includes("opened") ? as : undefined
})()
