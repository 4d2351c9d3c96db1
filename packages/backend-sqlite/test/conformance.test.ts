import { Sqlite } from "@vela/backend-sqlite"
import { Local, NearCache } from "@vela/core"
import { conformance } from "@vela/core/testing"
import { Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vela-sqlite-conformance-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const onFile = (name: string) => Local.layer.pipe(Layer.provide(Sqlite.layer({ filename: path.join(dir, name) })))
const inMemory = Local.layer.pipe(Layer.provide(Sqlite.layer({ filename: ":memory:" })))

conformance("Sqlite file + Local", onFile("conformance.db"), { runs: 20 })
conformance("Sqlite :memory: + Local", inMemory, { runs: 20 })
for (const policy of ["lru", "lfu", "ttl-only"] as const) {
  conformance(`Sqlite :memory: + Local, maxSize 3, ${policy}`, inMemory, { eviction: { maxSize: 3, policy }, runs: 40 })
}
conformance("Sqlite file + Local, maxSize 3, lru", onFile("eviction.db"), {
  eviction: { maxSize: 3, policy: "lru" },
  runs: 15
})
conformance(
  "NearCache over Sqlite file + Local",
  NearCache.layer({ ttl: 250 }).pipe(Layer.provide(onFile("near.db"))),
  {
    runs: 10
  }
)
