import { accessSync, constants } from "node:fs"
import { delimiter, join } from "node:path"
import { defineProject } from "vitest/config"
import { aliases } from "../../vitest.shared.ts"

/** Every test here starts its own `redis-server`; without one on the PATH they are skipped, unless CI requires them. */
const redisServerOnPath = (process.env.PATH ?? "").split(delimiter).some((dir) => {
  try {
    accessSync(join(dir, "redis-server"), constants.X_OK)
    return true
  } catch {
    return false
  }
})
const missing = "redis-server is not on the PATH (Debian/Ubuntu: apt-get install redis-server)"
if (!redisServerOnPath) {
  if (process.env.VELA_REQUIRE_REDIS === "1") throw new Error(`VELA_REQUIRE_REDIS=1 but ${missing}`)
  console.warn(`@vela/backend-redis: tests skipped: ${missing}`)
}

export default defineProject({
  resolve: { alias: aliases },
  test: { include: redisServerOnPath ? ["test/**/*.test.ts"] : [] }
})
