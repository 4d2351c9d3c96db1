/**
 * The file layout, created on first open and checked on every open. One file serves many caches:
 * every row carries its cache's namespace.
 *
 * - `vela_entries`: one row per (namespace, key) with the encoded value, `expires_at` (epoch ms of
 *   the cache's clock, `NULL` for no expiry), `version`, the tags as a JSON array, and the sequence
 *   numbers eviction ranks by (`written`, `used`, `uses`).
 * - `vela_tags`: (namespace, tag, entry) rows, the primary key serving `invalidateTag` and an index
 *   on `entry` serving the removal of an entry's tags (a trigger, so every delete path keeps it).
 * - `vela_namespaces`: rows per namespace, kept by triggers, so `size` and `maxSize` never count a
 *   whole namespace.
 * - `vela_meta`: the layout version, so a file written by a later layout is refused, not misread.
 */

/** Bumped whenever the layout changes in a way an older reader would misread. */
export const layoutVersion = 1

export const ddl = `
CREATE TABLE IF NOT EXISTS vela_meta (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS vela_entries (
  id INTEGER PRIMARY KEY,
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  expires_at INTEGER,
  version INTEGER NOT NULL,
  tags TEXT,
  written INTEGER NOT NULL,
  used INTEGER NOT NULL,
  uses INTEGER NOT NULL,
  UNIQUE (namespace, key)
);
CREATE INDEX IF NOT EXISTS vela_entries_expiry ON vela_entries (namespace, expires_at, written);
CREATE INDEX IF NOT EXISTS vela_entries_recency ON vela_entries (namespace, used);
CREATE INDEX IF NOT EXISTS vela_entries_frequency ON vela_entries (namespace, uses, used);

CREATE TABLE IF NOT EXISTS vela_tags (
  namespace TEXT NOT NULL,
  tag TEXT NOT NULL,
  entry INTEGER NOT NULL,
  PRIMARY KEY (namespace, tag, entry)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vela_tags_entry ON vela_tags (entry);

CREATE TABLE IF NOT EXISTS vela_namespaces (
  namespace TEXT PRIMARY KEY,
  rows INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS vela_entries_inserted AFTER INSERT ON vela_entries BEGIN
  UPDATE vela_namespaces SET rows = rows + 1 WHERE namespace = new.namespace;
END;
CREATE TRIGGER IF NOT EXISTS vela_entries_deleted AFTER DELETE ON vela_entries BEGIN
  UPDATE vela_namespaces SET rows = rows - 1 WHERE namespace = old.namespace;
  DELETE FROM vela_tags WHERE entry = old.id;
END;
`
