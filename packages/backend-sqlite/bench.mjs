// Sqlite backend against raw better-sqlite3 on the same table shape, in the same run.
//
// Measures: `get` hit and one-at-a-time `put` through the Effect API (`Vela.Cache` on `Local` +
// `Sqlite.layer`) and through the Promise facade, against raw prepared statements (a `SELECT` of
// the same row, an autocommit `INSERT OR REPLACE` of the same columns), interleaved in rounds and
// reported as the best round of each (the machine is shared: the best round is the least
// disturbed); then 10,000 concurrent puts, with the transactions they took. Keys: 1,000 distinct,
// read in a fixed cycle; values a small object. Both `synchronous` settings.
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
const rounds = 5
const results = []

const report = (name, ops, ms, baseline) => {
  const perSec = Math.round(ops / (ms / 1000))
  const line = { name, "ops/s": perSec, "µs/op": +(ms * 1000 / ops).toFixed(2) }
  if (baseline !== undefined) line["% of raw"] = Math.round(perSec / baseline * 100)
  results.push(line)
  return perSec
}

const timed = async (f) => {
  const start = performance.now()
  await f()
  return performance.now() - start
}

/** Runs each contender once per round, interleaved; returns each one's best time. */
const bestOf = async (contenders) => {
  const best = contenders.map(() => Infinity)
  for (let round = 0; round < rounds; round++) {
    for (const [i, f] of contenders.entries()) best[i] = Math.min(best[i], await timed(f))
  }
  return best
}

/** Raw better-sqlite3 on a table of the same shape as the backend's. */
const raw = (filename, synchronous) => {
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
  const putOne = (i) => put.run("bench", keys[i % keys.length], JSON.stringify(value(i)), null, i, i)
  const many = db.transaction((n) => {
    for (let i = 0; i < n; i++) putOne(i)
  })
  return { db, get, putOne, many }
}

let run = 0
const measure = async (synchronous, puts, gets) => {
  run++
  const label = (s) => `${s} [synchronous=${synchronous}]`
  const file = (name) => path.join(dir, `${name}-${synchronous}-${run}.db`)
  const commits = []
  const onCommit = (n) => commits.push(n)

  const r = raw(file("raw"), synchronous)
  const facade = createCache({
    name: "facade",
    backend: Sqlite.layer({ filename: file("facade"), synchronous, onCommit })
  })
  const layer = Local.layer.pipe(Layer.provide(Sqlite.layer({ filename: file("vela"), synchronous, onCommit })))

  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const context = yield* Layer.build(layer)
    const cache = yield* Effect.provide(Vela.make({ name: "bench" }), context)
    // Every key present in all three before anything is timed.
    r.many(keys.length)
    yield* Effect.forEach(keys, (key, i) => cache.put(key, value(i)), { concurrency: "unbounded", discard: true })
    yield* Effect.promise(() => Promise.all(keys.map((key, i) => facade.put(key, value(i)))))

    const [rawPut, effectPut, facadePut] = yield* Effect.promise(() =>
      bestOf([
        () => {
          for (let i = 0; i < puts; i++) r.putOne(i)
        },
        () =>
          Effect.runPromise(Effect.gen(function*() {
            for (let i = 0; i < puts; i++) yield* cache.put(keys[i % keys.length], value(i))
          })),
        async () => {
          for (let i = 0; i < puts; i++) await facade.put(keys[i % keys.length], value(i))
        }
      ])
    )
    const rawPuts = report(label("raw put, autocommit, one at a time"), puts, rawPut)
    report(label("Effect put, one at a time"), puts, effectPut, rawPuts)
    report(label("facade put, one at a time"), puts, facadePut, rawPuts)

    const [rawGet, effectGet, facadeGet] = yield* Effect.promise(() =>
      bestOf([
        () => {
          for (let i = 0; i < gets; i++) r.get.get("bench", keys[i % keys.length])
        },
        () =>
          Effect.runPromise(Effect.gen(function*() {
            for (let i = 0; i < gets; i++) yield* cache.get(keys[i % keys.length])
          })),
        async () => {
          for (let i = 0; i < gets; i++) await facade.get(keys[i % keys.length])
        }
      ])
    )
    const rawGets = report(label("raw get hit"), gets, rawGet)
    report(label("Effect get hit"), gets, effectGet, rawGets)
    report(label("facade get hit"), gets, facadeGet, rawGets)

    const rawMany = report(
      label("raw 10,000 puts in one transaction"),
      10_000,
      yield* Effect.promise(() => timed(() => r.many(10_000)))
    )
    commits.length = 0
    const start = performance.now()
    yield* Effect.all(Array.from({ length: 10_000 }, (_, i) => cache.put(`c${i}`, value(i))), {
      concurrency: "unbounded",
      discard: true
    })
    report(
      label(`Effect 10,000 concurrent puts: ${commits.length} transaction(s)`),
      10_000,
      performance.now() - start,
      rawMany
    )
    commits.length = 0
    const ms = yield* Effect.promise(() =>
      timed(() => Promise.all(Array.from({ length: 10_000 }, (_, i) => facade.put(`c${i}`, value(i)))))
    )
    report(label(`facade 10,000 concurrent puts: ${commits.length} transaction(s)`), 10_000, ms, rawMany)
  })))
  await facade.close()
  r.db.close()
}

try {
  // A first run warms the JIT and the file system; only the later ones are reported.
  await measure("normal", 500, 10_000)
  results.length = 0
  await measure("full", 300, 50_000)
  await measure("normal", 3_000, 50_000)
  console.table(results)
} finally {
  fs.rmSync(dir, { recursive: true, force: true })
}
