/**
 * DesktopSession's configuration: its SQLite schema (the transition history, the outbox,
 * connect tickets, usage intervals, rows Postgres refused and share links) and the rules
 * it decides with.
 */
import type { DecideRules } from '../../src/desktop/decide';
import type { Config } from '../../src/env';
import { randomId } from '../../src/lib/ids';
import { SHARE_LINKS_SCHEMA_STEP } from './share-links';

const DEFAULT_WATCHDOG_SECONDS = 600;

/** The desktop's rules as configured: each step's watchdog, the warnings' lead, fresh ids. */
export function decideRules(cfg: Config): DecideRules {
  return {
    timers: {
      watchdogSeconds: (status) => cfg.WATCHDOG_SECONDS[status] ?? DEFAULT_WATCHDOG_SECONDS,
      warningLeadMs: cfg.WARNING_LEAD_MINUTES * 60_000,
    },
    newId: randomId,
  };
}

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
