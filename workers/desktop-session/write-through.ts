/**
 * The desktop's copy in Postgres (lists, billing, audit joins), written after the object
 * has stored a change: the newest snapshot, the transitions Postgres has not seen, and
 * the usage intervals that changed. Several changes within DB_COALESCE_MS go out as one
 * write; a failed write is retried with backoff from the object's alarm, so an outage
 * loses nothing. A row Postgres refuses for what it holds is set aside with its error
 * and reported to admins, and holds nothing else back.
 */
import { withDb } from '../../src/db/client';
import { describeDbError } from '../../src/db/errors';
import { type RefusedRow, writeThrough } from '../../src/db/queries';
import type { SessionState, OutboxEffect } from '../../src/desktop/session-state';
import type { Config } from '../../src/env';
import { randomId } from '../../src/lib/ids';
import type { DesktopStatus, TransitionRecord } from '../../src/schemas/desktop';
import type { ObjectStorage } from '../shared/object-storage';

export interface SyncState {
  /** Revision and transition seq already written to Postgres. */
  dbRevision: number;
  dbSeq: number;
  failures: number;
  /** No write before this time: a retry's backoff, or the coalescing window after a write. */
  notBefore: number | null;
  lastError: string | null;
}

const DB_COALESCE_MS = 250;
const RETRY_CAP_MS = 60_000;
export const backoffMs = (failures: number) => Math.min(RETRY_CAP_MS, 500 * 2 ** Math.min(failures, 10));
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

type UsageRow = { id: string; plan: string; started_at: number; stopped_at: number | null; stop_reason: string | null; rev: number };
type TransitionRow = {
  seq: number;
  at: string;
  from_status: string | null;
  to_status: string;
  event: string;
  actor: string;
  reason: string;
};

export function syncState(store: ObjectStorage): SyncState {
  return store.get<SyncState>('sync') ?? { dbRevision: 0, dbSeq: 0, failures: 0, notBefore: null, lastError: null };
}

/** When the next write is due (null: Postgres has everything). */
export function writeDueAt(store: ObjectStorage, s: SessionState | null, now: number): number | null {
  if (!s) return null;
  const sync = syncState(store);
  const usagePending = (store.scalar<number>('SELECT count(*) FROM usage WHERE rev > synced_rev') ?? 0) > 0;
  return s.revision > sync.dbRevision || usagePending ? (sync.notBefore ?? now) : null;
}

export function transitionsAfter(store: ObjectStorage, seq: number): TransitionRecord[] {
  return store.rows<TransitionRow>('SELECT * FROM transitions WHERE seq > ? ORDER BY seq', seq).map((r) => ({
    seq: r.seq,
    at: r.at,
    from: r.from_status as DesktopStatus | null,
    to: r.to_status as DesktopStatus,
    event: r.event,
    actor: r.actor,
    reason: r.reason,
  }));
}

/**
 * One write of what Postgres has not seen. Answers the audit records of rows it refused for
 * the first time, for the caller's outbox.
 */
export async function writeToPostgres(
  store: ObjectStorage,
  cfg: Config,
  s: SessionState | null,
  wakeAt: number | null,
): Promise<OutboxEffect[]> {
  const sync = syncState(store);
  const usage = store.rows<UsageRow>('SELECT id, plan, started_at, stopped_at, stop_reason, rev FROM usage WHERE rev > synced_rev');
  if (!s || (s.revision <= sync.dbRevision && usage.length === 0)) return [];
  if (sync.notBefore && sync.notBefore > Date.now()) return [];
  const id = s.desktop.id;
  const transitions = transitionsAfter(store, sync.dbSeq).map((t) => ({ ...t, desktopId: id }));
  try {
    const refused = await withDb(cfg, (db) =>
      writeThrough(
        db,
        { desktop: s.desktop, version: s.revision, nextDueAt: iso(wakeAt) },
        transitions,
        usage.map((u) => ({
          id: u.id,
          desktopId: id,
          userId: s.desktop.userId,
          plan: u.plan,
          startedAt: new Date(u.started_at).toISOString(),
          stoppedAt: iso(u.stopped_at),
          stopReason: u.stop_reason,
        })),
      ),
    );
    // Only what was read above is known to be written; later changes go out next round.
    const now = syncState(store);
    store.put('sync', {
      ...now,
      dbRevision: Math.max(now.dbRevision, s.revision),
      dbSeq: Math.max(now.dbSeq, s.seq),
      failures: 0,
      // A create reports several steps within a few hundred ms; they go out as one write.
      notBefore: Date.now() + DB_COALESCE_MS,
      lastError: null,
    } satisfies SyncState);
    for (const u of usage) store.run('UPDATE usage SET synced_rev = ? WHERE id = ? AND synced_rev < ?', u.rev, u.id, u.rev);
    return setAside(store, id, refused);
  } catch (err) {
    const failures = sync.failures + 1;
    store.put('sync', { ...sync, failures, notBefore: Date.now() + backoffMs(failures), lastError: describeDbError(err) });
    console.warn(JSON.stringify({ msg: 'postgres write-through failed; kept in outbox', desktopId: id, failures }));
    return [];
  }
}

/** Rows set aside so far, with Postgres' error, for operators (syncStatus). */
export function setAsideRows(store: ObjectStorage): RefusedRow[] {
  return store
    .rows<{ kind: string; key: string; error: string; outcome: string }>('SELECT kind, key, error, outcome FROM set_aside ORDER BY at')
    .map((r) => ({ ...r, kind: r.kind as RefusedRow['kind'], outcome: r.outcome as RefusedRow['outcome'] }));
}

/** Each refused row is recorded once, with its error, and reported once in the audit log. */
function setAside(store: ObjectStorage, desktopId: string, refused: RefusedRow[]): OutboxEffect[] {
  const now = Date.now();
  const effects: OutboxEffect[] = [];
  for (const r of refused) {
    const fresh =
      store.run(
        'INSERT INTO set_aside (kind, key, error, outcome, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
        r.kind,
        r.key,
        r.error,
        r.outcome,
        now,
      ) > 0;
    if (!fresh) continue;
    const what = r.outcome === 'cleaned' ? 'written without its control characters' : 'set aside';
    effects.push({
      kind: 'audit',
      record: {
        id: randomId('au'),
        at: new Date(now).toISOString(),
        actor: 'system:write-through',
        role: 'system',
        action: 'desktop.row_refused',
        target: desktopId,
        sourceIp: null,
        requestId: null,
        outcome: r.outcome,
        details: { row: `${r.kind} ${r.key}`, error: r.error, reason: `Postgres refused the ${r.kind} row; it was ${what}` },
      },
    });
    console.warn(
      JSON.stringify({ msg: 'postgres refused a row', desktopId, kind: r.kind, key: r.key, outcome: r.outcome, error: r.error }),
    );
  }
  return effects;
}

export type UsageInterval = { id: string; plan: string; startedAt: number; stoppedAt: number | null; stopReason: string | null };

/** The desktop's usage intervals (ms), oldest first. */
export function usageIntervals(store: ObjectStorage): UsageInterval[] {
  return store
    .rows<UsageRow>('SELECT id, plan, started_at, stopped_at, stop_reason, rev FROM usage ORDER BY started_at')
    .map((r) => ({ id: r.id, plan: r.plan, startedAt: r.started_at, stoppedAt: r.stopped_at, stopReason: r.stop_reason }));
}
