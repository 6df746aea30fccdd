/**
 * Rebuilding a desktop from its template through the API, with the fake bridge answering as the real one does: the
 * desktop goes PROVISIONING and comes back RUNNING through the statuses of a create, on the new VMID the bridge
 * reports (in the Durable Object and in Postgres); webhooks hear desktop.rebuilt and the audit desktop.rebuild. Refused
 * in the error envelope for a WebRTC desktop, a status other than RUNNING or STOPPED, and while a snapshot is taken.
 */
import { env } from 'cloudflare:workers';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { withDb } from '../../src/db/client';
import { auditLog, desktops, webhookDeliveries } from '../../src/db/schema';
import { type Bindings, config } from '../../src/env';
import type { Desktop, TransitionRecord } from '../../src/schemas/desktop';
import { seedDesktop } from './builders';
import { FakeBridge, registerSite } from './fake-bridge';
import { api, token, uniqueUser } from './helpers';

let bridge: FakeBridge;
const SITE = `rebuild-${crypto.randomUUID().slice(0, 8)}`;
const cfg = () => config(env as Bindings);

beforeAll(async () => {
  bridge = await FakeBridge.connect(SITE, await registerSite(SITE));
});
afterAll(async () => {
  await bridge.close();
});

const post = async <T = unknown>(owner: string, path: string, body?: unknown) => api<T>('POST', path, { token: await token(owner), body });
const desktopOf = async (id: string) => (await (env as Bindings).DESKTOP_SESSION.getByName(id).get()) as Desktop;

describe('rebuild', () => {
  it('rebuilds a RUNNING desktop: PROVISIONING, then the statuses of a create, RUNNING on the new VMID', async () => {
    const owner = uniqueUser('rebuild');
    const hook = await post<{ id: string }>(owner, '/api/v1/webhooks', { url: `https://hooks.example.com/${owner}` });
    expect(hook.status, hook.text).toBe(201);
    const d = await bridge.runningDesktop(owner);
    const oldVm = (await desktopOf(d.id)).vmId;

    const res = await post<Desktop>(owner, `/api/v1/desktops/${d.id}/rebuild`);
    expect(res.status, res.text).toBe(202);
    expect(res.body?.data.status).toBe('PROVISIONING');
    expect(res.body?.message).toBe(`Rebuilding desktop ${d.id} from its template.`);
    const cmd = await bridge.command(d.id, 'rebuild');
    bridge.progress(cmd, 'allocate', 'reserved VMID 31999 on pve1 for the rebuilt VM');
    bridge.progress(cmd, 'clone', 'cloning template 9000 into VM 31999 (linked clone)');
    bridge.progress(cmd, 'data_disk', `moving the data disk scsi1 of VM ${oldVm} onto VM 31999`);
    bridge.progress(cmd, 'destroy', `destroying the old VM ${oldVm}`);
    expect((await desktopOf(d.id)).vmId).toBe(oldVm);
    bridge.progress(cmd, 'start_vm', 'starting VM 31999 on pve1', { vmId: 31999, node: 'pve1' });
    bridge.progress(cmd, 'wait_ip', 'waiting for VM 31999 to report its IP address', { vmId: 31999, node: 'pve1' });
    bridge.progress(cmd, 'connection', 'pointing the connection at 10.30.0.77', { vmId: 31999, node: 'pve1', ipAddress: '10.30.0.77' });
    bridge.complete(cmd, { vmId: 31999, node: 'pve1', ipAddress: '10.30.0.77', connectionId: '31' });
    await vi.waitFor(async () => expect((await desktopOf(d.id)).status).toBe('RUNNING'), { timeout: 10_000, interval: 20 });
    const after = await desktopOf(d.id);
    expect(after).toMatchObject({ vmId: 31999, ipAddress: '10.30.0.77', statusMessage: 'Desktop rebuilt from its template and ready' });

    const events = await api<TransitionRecord[]>('GET', `/api/v1/desktops/${d.id}/events`, { token: await token(owner) });
    expect(events.body!.data.slice(-5).map((t) => `${t.from} --${t.event}--> ${t.to}`)).toEqual([
      'RUNNING --rebuild--> PROVISIONING',
      'PROVISIONING --vm_starting--> STARTING',
      'STARTING --waiting_for_ip--> WAITING_FOR_IP',
      'WAITING_FOR_IP --configuring--> CONFIGURING',
      'CONFIGURING --rebuild_completed--> RUNNING',
    ]);

    await vi.waitFor(
      async () => {
        const [row] = await withDb(cfg(), (db) => db.select().from(desktops).where(eq(desktops.id, d.id)));
        expect(row?.vmId).toBe(31999);
      },
      { timeout: 10_000, interval: 100 },
    );
    await vi.waitFor(
      async () => {
        const rows = await withDb(cfg(), (db) =>
          db
            .select()
            .from(webhookDeliveries)
            .where(and(eq(webhookDeliveries.webhookId, hook.body!.data.id), eq(webhookDeliveries.eventType, 'desktop.rebuilt'))),
        );
        expect(rows.length).toBeGreaterThan(0);
      },
      { timeout: 10_000, interval: 100 },
    );
    await vi.waitFor(
      async () => {
        const rows = await withDb(cfg(), (db) =>
          db
            .select()
            .from(auditLog)
            .where(and(eq(auditLog.target, d.id), eq(auditLog.action, 'desktop.rebuild'))),
        );
        expect(rows.map((r) => [r.actor, r.outcome])).toEqual([[owner, '202']]);
      },
      { timeout: 10_000, interval: 100 },
    );
  });

  it('rebuilds a STOPPED desktop too; a failed rebuild ends FAILED with the bridge’s reason, and a FAILED desktop can be rebuilt', async () => {
    const owner = uniqueUser('rebuild');
    const d = await bridge.runningDesktop(owner);
    expect((await post(owner, `/api/v1/desktops/${d.id}/stop`)).status).toBe(202);
    bridge.complete(await bridge.command(d.id, 'stop'));
    await vi.waitFor(async () => expect((await desktopOf(d.id)).status).toBe('STOPPED'), { timeout: 10_000, interval: 20 });

    const res = await post<Desktop>(owner, `/api/v1/desktops/${d.id}/rebuild`);
    expect(res.status, res.text).toBe(202);
    expect(res.body?.data.status).toBe('PROVISIONING');
    const cmd = await bridge.command(d.id, 'rebuild');
    bridge.send({ type: 'fail', commandId: cmd.id, desktopId: d.id, message: "Can't move disk used by a snapshot to another VM" });
    await vi.waitFor(async () => expect((await desktopOf(d.id)).status).toBe('FAILED'), { timeout: 10_000, interval: 20 });
    expect((await desktopOf(d.id)).errorMessage).toBe("Can't move disk used by a snapshot to another VM");

    // Its way back: rebuilt again from FAILED (the bridge picks up where the failed one stopped), RUNNING, the error gone.
    const again = await post<Desktop>(owner, `/api/v1/desktops/${d.id}/rebuild`);
    expect(again.status, again.text).toBe(202);
    expect(again.body?.data).toMatchObject({ status: 'PROVISIONING', errorMessage: null });
    const retry = await bridge.command(d.id, 'rebuild', cmd.id);
    bridge.progress(retry, 'start_vm', 'starting VM 32001 on pve1', { vmId: 32001, node: 'pve1' });
    bridge.complete(retry, { vmId: 32001, node: 'pve1', ipAddress: '10.30.0.78', connectionId: '32' });
    await vi.waitFor(async () => expect((await desktopOf(d.id)).status).toBe('RUNNING'), { timeout: 10_000, interval: 20 });
    expect(await desktopOf(d.id)).toMatchObject({ vmId: 32001, errorMessage: null });
  });

  it('refuses in the error envelope: a WebRTC desktop, a status other than RUNNING or STOPPED, a snapshot being taken', async () => {
    const owner = uniqueUser('rebuild');
    const selkies = await seedDesktop(SITE, owner, { backend: 'selkies', gpuSlots: 0 });
    const webrtc = await post(owner, `/api/v1/desktops/${selkies.id}/rebuild`);
    expect(webrtc.status).toBe(409);
    expect(webrtc.body?.error?.code).toBe('INVALID_STATE');
    expect(webrtc.body?.message).toBe(
      `Desktop ${selkies.id} is a WebRTC (Selkies) desktop: a Kubernetes pod whose home is a persistent volume claim, not a VM, so it cannot be rebuilt from a template`,
    );

    const pending = await seedDesktop(SITE, owner);
    const early = await post(owner, `/api/v1/desktops/${pending.id}/rebuild`);
    expect(early.status).toBe(409);
    expect(early.body?.error?.code).toBe('INVALID_STATE');
    expect(early.body?.message).toBe(`Cannot rebuild desktop ${pending.id}: it is PENDING; possible now: delete`);

    const d = await bridge.runningDesktop(owner);
    const snap = api('POST', `/api/v1/desktops/${d.id}/snapshots`, { token: await token(owner), body: { name: 'busy' } });
    const listing = await bridge.waitFor(
      (f) => f.type === 'request' && f.request.op === 'desktop_snapshots' && f.request.desktopId === d.id,
    );
    if (listing.type !== 'request') throw new Error('unreachable');
    bridge.send({ type: 'response', requestId: listing.requestId, ok: true, snapshots: { snapshots: [], unsupported: null } });
    expect((await snap).status).toBe(202);
    const busy = await post(owner, `/api/v1/desktops/${d.id}/rebuild`);
    expect(busy.status).toBe(409);
    expect(busy.body?.error?.code).toBe('CONFLICT');
    expect(busy.body?.message).toBe(`The snapshot busy of desktop ${d.id} is being taken; try again when that is done`);

    const other = await post(uniqueUser('rebuild'), `/api/v1/desktops/${d.id}/rebuild`);
    expect(other.status).toBe(404);
  });
});
