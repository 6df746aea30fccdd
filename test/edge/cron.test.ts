/** The cron safety net: desktops whose watchdog alarm was lost still end in FAILED, and the sweep reads only overdue rows. */
import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it, vi } from 'vitest';
import { withDb } from '../../src/db/client';
import { config } from '../../src/env';
import { insertAudit, writeThrough } from '../../src/db/queries';
import { auditLog } from '../../src/db/schema';
import { inArray } from 'drizzle-orm';
import { applyRetention } from '../../workers/cron/retention';
import type { Desktop } from '../../src/schemas/desktop';
import { sweepOverdueDesktops } from '../../workers/cron/sweep';
import { api, settled, token, uniqueUser } from './helpers';

const HOUR = 3_600_000;

/** Makes a desktop look as if it entered its status `ageMs` ago and its alarm had been lost. */
async function ageAndLoseAlarm(id: string, ageMs: number): Promise<void> {
  // A write-through alarm firing meanwhile would put the alarm back and run the watchdog itself.
  await settled(id);
  const stub = env.DESKTOP_SESSION.getByName(id);
  const { desktop, revision } = await runInDurableObject(stub, async (obj, state) => {
    const row = state.storage.sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'state'`).one();
    const s = JSON.parse(row.value) as { statusSince: number; revision: number; desktop: Desktop };
    s.statusSince -= ageMs;
    s.desktop.updatedAt = new Date(Date.now() - ageMs).toISOString();
    s.revision += 1000;
    state.storage.sql.exec(`UPDATE meta SET value = ? WHERE key = 'state'`, JSON.stringify(s));
    (obj as unknown as { cachedState: unknown }).cachedState = undefined;
    await state.storage.deleteAlarm();
    return { desktop: s.desktop, revision: s.revision };
  });
  // The Postgres copy shows the same age (the row the sweep looks for).
  await withDb(config(env), (db) =>
    writeThrough(db, { desktop, version: revision, nextDueAt: new Date(Date.now() - ageMs / 2).toISOString() }, []),
  );
}

describe('cron sweep', () => {
  it('fails a desktop stuck past its watchdog whose alarm was lost, touching only overdue desktops', async () => {
    const stuck = (await api<Desktop>('POST', '/api/v1/desktops', { token: await token(uniqueUser()), body: { plan: 'BASIC' } })).body!
      .data;
    const fresh = (await api<Desktop>('POST', '/api/v1/desktops', { token: await token(uniqueUser()), body: { plan: 'BASIC' } })).body!
      .data;
    await ageAndLoseAlarm(stuck.id, 2 * HOUR);

    // What the cron trigger runs (worker.scheduled → sweepOverdueDesktops).
    const touched = await sweepOverdueDesktops(env, Date.now());
    expect(touched).toContain(stuck.id);
    expect(touched).not.toContain(fresh.id);
    const failed = await env.DESKTOP_SESSION.getByName(stuck.id).get();
    expect(failed?.status).toBe('FAILED');
    // No bridge is connected in this file: the message says so.
    expect(failed?.errorMessage).toBe(
      "Timed out after 900 s in PENDING (waiting for the site bridge to pick up the command) while the bridge of site 'local' was offline",
    );
    expect((await env.DESKTOP_SESSION.getByName(fresh.id).get())?.status).toBe('PENDING');
    // Once its FAILED row reaches Postgres, the next sweep leaves it alone.
    await vi.waitFor(async () => expect(await sweepOverdueDesktops(env, Date.now())).not.toContain(stuck.id), { timeout: 5000 });
  });
});

describe('retention', () => {
  it('deletes audit records older than AUDIT_RETENTION_DAYS and keeps the rest', async () => {
    const now = Date.now();
    const day = 86_400_000;
    const rec = (id: string, ageDays: number) => ({
      id,
      at: new Date(now - ageDays * day).toISOString(),
      actor: 'retention-test',
      role: 'user' as const,
      action: 'desktop.create',
      target: null,
      sourceIp: null,
      requestId: null,
      outcome: '202',
      details: null,
    });
    const oldId = `old-${crypto.randomUUID()}`;
    const newId = `new-${crypto.randomUUID()}`;
    await withDb(config(env), (db) => insertAudit(db, [rec(oldId, 400), rec(newId, 10)]));
    await applyRetention(env, now);
    const left = await withDb(config(env), (db) =>
      db
        .select({ id: auditLog.id })
        .from(auditLog)
        .where(inArray(auditLog.id, [oldId, newId])),
    );
    expect(left.map((r) => r.id)).toEqual([newId]);
  });
});
