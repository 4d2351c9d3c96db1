/**
 * What a user gets from npm: every published package is packed from its build (`npm run build`
 * first, as `npm test` does), the tarballs are installed beside the user's own `effect` in a fresh
 * project, and that project runs a facade program and an Effect program, loads the ESM build with
 * `require()`, and type-checks under `moduleResolution` NodeNext and bundler. Dependencies come from
 * npm's cache when it has them (`--prefer-offline`), else from the registry.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterAll, beforeAll } from "vitest"

const root = fileURLToPath(new URL("../../..", import.meta.url))
const published = ["core", "backend-redis", "backend-sqlite", "cluster", "keyv"]
const run = promisify(execFile)

const version = async (name: string): Promise<string> =>
  JSON.parse(await readFile(join(root, "node_modules", name, "package.json"), "utf8")).version

const facadeProgram = `
import { createCache, NotFound } from "@vela/core/promise"
const cache = createCache({ name: "users", defaultTtl: 60_000 })
await cache.put("user_1", { name: "Alice" }, { tags: ["users"] })
const fetched = await cache.getOrFetch("user_2", async () => ({ name: "Bob" }))
const missing = await cache.getOrThrow("nobody").catch((error) => error instanceof NotFound && error.key)
const before = await cache.get("user_1")
const removed = await cache.invalidateTag("users")
console.log(JSON.stringify([before?.name, fetched.name, missing, removed, (await cache.get("user_1")) ?? null]))
await cache.close()
`

const effectProgram = `
import { Context, Effect } from "effect"
import { Vela } from "@vela/core"
import { Redis } from "@vela/backend-redis"
import { Sqlite } from "@vela/backend-sqlite"
import { ClusterNode, Partitioned } from "@vela/cluster"
const Users = Context.GenericTag("Users")
const program = Effect.gen(function*() {
  const users = yield* Users
  yield* users.put("user_1", "Alice")
  const hit = yield* users.get("user_1")
  const fetched = yield* users.getOrFetch("user_2", () => Effect.succeed("Bob"))
  return [hit, fetched, (yield* users.stats()).hits, [Redis.layer, Sqlite.layer, ClusterNode.layer, Partitioned.layer].map((f) => typeof f)]
})
console.log(JSON.stringify(await Effect.runPromise(Effect.provide(program, Vela.layerMemory(Users)))))
`

const requireProgram = `
const { createCache } = require("@vela/core/promise")
const cache = createCache({ name: "cjs" })
cache.put("k", 1).then(() => cache.get("k")).then((value) => { console.log(value); return cache.close() })
`

const typedProgram = `
import { Context, Effect, Layer } from "effect"
import type { CacheError, NotFound } from "@vela/core"
import { Local, Memory, Vela } from "@vela/core"
import { createCache } from "@vela/core/promise"
import type { Cache } from "@vela/core/promise"
import { Redis } from "@vela/backend-redis"
import { Sqlite } from "@vela/backend-sqlite"
import { ClusterNode, Partitioned } from "@vela/cluster"
import { VelaKeyvStore } from "@vela/keyv"
import Keyv from "keyv"

interface User { readonly name: string }
class Users extends Context.Tag("Users")<Users, Vela.Cache<User>>() {}
const layers: ReadonlyArray<Layer.Layer<Users, unknown>> = [
  Vela.layer(Users).pipe(Layer.provide(Local.layer), Layer.provide(Memory.layer())),
  Vela.layer(Users).pipe(Layer.provide(Local.layer), Layer.provide(Redis.layer({ url: "redis://127.0.0.1:6379" }))),
  Vela.layer(Users).pipe(Layer.provide(Local.layer), Layer.provide(Sqlite.layer({ filename: "cache.db" }))),
  Vela.layer(Users).pipe(
    Layer.provide(Partitioned.layer({ replicas: 1 })),
    Layer.provide(ClusterNode.layer({ host: "127.0.0.1", port: 4370, seeds: [], secret: "s" })),
    Layer.provide(Memory.layer())
  )
]
const read: Effect.Effect<User, NotFound | CacheError, Users> = Effect.flatMap(Users, (users) => users.get("k"))
const cache: Cache<User> = createCache<User>({ name: "users" })
const keyv: Keyv = new Keyv({ store: new VelaKeyvStore(createCache({ name: "keyv" })) })
export const all = [layers, read, cache.get("k"), keyv]
`

describe("the published packages", () => {
  let project = ""

  beforeAll(async () => {
    for (const name of published) {
      assert.isTrue(existsSync(join(root, "packages", name, "dist", "index.js")), `build ${name} first: npm run build`)
    }
    project = await mkdtemp(join(tmpdir(), "vela-published-"))
    const packed = await run("npm", [
      "pack",
      "--json",
      "--pack-destination",
      project,
      ...published.flatMap((name) => ["--workspace", `packages/${name}`])
    ], { cwd: root })
    const tarballs: Array<{ name: string; filename: string }> = JSON.parse(packed.stdout)
    await writeFile(
      join(project, "package.json"),
      JSON.stringify({
        name: "vela-user",
        private: true,
        type: "module",
        dependencies: {
          effect: await version("effect"),
          ...Object.fromEntries(tarballs.map(({ filename, name }) => [name, `file:./${filename}`]))
        },
        devDependencies: { "@types/node": await version("@types/node") }
      })
    )
    // --ignore-scripts: nothing here opens a SQLite file, so better-sqlite3 need not compile.
    await run("npm", ["install", "--prefer-offline", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: project })
  }, 240_000)

  afterAll(() => rm(project, { recursive: true, force: true }))

  it("ship their build, sources for the source maps, a README and a LICENSE, but no build info or tests", async () => {
    const listed: Array<{ name: string; files: Array<{ path: string }> }> = JSON.parse(
      (await run("npm", [
        "pack",
        "--dry-run",
        "--json",
        ...published.flatMap((name) => ["--workspace", `packages/${name}`])
      ], { cwd: root })).stdout
    )
    for (const { files, name } of listed) {
      const paths = files.map((file) => file.path)
      for (
        const required of ["LICENSE", "README.md", "package.json", "dist/index.js", "dist/index.d.ts", "src/index.ts"]
      ) {
        assert.include(paths, required, `${name} lacks ${required}`)
      }
      assert.deepStrictEqual(paths.filter((path) => /tsbuildinfo|^test\/|\.test\./.test(path)), [], name)
    }
  }, 60_000)

  it("leave one copy of effect in the user's tree: the user's", async () => {
    const copies: Array<{ location: string; version: string }> = JSON.parse(
      (await run("npm", ["query", "#effect"], { cwd: project })).stdout
    )
    assert.deepStrictEqual(copies.map(({ location, version }) => [location, version]), [[
      "node_modules/effect",
      await version("effect")
    ]])
  }, 60_000)

  it("run a facade program and an Effect program", async () => {
    await writeFile(join(project, "facade.mjs"), facadeProgram)
    await writeFile(join(project, "effect.mjs"), effectProgram)
    const facade = await run(process.execPath, ["facade.mjs"], { cwd: project, timeout: 30_000 })
    assert.deepStrictEqual(JSON.parse(facade.stdout), ["Alice", "Bob", "nobody", 1, null])
    const effect = await run(process.execPath, ["effect.mjs"], { cwd: project, timeout: 30_000 })
    assert.deepStrictEqual(JSON.parse(effect.stdout), ["Alice", "Bob", 1, [
      "function",
      "function",
      "function",
      "function"
    ]])
  }, 60_000)

  it.skipIf(!process.features.require_module)("load with require() where Node can require ESM", async () => {
    await writeFile(join(project, "require.cjs"), requireProgram)
    const { stdout } = await run(process.execPath, ["require.cjs"], { cwd: project, timeout: 30_000 })
    assert.strictEqual(stdout.trim(), "1")
  }, 60_000)

  it("type-check under moduleResolution NodeNext and bundler", async () => {
    await mkdir(join(project, "src"))
    await writeFile(join(project, "src", "main.ts"), typedProgram)
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
    const common = ["--noEmit", "--strict", "--target", "ES2022", "--types", "node", "src/main.ts"]
    // Declaration files are checked in full once; the second pass checks what bundler resolution finds.
    const passes = [
      ["--module", "NodeNext", "--moduleResolution", "NodeNext"],
      ["--module", "ESNext", "--moduleResolution", "bundler", "--skipLibCheck"]
    ]
    for (const resolution of passes) {
      const errors = await run(process.execPath, [tsc, ...resolution, ...common], { cwd: project, timeout: 150_000 })
        .then(() => "", (error: { stdout: string }) => error.stdout)
      assert.strictEqual(errors, "", resolution.join(" "))
    }
  }, 240_000)
})
