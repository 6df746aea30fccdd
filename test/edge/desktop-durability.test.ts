/**
 * What a desktop's Durable Object keeps when things go wrong between its steps: an
 * object reset after a transition, a row Postgres refuses. Each case stops the object
 * where the failure would hit and looks at what storage (and Postgres) then holds.
 */
import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { eq } from 'drizzle-orm';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { type Db, withDb } from '../../src/db/client';
import { writeThrough } from '../../src/db/queries';
import { desktopEvents, desktops, usageIntervals } from '../../src/db/schema';
import { type DecideRules, type Decision, decide } from '../../src/desktop/decide';
import type { SessionState } from '../../src/desktop/session-state';
import { type Bindings, config } from '../../src/env';
import type { Desktop } from '../../src/schemas/desktop';
import { DEFAULT_LAUNCH } from '../../src/lib/launch';
import { SEEDED, desktopFor, seedDesktop } from './builders';
import { FakeBridge, registerSite } from './fake-bridge';
import type { ObjectStorage } from '../../workers/shared/object-storage';
import { syncState } from '../../workers/desktop-session/write-through';
import { api, settled, token } from './helpers';

const SITE = 'durability-site';

type Internals = { env: Bindings };

describe('a transition and its alarm', () => {
  it('sets the alarm in the transition itself, before any effect has run', async () => {
    const desktop = desktopFor('durability-site', 'durability-alarm');
    const stub = env.DESKTOP_SESSION.getByName(desktop.id);
    const alarm = await runInDurableObject(stub, async (obj, state) => {
      // The first effect (the create command) hangs, as if the object were reset before its
      // effects ran: whatever wakes the desktop up again must already be in storage.
      const internals = obj as unknown as Internals;
      const real = internals.env;
      let letGo: () => void = () => {};
      const hanging = new Promise<void>((resolve) => {
        letGo = resolve;
      });
      internals.env = { ...real, JOBS: { ...real.JOBS, send: () => hanging, sendBatch: () => hanging } } as unknown as Bindings;
      try {
        const r = await obj.create({ desktop, actor: 'user:durability-alarm', launch: DEFAULT_LAUNCH, admission: SEEDED });
        expect(r.ok).toBe(true);
        return await state.storage.getAlarm();
      } finally {
        internals.env = real;
        letGo();
      }
    });
    expect(alarm).not.toBeNull();
    // No later than the watchdog of PENDING (and soon enough to retry the effects).
    expect(alarm ?? 0).toBeLessThanOrEqual(Date.now() + 60_000);
  });
});

const POISON = 'the pod said:\u0000 goodbye';

describe('a row Postgres refuses', () => {
  let bridge: FakeBridge;
  beforeAll(async () => {
    bridge = await FakeBridge.connect(SITE, await registerSite(SITE));
  });

  async function running(user: string): Promise<Desktop> {
    const d = await seedDesktop(SITE, user);
    await bridge.runCreate(await bridge.command(d.id, 'create'), { vmId: 41000, ipAddress: '10.41.0.1', connectionId: '41' });
    await vi.waitFor(async () => expect((await env.DESKTOP_SESSION.getByName(d.id).get())?.status).toBe('RUNNING'));
    await settled(d.id);
    return d;
  }

  const db = <T>(work: (db: Db) => Promise<T>) => withDb(config(env as Bindings), work);

  it('takes what a bridge reports without the control characters Postgres cannot store', async () => {
    const d = await running('durability-nul');
    const stop = await (async () => {
      await env.DESKTOP_SESSION.getByName(d.id).act({ action: 'stop', actor: 'user:durability-nul' });
      return bridge.command(d.id, 'stop');
    })();
    bridge.send({ type: 'fail', commandId: stop.id, desktopId: d.id, message: `the pod ended: ${POISON}` });
    await vi.waitFor(async () => expect((await env.DESKTOP_SESSION.getByName(d.id).get())?.status).toBe('FAILED'));
    // The failure reached Postgres: one refused row would have held every later one back.
    await settled(d.id);
    const [row] = await db((x) => x.select().from(desktops).where(eq(desktops.id, d.id)));
    expect(row?.errorMessage).toBe('the pod ended: the pod said: goodbye');
  });

  it('sets a refused row aside with its error, for admins, and writes the rest: the desktop, later transitions, usage', async () => {
    const d = await running('durability-setaside');
    const stub = env.DESKTOP_SESSION.getByName(d.id);
    // A transition whose reason Postgres refuses (NUL), as older code could store it; its
    // usage interval closes with the same text.
    await runInDurableObject(stub, (obj) => {
      const o = obj as unknown as { state(): SessionState; rules: DecideRules; commit(d: Decision): unknown };
      const stop = decide(o.state(), { kind: 'act', action: 'stop', actor: 'user:durability-setaside' }, Date.now(), o.rules);
      if (!stop.transition || !stop.next) throw new Error('a RUNNING desktop stops');
      stop.transition.reason = POISON;
      stop.next.desktop.stopReason = POISON;
      stop.usage = stop.usage.map((u) => (u.kind === 'close' ? { ...u, reason: POISON } : u));
      o.commit(stop);
    });
    bridge.complete(await bridge.command(d.id, 'stop'));
    await vi.waitFor(async () => expect((await stub.get())?.status).toBe('STOPPED'));
    await settled(d.id);

    const [row] = await db((x) => x.select().from(desktops).where(eq(desktops.id, d.id)));
    expect(row?.status).toBe('STOPPED');
    const events = await db((x) => x.select().from(desktopEvents).where(eq(desktopEvents.desktopId, d.id)));
    expect(events.map((e) => e.seq).sort((a, b) => a - b)).toEqual((await stub.history()).map((t) => t.seq));
    const usage = await db((x) => x.select().from(usageIntervals).where(eq(usageIntervals.desktopId, d.id)));
    expect(usage).toHaveLength(1);
    expect(usage[0]?.stoppedAt).not.toBeNull();

    const { setAside } = await stub.syncStatus();
    expect(setAside.map((r) => [r.kind, r.outcome])).toEqual(
      expect.arrayContaining([
        ['transition', 'cleaned'],
        ['usage', 'cleaned'],
      ]),
    );
    expect(setAside.every((r) => /^22\w{3}: /.test(r.error))).toBe(true);
    // Admins find it in the audit log.
    const admin = await token('durability-admin', { roles: ['admin'] });
    await vi.waitFor(
      async () => {
        const audit = await api<{ items: { target: string; outcome: string; details: { row: string } }[] }>(
          'GET',
          `/api/v1/admin/audit?action=desktop.row_refused&target=${d.id}`,
          { token: admin },
        );
        expect(audit.body?.data.items.map((i) => i.details.row).sort()).toEqual(setAside.map((r) => `${r.kind} ${r.key}`).sort());
      },
      { timeout: 10_000, interval: 100 },
    );
  });

  it('reads only the transitions Postgres has not seen when it writes through', async () => {
    const d = await running('durability-reads');
    const stub = env.DESKTOP_SESSION.getByName(d.id);
    const history = await stub.history();
    expect(history.length).toBeGreaterThan(5);
    const read = await runInDurableObject(stub, async (obj) => {
      const o = obj as unknown as { store: ObjectStorage; flush(): Promise<void> };
      // Postgres has everything but the last transition.
      o.store.put('sync', { ...syncState(o.store), dbSeq: history.length - 1, dbRevision: 0, notBefore: null });
      const rows = o.store.rows.bind(o.store);
      let read = 0;
      o.store.rows = <T extends Record<string, SqlStorageValue>>(query: string, ...bindings: unknown[]) => {
        const found = rows<T>(query, ...bindings);
        if (/FROM transitions/i.test(query)) read += found.length;
        return found;
      };
      try {
        await o.flush();
      } finally {
        Reflect.deleteProperty(o.store, 'rows');
      }
      return read;
    });
    expect(read).toBe(1);
  });

  it('writes the rest of a batch when one row is refused even without control characters', async () => {
    const d = desktopFor(SITE, 'durability-batch');
    const at = new Date().toISOString();
    const t = (seq: number) => ({
      seq,
      at,
      from: null,
      to: 'PENDING' as const,
      event: 'create',
      actor: 'test',
      reason: 'r',
      desktopId: d.id,
    });
    // 2^31 does not fit the seq column: no cleaning helps.
    const refused = await db((x) => writeThrough(x, { desktop: d, version: 1, nextDueAt: null }, [t(1), t(2 ** 31), t(3)]));
    expect(refused).toEqual([{ kind: 'transition', key: String(2 ** 31), error: expect.stringMatching(/^22003: /), outcome: 'set_aside' }]);
    const events = await db((x) => x.select().from(desktopEvents).where(eq(desktopEvents.desktopId, d.id)));
    expect(events.map((e) => e.seq).sort()).toEqual([1, 3]);
  });
});
