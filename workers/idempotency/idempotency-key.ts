/**
 * IdempotencyKey: one Durable Object per (caller, Idempotency-Key) of a create. It holds
 * the key's record for 24 hours (src/lib/idempotency.ts decides), and serialises requests
 * that carry the same key, so two concurrent retries can never both create. Its alarm
 * forgets the key when the 24 hours are over.
 */
import { DurableObject } from 'cloudflare:workers';
import type { Bindings } from '../../src/env';
import { type Claim, IDEMPOTENCY_KEY_TTL_MS, type KeyRecord, decideClaim } from '../../src/lib/idempotency';
import { ObjectStorage, type SchemaStep } from '../shared/object-storage';

const RECORD = 'record';

const SCHEMA: SchemaStep[] = [
  // 1: keys claimed before versions kept their record in the key/value storage: it moves to meta.
  (_sql, store) => {
    const held = store.kv.get<KeyRecord>(RECORD);
    if (held === undefined) return;
    store.put(RECORD, held);
    store.kv.delete(RECORD);
  },
];

export class IdempotencyKey extends DurableObject<Bindings> {
  private readonly store: ObjectStorage;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.store = new ObjectStorage(ctx.storage);
    this.store.migrate(SCHEMA);
  }

  async claim(fingerprint: string, proposedDesktopId: string): Promise<Claim> {
    const held = this.store.get<KeyRecord>(RECORD);
    const { claim, record } = decideClaim(held, { fingerprint, proposedDesktopId }, Date.now());
    if (record && record !== held) {
      this.store.put(RECORD, record);
      await this.ctx.storage.setAlarm(record.firstSeenAt + IDEMPOTENCY_KEY_TTL_MS);
    }
    return claim;
  }

  /**
   * The create answered 202: from now on the key answers that desktop: the one it proposed, or the one the create
   * answered with instead (a warm pool's member).
   */
  async complete(desktopId: string, answered: string = desktopId): Promise<void> {
    const held = this.store.get<KeyRecord>(RECORD);
    if (held?.desktopId === desktopId) this.store.put(RECORD, { ...held, desktopId: answered, state: 'done' });
  }

  /** The create was refused or failed before its desktop existed: the key is free for another try. */
  async abandon(desktopId: string): Promise<void> {
    const held = this.store.get<KeyRecord>(RECORD);
    if (held?.desktopId === desktopId && held.state === 'pending') await this.store.deleteAll();
  }

  override async alarm(): Promise<void> {
    await this.store.deleteAll();
  }
}
