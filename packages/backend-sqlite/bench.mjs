// Sqlite backend against raw better-sqlite3 on the same table shape, in the same run.
//
// Measures: `get` hit and sequential `put` through the Effect API (`Vela.Cache` on `Local` +
// `Sqlite.layer`) and through the Promise facade, against raw prepared statements (a `SELECT` of
// the same row, an autocommit `INSERT OR REPLACE` of the same columns); then 10,000 concurrent
// puts, counted in transactions. Keys: 1,000 distinct, read uniformly in a fixed cycle; values a
// small object. Both `synchronous` settings.
//
// Run: npm run build && node packages/backend-sqlite/bench.mjs
import { Local, Vela } from "@vela/core"
import { createCache } from "@vela/core/promise"
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { Sqlite } from "./dist/index.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vela-sqlite-bench-"))
const keys = Array.from({ length: 1_000 }, (_, i) => `user:${i}`)
const value = (i) => ({ id: i, name: `user ${i}`, active: true, score: i * 1.5 })

const rate = (ops, ms) => Math.round(ops / (ms / 1000))
const results = []
const report = (name, ops, ms, baseline) => {
  const perSec = rate(ops, ms)
  const line = { name, "ops/s": perSec, "µs/op": +(ms * 1000 / ops).toFixed(2) }
  if (baseline !== undefined) line["% of raw"] = Math.round(perSec / baseline * 100)
  results.push(line)
  return perSec
}

const time = (f) => {
  const start = performance.now()
  f()
  return performance.now() - start
}
const timeAsync = async (f) => {
  const start = performance.now()
  await f()
  return performance.now() - start
}

/** Raw better-sqlite3 on a table of the same shape as the backend's. */
const raw = (synchronous) => {
  const filename = path.join(dir, `raw-${synchronous}-${round}.db`)
  const db = new Database(filename)
  db.pragma("journal_mode = WAL")
  db.pragma(`synchronous = ${synchronous}`)
  db.exec(`CREATE TABLE entries (id INTEGER PRIMARY KEY, namespace TEXT NOT NULL, key TEXT NOT NULL,
    value TEXT NOT NULL, expires_at INTEGER, version INTEGER NOT NULL, tags TEXT, written INTEGER NOT NULL,
    used INTEGER NOT NULL, uses INTEGER NOT NULL, UNIQUE (namespace, key));
    CREATE INDEX entries_expiry ON entries (namespace, expires_at, written);
    CREATE INDEX entries_recency ON entries (namespace, used);
    CREATE INDEX entries_frequency ON entries (namespace, uses, used);`)
  const put = db.prepare(`INSERT OR REPLACE INTO entries (namespace, key, value, expires_at, version, tags, written,
    used, uses) VALUES (?, ?, ?, ?, 0, NULL, ?, ?, 1)`)
  const get = db.prepare("SELECT value, expires_at, version, tags FROM entries WHERE namespace = ? AND key = ?")
  return {
    db,
    put,
    get,
    many: db.transaction((n) => {
      for (let i = 0; i < n; i++) put.run("bench", keys[i % keys.length], JSON.stringify(value(i)), null, i, i)
    })
  }
}

let round = 0
const run = async (synchronous) => {
  round++
  const label = (s) => `${s} [synchronous=${synchronous}]`
  const seqPuts = synchronous === "full" ? 2_000 : 10_000
  const gets = 200_000

  // raw
  const r = raw(synchronous)
  const rawPut = report(
    label("raw put (autocommit)"),
    seqPuts,
    time(() => {
      for (let i = 0; i < seqPuts; i++) r.put.run("bench", keys[i % keys.length], JSON.stringify(value(i)), null, i, i)
    })
  )
  const rawGet = report(
    label("raw get hit"),
    gets,
    time(() => {
      for (let i = 0; i < gets; i++) r.get.get("bench", keys[i % keys.length])
    })
  )
  const rawMany = report(label("raw 10,000 puts in one transaction"), 10_000, time(() => r.many(10_000)))
  r.db.close()

  // Effect API
  const commits = []
  const filename = path.join(dir, `vela-${synchronous}-${round}.db`)
  const layer = Local.layer.pipe(
    Layer.provide(Sqlite.layer({ filename, synchronous, onCommit: (n) => commits.push(n) }))
  )
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const context = yield* Layer.build(layer)
    const cache = yield* Effect.provide(Vela.make({ name: "bench" }), context)
    let start = performance.now()
    for (let i = 0; i < seqPuts; i++) yield* cache.put(keys[i % keys.length], value(i))
    report(label("Effect put (sequential)"), seqPuts, performance.now() - start, rawPut)
    start = performance.now()
    for (let i = 0; i < gets; i++) yield* cache.get(keys[i % keys.length])
    report(label("Effect get hit"), gets, performance.now() - start, rawGet)
    commits.length = 0
    start = performance.now()
    yield* Effect.all(Array.from({ length: 10_000 }, (_, i) => cache.put(`c${i}`, value(i))), {
      concurrency: "unbounded",
      discard: true
    })
    report(
      label(`Effect 10,000 concurrent puts (${commits.length} transactions)`),
      10_000,
      performance.now() - start,
      rawMany
    )
  })))

  // Promise facade
  commits.length = 0
  const facade = createCache({
    name: "facade",
    backend: Sqlite.layer({
      filename: path.join(dir, `facade-${synchronous}-${round}.db`),
      synchronous,
      onCommit: (n) => commits.push(n)
    })
  })
  const facadePuts = seqPuts
  let ms = await timeAsync(async () => {
    for (let i = 0; i < facadePuts; i++) await facade.put(keys[i % keys.length], value(i))
  })
  report(label("facade put (sequential)"), facadePuts, ms, rawPut)
  ms = await timeAsync(async () => {
    for (let i = 0; i < gets; i++) await facade.get(keys[i % keys.length])
  })
  report(label("facade get hit"), gets, ms, rawGet)
  commits.length = 0
  ms = await timeAsync(() => Promise.all(Array.from({ length: 10_000 }, (_, i) => facade.put(`c${i}`, value(i)))))
  report(label(`facade 10,000 concurrent puts (${commits.length} transactions)`), 10_000, ms, rawMany)
  await facade.close()
}

try {
  // A first round warms the JIT and the file system; only the second is reported.
  await run("normal")
  results.length = 0
  for (const synchronous of ["full", "normal"]) await run(synchronous)
  console.table(results)
} finally {
  fs.rmSync(dir, { recursive: true, force: true })
}
