/** What the suites of one run share: the run's redis-server (started at first use) and a scratch directory. */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as RedisServer from "./redisServer.js"

export interface Env {
  /** The server's URL, or why there is none (then Redis rows are left out with that line). */
  readonly redis: () => Promise<{ readonly url: string } | { readonly error: string }>
  /** A directory removed when the run ends (SQLite files). */
  readonly tmpDir: string
}

export const make = (): Env & { readonly close: () => Promise<void> } => {
  const tmpDir = mkdtempSync(join(tmpdir(), "vela-bench-"))
  let server: Promise<RedisServer.RedisServer> | undefined
  return {
    tmpDir,
    redis: async () => {
      server ??= RedisServer.start()
      try {
        return { url: (await server).url }
      } catch (error) {
        return { error: `redis-server could not start: ${error instanceof Error ? error.message : String(error)}` }
      }
    },
    close: async () => {
      if (server !== undefined) await server.then((s) => s.stop(), () => {})
      rmSync(tmpDir, { recursive: true, force: true })
    }
  }
}
