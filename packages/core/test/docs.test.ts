/**
 * The repository's Markdown stands alone and its TypeScript compiles. Every relative link resolves
 * to a file inside the repository (and a `#anchor` to one of its headings). Every ```ts block
 * type-checks against the built packages (`npm run build` first, as `npm test` does), exactly as
 * pasted; a block marked ```ts fragment is completed by `fragmentPrelude` below (imports and the
 * names the prose assumes), so it must not import anything itself.
 */
import { assert, describe, it } from "@effect/vitest"
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = fileURLToPath(new URL("../../..", import.meta.url))
const skipped = new Set(["node_modules", "dist", ".git", "partial"])

const markdownFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (skipped.has(entry.name)) return []
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return markdownFiles(path)
    return entry.name.endsWith(".md") ? [path] : []
  })

const docs = markdownFiles(root).map((path) => ({ path, name: relative(root, path), text: readFileSync(path, "utf8") }))

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) =>
  heading.trim().toLowerCase().replace(/`/g, "").replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-")

const anchors = (text: string) =>
  new Set(text.split("\n").filter((line) => /^#{1,6} /.test(line)).map((line) => slug(line.replace(/^#+ /, ""))))

const fragmentPrelude = `
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import { Local, Memory, NearCache, Telemetry, Vela } from "@vela/core"
import { createCache } from "@vela/core/promise"
import { Redis } from "@vela/backend-redis"
import { Sqlite } from "@vela/backend-sqlite"
import { ClusterNode, Discovery, Partitioned, Replicated } from "@vela/cluster"
class User extends Schema.Class<User>("User")({ id: Schema.String, name: Schema.String }) {}
class UserCache extends Context.Tag("UserCache")<UserCache, Vela.Cache<User>>() {}
class SessionCache extends Context.Tag("SessionCache")<SessionCache, Vela.Cache<{ readonly user: string }>>() {}
class Sessions extends Context.Tag("Sessions")<Sessions, Vela.Cache<{ readonly user: string }>>() {}
class ProductCache extends Context.Tag("ProductCache")<ProductCache, Vela.Cache<{ readonly sku: string }>>() {}
declare const host: string, port: number, seeds: ReadonlyArray<string>, secret: Redacted.Redacted<string>
declare const filename: string
`

describe("the docs", () => {
  it("link only to files inside the repository and to headings that exist", () => {
    const broken: Array<string> = []
    for (const doc of docs) {
      if (/API\.md|\.\.\/shared\//.test(doc.text)) {
        broken.push(`${doc.name}: names API.md or ../shared, which users do not have`)
      }
      for (const [, target] of doc.text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue
        const [file, anchor] = target.split("#")
        const path = file === "" ? doc.path : resolve(dirname(doc.path), file)
        const inside = !relative(root, path).startsWith("..")
        const text = docs.find((other) => other.path === path)?.text
        if (!inside || !existsSync(path)) broken.push(`${doc.name}: ${target} (no such file in the repository)`)
        else if (anchor !== undefined && text !== undefined && !anchors(text).has(anchor)) {
          broken.push(`${doc.name}: ${target} (no such heading)`)
        }
      }
    }
    assert.deepStrictEqual(broken, [])
  })

  it("name the Elixir original so that a reader can find it", () => {
    const readme = docs.find((doc) => doc.name === "README.md")!.text
    assert.include(readme, "https://hex.pm/packages/vela")
    assert.include(readme, "https://hexdocs.pm/vela")
  })

  it("hold TypeScript that compiles as pasted (or, marked fragment, with the prelude)", () => {
    const origin = new Map<string, string>()
    for (const doc of docs) {
      // Beside the README, so that its imports resolve as in its package (which may pin other versions).
      const blocks = [...doc.text.matchAll(/^```ts( fragment)?\n([\s\S]*?)^```$/gm)]
      if (blocks.length === 0) continue
      const dir = join(dirname(doc.path), "node_modules", ".cache", "vela-docs")
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(dir, { recursive: true })
      for (const match of blocks) {
        const line = doc.text.slice(0, match.index).split("\n").length
        const file = join(dir, `${doc.name.replace(/[^a-z0-9]+/gi, "_")}_${line}.ts`)
        writeFileSync(file, `${match[1] === undefined ? "" : fragmentPrelude}${match[2]}\nexport {}\n`)
        origin.set(file, `${doc.name}:${line}`)
      }
    }
    assert.isAbove(origin.size, 10)
    const program = ts.createProgram([...origin.keys()], {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      strict: true,
      skipLibCheck: true,
      noEmit: true,
      types: ["node"]
    })
    const errors = ts.getPreEmitDiagnostics(program).map((diagnostic) => {
      const where = diagnostic.file === undefined
        ? ""
        : `${origin.get(diagnostic.file.fileName) ?? diagnostic.file.fileName}: `
      return `${where}${ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n")}`
    })
    assert.deepStrictEqual(errors, [])
  }, 120_000)
})
