/**
 * The SQLite backend: `Sqlite.layer`.
 *
 * @since 0.1.0
 * @category modules
 */
export * as Sqlite from "./Sqlite.js"
