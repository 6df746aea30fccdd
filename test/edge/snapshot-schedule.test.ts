/**
 * Scheduled snapshots, through the cron path (worker.scheduled → runSnapshotSchedules) with the fake bridge answering
 * as the real one does: a due desktop gets an auto- snapshot without RAM, the next runs delete the scheduled snapshots
 * its retention lets go, one a run, and a snapshot taken by hand stays. Its template's schedule applies unless the
 * desktop has its own, and `{ off: true }` turns it off.
 */
import { env } from 'cloudflare:workers';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { withDb } from '../../src/db/client';
import { auditLog, desktops } from '../../src/db/schema';
import { type Bindings, config } from '../../src/env';
import type { Command, DesktopSnapshot, EdgeToBridge } from '../../src/schemas/bridge-protocol';
import type { Desktop } from '../../src/schemas/desktop';
import type { SnapshotSchedule } from '../../src/schemas/snapshot';
import { runSnapshotSchedules } from '../../workers/cron/snapshot-schedule';
import { FakeBridge, registerSite } from './fake-bridge';
import { api, token, uniqueUser } from './helpers';

let bridge: FakeBridge;
const SITE = `sched-${crypto.randomUUID().slice(0, 8)}`;
const cfg = () => config(env as Bindings);
const H = 3_600_000;

beforeAll(async () => {
  bridge = await FakeBridge.connect(SITE, await registerSite(SITE));
});
afterAll(async () => {
  await bridge.close();
});

/** Answers every listing request for `desktopId` as the bridge would, with what `listing()` holds then. */
function serveListings(desktopId: string, listing: () => Partial<DesktopSnapshot>[]): () => void {
  const answer = (ev: MessageEvent) => {
    const f = JSON.parse(String(ev.data)) as EdgeToBridge;
    if (f.type !== 'request' || f.request.op !== 'desktop_snapshots' || f.request.desktopId !== desktopId) return;
    const full = listing().map((s) => ({ name: 'x', description: '', takenAt: null, withRam: false, parent: null, ...s }));
    bridge.send({ type: 'response', requestId: f.requestId, ok: true, snapshots: { snapshots: full, unsupported: null } });
  };
  bridge.ws.addEventListener('message', answer);
  return () => bridge.ws.removeEventListener('message', answer);
}

const seenCommands = new Set<string>();
async function nextCommand(desktopId: string, kind: Command['kind']): Promise<Command> {
  const f = await bridge.waitFor(
    (x) => x.type === 'command' && x.command.desktopId === desktopId && x.command.kind === kind && !seenCommands.has(x.command.id),
  );
  if (f.type !== 'command') throw new Error('unreachable');
  seenCommands.add(f.command.id);
  return f.command;
}

const ago = (hours: number, now = Date.now()) => new Date(now - hours * H).toISOString();
const autoName = (iso: string) => `auto-${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}`;
const desktopOf = async (id: string) => (await (env as Bindings).DESKTOP_SESSION.getByName(id).get()) as Desktop;

/** One cron run at `at` that looks at `d` (runs repeat until one does: other files' desktops may be due first). */
async function cronRun(d: Desktop, at: number) {
  await vi.waitFor(
    async () => {
      const outcomes = await runSnapshotSchedules(env as Bindings, at);
      expect(outcomes.map((o) => o.id)).toContain(d.id);
    },
    { timeout: 20_000, interval: 10 },
  );
}

type View = { own: unknown; template: SnapshotSchedule | null; effective: SnapshotSchedule | null; source: string | null };
const schedule = async (method: 'GET' | 'PUT' | 'DELETE', owner: string, d: Desktop, body?: unknown) =>
  api<View>(method, `/api/v1/desktops/${d.id}/snapshot-schedule`, { token: await token(owner), body });

/** The desktop's row is in Postgres (the cron reads it from there). */
const written = (d: Desktop) =>
  vi.waitFor(
    async () => {
      const [row] = await withDb(cfg(), (db) => db.select({ id: desktops.id }).from(desktops).where(eq(desktops.id, d.id)));
      expect(row).toBeDefined();
    },
    { timeout: 10_000, interval: 50 },
  );

describe('scheduled snapshots', () => {
  it('takes an auto- snapshot of a due desktop from the cron, then prunes old scheduled ones and keeps hand-taken ones', async () => {
    const owner = uniqueUser('sched');
    const d = await bridge.runningDesktop(owner);
    await written(d);
    const set = await schedule('PUT', owner, d, { everyHours: 24, retention: { keepLast: 2 } });
    expect(set.status, set.text).toBe(200);
    expect(set.body?.data).toMatchObject({ source: 'desktop', effective: { everyHours: 24, retention: { keepLast: 2 } } });

    const now = Date.now();
    const old = [ago(96, now), ago(72, now), ago(30, now)].map((t) => ({ name: autoName(t), takenAt: t }));
    const mine = { name: 'before-upgrade', takenAt: ago(2000, now) };
    let listing: Partial<DesktopSnapshot>[] = [mine, ...old];
    const stop = serveListings(d.id, () => listing);
    await cronRun(d, now);
    const take = await nextCommand(d.id, 'snapshot');
    expect(take.spec.snapshot).toEqual({
      name: autoName(new Date(now).toISOString()),
      withRam: false,
      description: 'Scheduled snapshot (every 24 h)',
    });
    bridge.complete(take);
    const taken = { name: autoName(new Date(now).toISOString()), takenAt: new Date(now + 2000).toISOString() };
    await vi.waitFor(async () => expect((await desktopOf(d.id)).statusMessage).toBe(`Snapshot ${taken.name} taken`), { timeout: 10_000 });
    expect((await desktopOf(d.id)).status).toBe('RUNNING');

    // The next runs: the oldest scheduled snapshots beyond keepLast go, one a run; the hand-taken one is never asked about.
    listing = [...listing, taken];
    let at = now;
    for (const gone of [old[0], old[1]]) {
      at += 5 * 60_000;
      await cronRun(d, at);
      const del = await nextCommand(d.id, 'delete_snapshot');
      expect(del.spec.snapshot?.name).toBe(gone?.name);
      bridge.complete(del);
      await vi.waitFor(async () => expect((await desktopOf(d.id)).statusMessage).toBe(`Snapshot ${gone?.name} deleted`), {
        timeout: 10_000,
      });
      listing = listing.filter((s) => s.name !== gone?.name);
    }
    await cronRun(d, at + 5 * 60_000);
    stop();
    const [row] = await withDb(cfg(), (db) =>
      db.select({ due: desktops.snapshotDueAt, ran: desktops.snapshotRunAt }).from(desktops).where(eq(desktops.id, d.id)),
    );
    // Nothing more to delete: the next look is at the next take, a day after the one just taken.
    expect(Date.parse(row?.due ?? '')).toBe(Date.parse(taken.takenAt) + 24 * H - 5 * 60_000);
    expect(Date.parse(row?.ran ?? '')).toBe(now);
    expect(
      bridge.received.some((f) => f.type === 'command' && f.command.desktopId === d.id && f.command.spec.snapshot?.name === mine.name),
    ).toBe(false);

    await vi.waitFor(
      async () => {
        const rows = await withDb(cfg(), (db) =>
          db
            .select()
            .from(auditLog)
            .where(and(eq(auditLog.target, d.id), eq(auditLog.actor, 'system:snapshot-schedule'))),
        );
        expect(rows.map((r) => [r.role, r.action, JSON.parse(r.details ?? 'null').snapshot]).sort()).toEqual(
          [
            ['system', 'desktop.snapshot', taken.name],
            ['system', 'desktop.snapshot_delete', old[0]?.name],
            ['system', 'desktop.snapshot_delete', old[1]?.name],
          ].sort(),
        );
      },
      { timeout: 10_000, interval: 100 },
    );
  });

  it("follows its template's schedule unless the desktop has its own, or turned it off", async () => {
    const admin = await token('root', { roles: ['admin'] });
    const templateId = `sched-${crypto.randomUUID().slice(0, 8)}`;
    const hourly = { everyHours: 1, retention: { keepDays: 2 } };
    const t = await api('PUT', `/api/v1/admin/templates/${templateId}`, {
      token: admin,
      body: { name: 'Scheduled', os: 'Ubuntu 24.04', backend: 'proxmox', protocol: 'vnc', snapshotSchedule: hourly },
    });
    expect(t.status, t.text).toBe(200);
    expect((t.body as { data: { snapshotSchedule: unknown } }).data.snapshotSchedule).toEqual(hourly);

    const owner = uniqueUser('sched');
    const d = await bridge.runningDesktop(owner, { templateId });
    await written(d);
    expect((await schedule('GET', owner, d)).body?.data).toMatchObject({ own: null, source: 'template', effective: hourly });

    // From the cron: the template's schedule takes the desktop's first scheduled snapshot.
    const now = Date.now();
    const stop = serveListings(d.id, () => []);
    await cronRun(d, now);
    stop();
    const take = await nextCommand(d.id, 'snapshot');
    expect(take.spec.snapshot?.name).toBe(autoName(new Date(now).toISOString()));
    bridge.complete(take);
    await vi.waitFor(async () => expect((await desktopOf(d.id)).statusMessage).toMatch(/^Snapshot auto-.* taken$/), { timeout: 10_000 });

    const own = { everyHours: 24, retention: { keepLast: 3, keepDays: 7 } };
    expect((await schedule('PUT', owner, d, own)).body?.data).toMatchObject({ own, template: hourly, source: 'desktop', effective: own });
    expect((await schedule('PUT', owner, d, { off: true })).body?.data).toMatchObject({ own: { off: true }, effective: null });
    const cleared = await schedule('DELETE', owner, d);
    expect(cleared.status).toBe(200);
    expect(cleared.body?.data).toMatchObject({ own: null, source: 'template', effective: hourly });

    const bad = await schedule('PUT', owner, d, { everyHours: 1, retention: { keepDays: 30 } });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('keepDays would keep more than 100 scheduled snapshots');
  });

  it('keeps the auto- prefix for scheduled snapshots: a hand-taken snapshot may not use it', async () => {
    const owner = uniqueUser('sched');
    const d = await bridge.runningDesktop(owner);
    const res = await api('POST', `/api/v1/desktops/${d.id}/snapshots`, { token: await token(owner), body: { name: 'auto-mine' } });
    expect(res.status).toBe(400);
    expect(res.text).toContain('Names starting with auto- are kept for scheduled snapshots');
  });
});
