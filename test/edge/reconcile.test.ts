/** Reconciliation: the edge's belief is corrected from what the site's bridge reports it has. */
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { withDb } from '../../src/db/client';
import { config } from '../../src/env';
import { randomId } from '../../src/lib/ids';
import type { Inventory } from '../../src/schemas/bridge-protocol';
import type { Desktop } from '../../src/schemas/desktop';
import { desktops } from '../../src/db/schema';
import { confirmReconcileReport, reconcileSite } from '../../src/reconcile/reconcile';
import { eq } from 'drizzle-orm';
import { DEFAULT_LAUNCH } from '../../src/lib/launch';
import { SEEDED, desktopFor } from './builders';
import { FakeBridge, registerSite } from './fake-bridge';

const SITE = 'recon-site';
let bridge: FakeBridge;
/** What the fake site answers to the next inventory requests. */
let inventory: Inventory = { takenAt: new Date().toISOString(), vms: [], connections: [] };

beforeAll(async () => {
  bridge = await FakeBridge.connect(SITE, await registerSite(SITE));
  bridge.ws.addEventListener('message', (ev) => {
    const frame = JSON.parse(String(ev.data)) as { type: string; requestId?: string; request?: { op: string } };
    if (frame.type === 'request' && frame.request?.op === 'inventory' && frame.requestId) {
      bridge.send({
        type: 'response',
        requestId: frame.requestId,
        ok: true,
        inventory: { ...inventory, takenAt: new Date().toISOString() },
      });
    }
  });
});

const newReconDesktop = () => desktopFor(SITE, 'recon-user');

async function runningDesktop(vmId: number): Promise<Desktop> {
  const desktop = newReconDesktop();
  const id = desktop.id;
  const stub = env.DESKTOP_SESSION.getByName(id);
  const created = await stub.create({ desktop, actor: 'user:recon-user', launch: DEFAULT_LAUNCH, admission: SEEDED });
  if (!created.ok) throw new Error(created.message);
  await bridge.runCreate(await bridge.command(id, 'create'), { vmId, ipAddress: '10.9.0.1', connectionId: String(vmId) });
  // Settled in the Durable Object and written through to Postgres (where reconciliation finds it).
  await vi.waitFor(
    async () => {
      const [row] = await withDb(config(env), (db) => db.select({ status: desktops.status }).from(desktops).where(eq(desktops.id, id)));
      expect(row?.status).toBe('RUNNING');
    },
    { timeout: 10_000, interval: 50 },
  );
  return (await stub.get()) as Desktop;
}

const vm = (desktopId: string, vmid: number, status = 'running') => ({ vmid, node: 'pve1', name: `desk-${desktopId}`, status, desktopId });

describe('reconciliation', () => {
  it('fails a RUNNING desktop whose VM vanished and stops one whose VM was powered off; leaves healthy ones alone', async () => {
    const gone = await runningDesktop(30001);
    const off = await runningDesktop(30002);
    const fine = await runningDesktop(30003);
    inventory = { takenAt: '', vms: [vm(off.id, 30002, 'stopped'), vm(fine.id, 30003)], connections: [] };

    const report = await reconcileSite(env, SITE, Date.now() + 1000);
    expect(report.corrected).toEqual(
      expect.arrayContaining([
        { desktopId: gone.id, outcome: 'vm_missing' },
        { desktopId: off.id, outcome: 'vm_stopped_externally' },
      ]),
    );
    expect(report.corrected.map((c) => c.desktopId)).not.toContain(fine.id);
    const failed = await env.DESKTOP_SESSION.getByName(gone.id).get();
    expect(failed?.status).toBe('FAILED');
    expect(failed?.errorMessage).toMatch(/VM no longer exists on site 'recon-site'/);
    expect((await env.DESKTOP_SESSION.getByName(off.id).get())?.status).toBe('STOPPED');
    expect((await env.DESKTOP_SESSION.getByName(fine.id).get())?.status).toBe('RUNNING');
    const events = await env.DESKTOP_SESSION.getByName(gone.id).history();
    expect(events.at(-1)).toMatchObject({ from: 'RUNNING', to: 'FAILED', event: 'vm_missing', actor: `system:reconcile:${SITE}` });
  });

  it('reports leftovers of desktops that do not exist and removes them after the grace period', async () => {
    const ghost = randomId('dk');
    inventory = {
      takenAt: '',
      vms: [{ ...vm(ghost, 30099, 'stopped'), owned: true }],
      connections: [{ identifier: '77', name: `desk-${ghost}`, desktopId: ghost, owned: true }],
    };
    const t0 = Date.now();
    const first = await reconcileSite(env, SITE, t0);
    const orphan = { desktopId: ghost, vms: [30099], connections: ['77'], session: false };
    expect(first.orphans).toEqual([{ ...orphan, removal: 'waiting for grace period' }]);
    expect(bridge.received.some((f) => f.type === 'command' && f.command.desktopId === ghost)).toBe(false);

    const later = await reconcileSite(env, SITE, t0 + (config(env).RECONCILE_GRACE_SECONDS + 1) * 1000);
    expect(later.orphans).toEqual([{ ...orphan, removal: 'sent' }]);
    const removal = await bridge.command(ghost, 'delete');
    expect(removal.spec.desktopId).toBe(ghost);
  });

  it('never touches leftovers without this deployment’s marks: another deployment’s desktops are reported as foreign only', async () => {
    const neighbour = randomId('dk');
    inventory = {
      takenAt: '',
      vms: [vm(neighbour, 30098, 'running')],
      connections: [{ identifier: '78', name: `desk-${neighbour}`, desktopId: neighbour, owned: false }],
    };
    const report = await reconcileSite(env, SITE, Date.now() + (config(env).RECONCILE_GRACE_SECONDS + 1) * 1000);
    expect(report.orphans).toEqual([]);
    expect(report.foreign).toBe(2);
    expect(bridge.received.some((f) => f.type === 'command' && f.command.desktopId === neighbour)).toBe(false);
  });

  it('removes nothing when more orphans are due than one pass may remove, until an admin confirms the report', async () => {
    const ghosts = Array.from({ length: config(env).RECONCILE_MAX_REMOVALS + 1 }, () => randomId('dk'));
    inventory = { takenAt: '', vms: ghosts.map((g, i) => ({ ...vm(g, 31000 + i, 'stopped'), owned: true })), connections: [] };
    const t0 = Date.now();
    await reconcileSite(env, SITE, t0);
    const due = await reconcileSite(env, SITE, t0 + (config(env).RECONCILE_GRACE_SECONDS + 1) * 1000);
    expect(due.confirmation).toEqual({ needed: ghosts.length, limit: config(env).RECONCILE_MAX_REMOVALS });
    expect(due.orphans.map((o) => o.removal)).toEqual(ghosts.map(() => 'awaiting confirmation'));
    expect(bridge.received.some((f) => f.type === 'command' && ghosts.includes(f.command.desktopId))).toBe(false);

    const confirmed = await confirmReconcileReport(env, due.id);
    expect(confirmed.ok && confirmed.report.orphans.map((o) => o.removal)).toEqual(ghosts.map(() => 'sent'));
    for (const g of ghosts) expect((await bridge.command(g, 'delete')).spec.desktopId).toBe(g);
    expect(await confirmReconcileReport(env, 'rr_not_a_report')).toEqual({ ok: false, reason: 'not_found' });
  });

  it('never judges a desktop that is still being worked on', async () => {
    const pending = newReconDesktop();
    const stub = env.DESKTOP_SESSION.getByName(pending.id);
    await stub.create({ desktop: pending, actor: 'user:recon-user', launch: DEFAULT_LAUNCH, admission: SEEDED });
    expect(await stub.reconcileObservation(SITE, new Date(Date.now() + 1000).toISOString(), null)).toBe('unsettled');
    expect((await stub.get())?.status).toBe('PENDING');
  });

  it('skips a site whose bridge is offline, saying so', async () => {
    const report = await reconcileSite(env, 'nobody-home');
    expect(report.skipped).toMatch(/offline/);
    expect(report.orphans).toEqual([]);
  });
});
