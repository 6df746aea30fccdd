/**
 * DesktopSession's SQLite schema: the transition history, the outbox, connect tickets,
 * usage intervals, rows Postgres refused and share links.
 */
import { SHARE_LINKS_SCHEMA_STEP } from './share-links';

/** The storage schema; steps are only ever appended (workers/shared/object-storage.ts). */
export const SCHEMA = [
  (sql: SqlStorage) => {
    sql.exec(`CREATE TABLE IF NOT EXISTS transitions (
      seq INTEGER PRIMARY KEY, at TEXT NOT NULL, from_status TEXT, to_status TEXT NOT NULL,
      event TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS outbox (
      id INTEGER PRIMARY KEY AUTOINCREMENT, effect TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
      next_at INTEGER NOT NULL, last_error TEXT)`);
    sql.exec('CREATE TABLE IF NOT EXISTS tickets (secret TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, used_at INTEGER)');
    // Running time, for pay-per-hour billing; `rev` > `synced_rev` means Postgres has not seen the change.
    sql.exec(`CREATE TABLE IF NOT EXISTS usage (
      id TEXT PRIMARY KEY, plan TEXT NOT NULL, started_at INTEGER NOT NULL, stopped_at INTEGER,
      stop_reason TEXT, rev INTEGER NOT NULL DEFAULT 1, synced_rev INTEGER NOT NULL DEFAULT 0)`);
  },
  (sql: SqlStorage) => {
    // Rows Postgres refused for what they hold (./write-through.ts): kept here, with the error, for operators.
    sql.exec(`CREATE TABLE IF NOT EXISTS set_aside (
      kind TEXT NOT NULL, key TEXT NOT NULL, error TEXT NOT NULL, outcome TEXT NOT NULL, at INTEGER NOT NULL,
      PRIMARY KEY (kind, key))`);
  },
  SHARE_LINKS_SCHEMA_STEP,
];
