import { fileURLToPath } from "node:url"

const src = (path: string) => fileURLToPath(new URL(`./packages/${path}`, import.meta.url))

/** Tests import the packages by name; these aliases point them at the sources instead of `dist/`. */
export const aliases = {
  "@vela/core/promise": src("core/src/promise.ts"),
  "@vela/core/testing": src("core/src/testing.ts"),
  "@vela/core": src("core/src/index.ts"),
  "@vela/backend-sqlite": src("backend-sqlite/src/index.ts"),
  "@vela/backend-redis": src("backend-redis/src/index.ts"),
  "@vela/cluster": src("cluster/src/index.ts"),
  "@vela/keyv": src("keyv/src/index.ts")
}
