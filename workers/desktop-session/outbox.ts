/**
 * The desktop's outbox: effects stored in the same transaction as the change that caused
 * them, run after it, removed once they succeed and retried with backoff while they fail.
 */
import type { OutboxEffect } from '../../src/desktop/session-state';
import type { Bindings } from '../../src/env';
import type { ObjectStorage } from '../shared/object-storage';
import { runEffect } from './effects';
import { backoffMs } from './write-through';

type OutboxRow = { id: number; effect: string; attempts: number };

export class Outbox {
  constructor(
    private readonly store: ObjectStorage,
    private readonly env: Bindings,
  ) {}

  add(effects: OutboxEffect[], now = Date.now()): void {
    for (const e of effects) this.store.run('INSERT INTO outbox (effect, next_at) VALUES (?, ?)', JSON.stringify(e), now);
  }

  /** Runs every entry that is due, oldest first. */
  async runDue(): Promise<void> {
    for (const row of this.store.rows<OutboxRow>('SELECT id, effect, attempts FROM outbox WHERE next_at <= ? ORDER BY id', Date.now())) {
      await this.run(row);
    }
  }

  /** Runs the owners' index entries now, in order; false when one could not be delivered. */
  async runIndexEntries(): Promise<boolean> {
    for (const row of this.indexRows()) if (!(await this.run(row))) return false;
    return true;
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

  /** One entry: gone once it succeeds, retried later with backoff if it fails. */
  private async run(row: OutboxRow): Promise<boolean> {
    try {
      await runEffect(this.env, JSON.parse(row.effect) as OutboxEffect);
      this.store.run('DELETE FROM outbox WHERE id = ?', row.id);
      return true;
    } catch (err) {
      const next = Date.now() + backoffMs(row.attempts);
      this.store.run('UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ?', next, String(err), row.id);
      return false;
    }
  }
}
