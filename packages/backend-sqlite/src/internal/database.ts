/**
 * Opening a database file: open, switch to WAL, create or check the layout, prepare every
 * statement once. Each step that fails says which file and which step, and closes what it opened.
 */
import { BackendError } from "@vela/core"
import Sqlite3 from "better-sqlite3"
import type { Database, Statement } from "better-sqlite3"
import { ddl, layoutVersion } from "./schema.js"

export type Row = {
  readonly value: string
  readonly expires_at: number | null
  readonly version: number
  readonly tags: string | null
}

export type Located = Row & { readonly id: number }

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
    db = new Sqlite3(filename, { timeout: settings.busyTimeout })
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

/** A statement whose rows are one column, read as that column's value (pluck). */
const column = <P extends Array<unknown>, R>(db: Database, source: string): Statement<P, R> =>
  db.prepare<P, R>(source).pluck()

export interface Statements {
  readonly get: Statement<[string, string], Row>
  readonly expiresAt: Statement<[string, string], number | null>
  /** The whole row with its id, for the atomic operations' transactions. */
  readonly locate: Statement<[string, string], Located>
  readonly find: Statement<[string, string], Found>
  readonly insert: Statement<[string, string, string, number | null, number, string | null, number, number]>
  /** The parameter before the id: 1 when the row held an expired entry, whose uses are not the new entry's. */
  readonly update: Statement<[string, number | null, number, string | null, number, number, number, number]>
  readonly touch: Statement<[number, number, string, string]>
  /** Sets a row's `expires_at`, counting as a use. */
  readonly retime: Statement<[number | null, number, number]>
  readonly tag: Statement<[string, string, number]>
  readonly untag: Statement<[number]>
  readonly delete: Statement<[number]>
  readonly countTag: Statement<[number, string, string], { readonly total: number; readonly expired: number }>
  readonly deleteTag: Statement<[string, string]>
  readonly clear: Statement<[string]>
  readonly size: Statement<[{ readonly namespace: string; readonly now: number }], number>
  readonly rows: Statement<[string], number>
  readonly registerNamespace: Statement<[string, string]>
  readonly maxUsed: Statement<[string], number | null>
  readonly hasExpired: Statement<[string, number], number>
  readonly sweep: Statement<[string, number, number]>
  readonly evictLru: Statement<[string]>
  readonly evictLfu: Statement<[string]>
  readonly evictSoonest: Statement<[string]>
  readonly evictOldest: Statement<[string]>
}

const prepare = (db: Database): Statements => ({
  get: db.prepare(
    "SELECT value, expires_at, version, tags FROM vela_entries WHERE namespace = ? AND key = ?"
  ),
  expiresAt: column(
    db,
    "SELECT expires_at FROM vela_entries WHERE namespace = ? AND key = ?"
  ),
  locate: db.prepare(
    "SELECT id, value, expires_at, version, tags FROM vela_entries WHERE namespace = ? AND key = ?"
  ),
  find: db.prepare(
    "SELECT id, expires_at, tags FROM vela_entries WHERE namespace = ? AND key = ?"
  ),
  insert: db.prepare(
    `INSERT INTO vela_entries (namespace, key, value, expires_at, version, tags, written, used, uses)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)`
  ),
  /** The parameter before the id: 1 when the row held an expired entry, whose uses are not the new entry's. */
  update: db.prepare(
    `UPDATE vela_entries SET value = ?, expires_at = ?, version = ?, tags = ?, written = ?, used = max(used, ?),
     uses = CASE WHEN ? = 1 THEN 1 ELSE uses + 1 END WHERE id = ?`
  ),
  touch: db.prepare(
    "UPDATE vela_entries SET used = max(used, ?), uses = uses + ? WHERE namespace = ? AND key = ?"
  ),
  retime: db.prepare("UPDATE vela_entries SET expires_at = ?, used = max(used, ?) WHERE id = ?"),
  tag: db.prepare(
    "INSERT OR IGNORE INTO vela_tags (namespace, tag, entry) VALUES (?, ?, ?)"
  ),
  untag: db.prepare("DELETE FROM vela_tags WHERE entry = ?"),
  delete: db.prepare("DELETE FROM vela_entries WHERE id = ?"),
  countTag: db.prepare(
    `SELECT count(*) AS total, coalesce(sum(e.expires_at IS NOT NULL AND e.expires_at <= ?), 0) AS expired
     FROM vela_tags t JOIN vela_entries e ON e.id = t.entry WHERE t.namespace = ? AND t.tag = ?`
  ),
  deleteTag: db.prepare(
    "DELETE FROM vela_entries WHERE id IN (SELECT entry FROM vela_tags WHERE namespace = ? AND tag = ?)"
  ),
  clear: db.prepare("DELETE FROM vela_entries WHERE namespace = ?"),
  size: column(
    db,
    `SELECT coalesce((SELECT rows FROM vela_namespaces WHERE namespace = @namespace), 0)
     - (SELECT count(*) FROM vela_entries WHERE namespace = @namespace AND expires_at <= @now)`
  ),
  rows: column(db, "SELECT rows FROM vela_namespaces WHERE namespace = ?"),
  registerNamespace: db.prepare(
    "INSERT OR IGNORE INTO vela_namespaces (namespace, rows) SELECT ?, count(*) FROM vela_entries WHERE namespace = ?"
  ),
  maxUsed: column(db, "SELECT max(used) FROM vela_entries WHERE namespace = ?"),
  hasExpired: column(
    db,
    "SELECT EXISTS (SELECT 1 FROM vela_entries WHERE namespace = ? AND expires_at <= ?)"
  ),
  sweep: db.prepare(
    `DELETE FROM vela_entries WHERE id IN
     (SELECT id FROM vela_entries WHERE namespace = ? AND expires_at <= ? ORDER BY expires_at LIMIT ?)`
  ),
  evictLru: db.prepare(
    "DELETE FROM vela_entries WHERE id = (SELECT id FROM vela_entries WHERE namespace = ? ORDER BY used LIMIT 1)"
  ),
  evictLfu: db.prepare(
    "DELETE FROM vela_entries WHERE id = (SELECT id FROM vela_entries WHERE namespace = ? ORDER BY uses, used LIMIT 1)"
  ),
  evictSoonest: db.prepare(
    `DELETE FROM vela_entries WHERE id = (SELECT id FROM vela_entries
     WHERE namespace = ? AND expires_at IS NOT NULL ORDER BY expires_at, written LIMIT 1)`
  ),
  evictOldest: db.prepare(
    `DELETE FROM vela_entries WHERE id = (SELECT id FROM vela_entries
     WHERE namespace = ? AND expires_at IS NULL ORDER BY written LIMIT 1)`
  )
})
