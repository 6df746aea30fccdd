/**
 * The desktop's outbox: effects stored in the same transaction as the change that caused
 * them, run after it, removed once they succeed and retried with backoff while they fail.
 *
 * A round runs its entries together, for the cost of a create's dozen entries: an index
 * entry superseded by a newer one for the same indexes goes with the newer one (an index
 * keeps the highest revision, so sending only the newest changes nothing); events and
 * audit records go to the events queue in one batch (each alone again if the batch is
 * refused, so one bad message holds back no other); the entries done are deleted in one
 * statement. An entry already running (the index sync and a flush may both reach it)
 * is not run twice: the second caller waits for the first.
 */
import type { OutboxEffect } from '../../src/desktop/session-state';
import type { Bindings } from '../../src/env';
import type { ObjectStorage } from '../shared/object-storage';
import { runEffect, sendEvents } from './effects';
import { backoffMs } from './write-through';

type OutboxRow = { id: number; effect: string; attempts: number };
type Entry = { row: OutboxRow; effect: OutboxEffect };
type QueuedEvent = Extract<OutboxEffect, { kind: 'event' | 'audit' }>;

/** Rows per statement: a Durable Object's SQL takes at most 100 bound parameters. */
const ROWS_PER_STATEMENT = 45;

export class Outbox {
  /** Entries running now, with whether they succeeded. */
  private readonly running = new Map<number, Promise<boolean>>();

  constructor(
    private readonly store: ObjectStorage,
    private readonly env: Bindings,
  ) {}

  add(effects: OutboxEffect[], now = Date.now()): void {
    for (let i = 0; i < effects.length; i += ROWS_PER_STATEMENT) {
      const chunk = effects.slice(i, i + ROWS_PER_STATEMENT);
      this.store.run(
        `INSERT INTO outbox (effect, next_at) VALUES ${chunk.map(() => '(?, ?)').join(', ')}`,
        ...chunk.flatMap((e) => [JSON.stringify(e), now]),
      );
    }
  }

  /** Runs every entry that is due, oldest first. */
  async runDue(): Promise<void> {
    await this.runRows(this.store.rows<OutboxRow>('SELECT id, effect, attempts FROM outbox WHERE next_at <= ? ORDER BY id', Date.now()));
  }

  /** Runs the owners' index entries now; false when one could not be delivered. */
  async runIndexEntries(): Promise<boolean> {
    return (await this.runRows(this.indexRows())).every(Boolean);
  }

  hasIndexEntries(): boolean {
    return this.indexRows().length > 0;
  }

  size(): number {
    return this.store.scalar<number>('SELECT count(*) FROM outbox') ?? 0;
  }

  /** When the next entry is due (null: empty). */
  nextAt(): number | null {
    return this.store.scalar<number>('SELECT min(next_at) FROM outbox');
  }

  private indexRows(): OutboxRow[] {
    return this.store.rows<OutboxRow>(`SELECT id, effect, attempts FROM outbox WHERE json_extract(effect, '$.kind') = 'index' ORDER BY id`);
  }

  /** Runs the rows not already running, and answers each row's success once it is known. */
  private runRows(rows: OutboxRow[]): Promise<boolean[]> {
    const fresh = rows.filter((r) => !this.running.has(r.id));
    if (fresh.length > 0) {
      const round = this.runRound(fresh);
      for (const r of fresh)
        this.running.set(
          r.id,
          round.then((ok) => ok.has(r.id)),
        );
      const forget = () => {
        for (const r of fresh) this.running.delete(r.id);
      };
      void round.then(forget, forget);
    }
    return Promise.all(rows.map((r) => this.running.get(r.id) ?? Promise.resolve(true)));
  }

  /** One round: answers the ids that succeeded (deleted), after recording the others' retries. Never rejects. */
  private async runRound(rows: OutboxRow[]): Promise<Set<number>> {
    const entries: Entry[] = rows.map((row) => ({ row, effect: JSON.parse(row.effect) as OutboxEffect }));
    const newestIndex = new Map<string, Entry>();
    for (const e of entries) if (e.effect.kind === 'index') newestIndex.set(e.effect.names.join('\n'), e);
    const outcome = new Map<Entry, unknown>();
    const events: { entry: Entry; effect: QueuedEvent }[] = [];
    for (const e of entries) {
      if (e.effect.kind === 'event' || e.effect.kind === 'audit') events.push({ entry: e, effect: e.effect });
      else if (e.effect.kind !== 'index' || newestIndex.get(e.effect.names.join('\n')) === e)
        outcome.set(e, await attempt(() => runEffect(this.env, e.effect)));
    }
    if (events.length > 0) {
      const batch = await attempt(() =>
        sendEvents(
          this.env,
          events.map((e) => e.effect),
        ),
      );
      for (const e of events) outcome.set(e.entry, batch === null ? null : await attempt(() => runEffect(this.env, e.effect)));
    }
    const succeeded = new Set<number>();
    const now = Date.now();
    for (const e of entries) {
      // A superseded index entry shares the fate of the newest one, which carries its change.
      const own = e.effect.kind === 'index' ? newestIndex.get(e.effect.names.join('\n')) : e;
      const err = own ? outcome.get(own) : null;
      if (err === null) succeeded.add(e.row.id);
      else {
        const next = now + backoffMs(e.row.attempts);
        this.store.run('UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?', next, String(err), e.row.id);
      }
    }
    const ids = [...succeeded];
    for (let i = 0; i < ids.length; i += 2 * ROWS_PER_STATEMENT) {
      const chunk = ids.slice(i, i + 2 * ROWS_PER_STATEMENT);
      this.store.run(`DELETE FROM outbox WHERE id IN (${chunk.map(() => '?').join(', ')})`, ...chunk);
    }
    return succeeded;
  }
}

/** Null when `work` succeeded, else what it threw. */
async function attempt(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
    return null;
  } catch (err) {
    return err ?? new Error('effect failed');
  }
}
