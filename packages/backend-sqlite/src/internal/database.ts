/**
 * Opening a database file: open, switch to WAL, create or check the layout, prepare every
 * statement once. Each step that fails says which file and which step, and closes what it opened.
 */
import { BackendError } from "@vela/core"
import Database from "better-sqlite3"
import { ddl, layoutVersion } from "./schema.js"

export type Row = {
  readonly value: string
  readonly expires_at: number | null
  readonly version: number
  readonly tags: string | null
}

export type Found = { readonly id: number; readonly expires_at: number | null; readonly tags: string | null }

/** The failure of `operation` on `filename`, with the file named in the message. */
export const failure = (filename: string, operation: string, cause: unknown): BackendError => {
  const original = cause instanceof Error ? cause : new Error(String(cause))
  const wrapped = Object.assign(new Error(`${filename}: ${original.message}`, { cause: original }), {
    code: (original as { code?: unknown }).code
  })
  return new BackendError({ backend: "sqlite", operation, cause: wrapped })
}

export interface OpenSettings {
  readonly filename: string
  readonly busyTimeout: number
  readonly synchronous: "full" | "normal"
}

/** Opens and prepares `filename`; throws a `BackendError` naming the step that failed. */
export const open = (settings: OpenSettings): { readonly db: Database; readonly statements: Statements } => {
  const { filename } = settings
  let db: Database
  try {
    db = new Database(filename, { timeout: settings.busyTimeout })
  } catch (cause) {
    throw failure(filename, "open", cause)
  }
  const step = <A>(operation: string, f: () => A): A => {
    try {
      return f()
    } catch (cause) {
      try {
        db.close()
      } catch {
        // The failure being reported matters more than one from closing.
      }
      throw cause instanceof BackendError ? cause : failure(filename, operation, cause)
    }
  }
  step("configure", () => {
    const mode = db.pragma("journal_mode = WAL", { simple: true })
    if (mode !== "wal" && !db.memory) throw new Error(`journal_mode is ${String(mode)}, WAL could not be enabled`)
    db.pragma(`synchronous = ${settings.synchronous === "full" ? "FULL" : "NORMAL"}`)
  })
  step("migrate", () =>
    db.transaction(() => {
      db.exec(ddl)
      const found = db.prepare<[string], string>("SELECT value FROM vela_meta WHERE name = ?").pluck().get("layout")
      if (found !== undefined && Number(found) > layoutVersion) {
        throw new Error(`the file has layout ${found}; this version of @vela/backend-sqlite reads ${layoutVersion}`)
      }
      // Always a write, so a file that cannot be written fails here and not at the first put.
      db.prepare("INSERT OR REPLACE INTO vela_meta (name, value) VALUES ('layout', ?)").run(String(layoutVersion))
    }).immediate())
  const statements = step("prepare", () => prepare(db))
  // From now on writes wait for a busy lock asynchronously (see `Writer`); SQLite's own waiting,
  // which blocks the thread, stays short.
  step("configure", () => db.pragma(`busy_timeout = ${shortBusyTimeout(settings.busyTimeout)}`))
  return { db, statements }
}

/** How long SQLite itself may block the thread on a busy lock once the file is open, in ms. */
export const shortBusyTimeout = (busyTimeout: number): number => Math.min(busyTimeout, 10)

/** Runs `f` letting SQLite wait the whole `busyTimeout` (for the rare synchronous writes). */
export const waitingLong = <A>(db: Database, busyTimeout: number, f: () => A): A => {
  db.pragma(`busy_timeout = ${busyTimeout}`)
  try {
    return f()
  } finally {
    db.pragma(`busy_timeout = ${shortBusyTimeout(busyTimeout)}`)
  }
}

export type Statements = ReturnType<typeof prepare>

const prepare = (db: Database) => ({
  get: db.prepare<[string, string], Row>(
    "SELECT value, expires_at, version, tags FROM vela_entries WHERE namespace = ? AND key = ?"
  ),
  expiresAt: db.prepare<[string, string], number | null>(
    "SELECT expires_at FROM vela_entries WHERE namespace = ? AND key = ?"
  ).pluck(),
  find: db.prepare<[string, string], Found>(
    "SELECT id, expires_at, tags FROM vela_entries WHERE namespace = ? AND key = ?"
  ),
  insert: db.prepare<[string, string, string, number | null, number, string | null, number, number]>(
    `INSERT INTO vela_entries (namespace, key, value, expires_at, version, tags, written, used, uses)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)`
  ),
  /** The parameter before the id: 1 when the row held an expired entry, whose uses are not the new entry's. */
  update: db.prepare<[string, number | null, number, string | null, number, number, number, number]>(
    `UPDATE vela_entries SET value = ?, expires_at = ?, version = ?, tags = ?, written = ?, used = max(used, ?),
     uses = CASE WHEN ? = 1 THEN 1 ELSE uses + 1 END WHERE id = ?`
  ),
  touch: db.prepare<[number, number, string, string]>(
    "UPDATE vela_entries SET used = max(used, ?), uses = uses + ? WHERE namespace = ? AND key = ?"
  ),
  tag: db.prepare<[string, string, number]>("INSERT OR IGNORE INTO vela_tags (namespace, tag, entry) VALUES (?, ?, ?)"),
  untag: db.prepare<[number]>("DELETE FROM vela_tags WHERE entry = ?"),
  delete: db.prepare<[number]>("DELETE FROM vela_entries WHERE id = ?"),
  countTag: db.prepare<[number, string, string], { readonly total: number; readonly expired: number }>(
    `SELECT count(*) AS total, coalesce(sum(e.expires_at IS NOT NULL AND e.expires_at <= ?), 0) AS expired
     FROM vela_tags t JOIN vela_entries e ON e.id = t.entry WHERE t.namespace = ? AND t.tag = ?`
  ),
  deleteTag: db.prepare<[string, string]>(
    "DELETE FROM vela_entries WHERE id IN (SELECT entry FROM vela_tags WHERE namespace = ? AND tag = ?)"
  ),
  clear: db.prepare<[string]>("DELETE FROM vela_entries WHERE namespace = ?"),
  size: db.prepare<[{ readonly namespace: string; readonly now: number }], number>(
    `SELECT coalesce((SELECT rows FROM vela_namespaces WHERE namespace = @namespace), 0)
     - (SELECT count(*) FROM vela_entries WHERE namespace = @namespace AND expires_at <= @now)`
  ).pluck(),
  rows: db.prepare<[string], number>("SELECT rows FROM vela_namespaces WHERE namespace = ?").pluck(),
  registerNamespace: db.prepare<[string, string]>(
    "INSERT OR IGNORE INTO vela_namespaces (namespace, rows) SELECT ?, count(*) FROM vela_entries WHERE namespace = ?"
  ),
  maxUsed: db.prepare<[string], number | null>("SELECT max(used) FROM vela_entries WHERE namespace = ?").pluck(),
  hasExpired: db.prepare<[string, number], number>(
    "SELECT EXISTS (SELECT 1 FROM vela_entries WHERE namespace = ? AND expires_at <= ?)"
  ).pluck(),
  sweep: db.prepare<[string, number, number]>(
    `DELETE FROM vela_entries WHERE id IN
     (SELECT id FROM vela_entries WHERE namespace = ? AND expires_at <= ? ORDER BY expires_at LIMIT ?)`
  ),
  evictLru: db.prepare<[string]>(
    "DELETE FROM vela_entries WHERE id = (SELECT id FROM vela_entries WHERE namespace = ? ORDER BY used LIMIT 1)"
  ),
  evictLfu: db.prepare<[string]>(
    "DELETE FROM vela_entries WHERE id = (SELECT id FROM vela_entries WHERE namespace = ? ORDER BY uses, used LIMIT 1)"
  ),
  evictSoonest: db.prepare<[string]>(
    `DELETE FROM vela_entries WHERE id = (SELECT id FROM vela_entries
     WHERE namespace = ? AND expires_at IS NOT NULL ORDER BY expires_at, written LIMIT 1)`
  ),
  evictOldest: db.prepare<[string]>(
    `DELETE FROM vela_entries WHERE id = (SELECT id FROM vela_entries
     WHERE namespace = ? AND expires_at IS NULL ORDER BY written LIMIT 1)`
  )
})
