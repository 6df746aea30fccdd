/**
 * Snapshots through the API, with the fake bridge answering as the real one does: take one (the desktop stays
 * RUNNING), restore it (STARTING … RUNNING again), delete it, fork a new desktop from it; and every refusal in its own
 * code: a WebRTC desktop or storage that cannot snapshot, a status that does not allow it, an unknown snapshot, a name
 * outside Proxmox's rule, a snapshot operation already running, and the snapshot quota.
 */
import { env } from 'cloudflare:workers';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { withDb } from '../../src/db/client';
import { auditLog, webhookDeliveries } from '../../src/db/schema';
import { type Bindings, config } from '../../src/env';
import type { DesktopSnapshot } from '../../src/schemas/bridge-protocol';
import type { Desktop, TransitionRecord } from '../../src/schemas/desktop';
import { seedDesktop } from './builders';
import { FakeBridge, registerSite } from './fake-bridge';
import { api, token, uniqueUser } from './helpers';

let bridge: FakeBridge;
const SITE = `snap-${crypto.randomUUID().slice(0, 8)}`;
const cfg = () => config(env as Bindings);

beforeAll(async () => {
  bridge = await FakeBridge.connect(SITE, await registerSite(SITE));
});
afterAll(async () => {
  await bridge.close();
});

const answered = new Set<string>();

/** Answers the next desktop_snapshots request for `desktopId` as the bridge would, with this listing. */
async function answerListing(desktopId: string, snapshots: Partial<DesktopSnapshot>[], unsupported: string | null = null) {
  const req = await bridge.waitFor(
    (f) => f.type === 'request' && f.request.op === 'desktop_snapshots' && f.request.desktopId === desktopId && !answered.has(f.requestId),
  );
  if (req.type !== 'request') throw new Error('unreachable');
  answered.add(req.requestId);
  const full = snapshots.map((s) => ({
    name: 'x',
    description: '',
    takenAt: '2026-12-05T08:00:00.000Z',
    withRam: false,
    parent: null,
    ...s,
  }));
  bridge.send({ type: 'response', requestId: req.requestId, ok: true, snapshots: { snapshots: full, unsupported } });
}

/** A call that asks the bridge for the listing first: sent, answered with `listing`, then awaited. */
async function withListing<T>(desktopId: string, call: Promise<T>, listing: Partial<DesktopSnapshot>[], unsupported: string | null = null) {
  await answerListing(desktopId, listing, unsupported);
  return call;
}

const post = async <T = unknown>(owner: string, path: string, body?: unknown) => api<T>('POST', path, { token: await token(owner), body });

type Operation = { snapshot: { name: string; description: string; withRam: boolean }; desktop: Desktop };

/** Takes the snapshot `name` through the API and lets the bridge finish it. */
async function takeSnapshot(owner: string, d: Desktop, name: string, existing: Partial<DesktopSnapshot>[] = []) {
  const res = await withListing(d.id, post<Operation>(owner, `/api/v1/desktops/${d.id}/snapshots`, { name }), existing);
  expect(res.status, res.text).toBe(202);
  const cmd = await bridge.waitFor(
    (f) => f.type === 'command' && f.command.desktopId === d.id && f.command.kind === 'snapshot' && f.command.spec.snapshot?.name === name,
  );
  if (cmd.type !== 'command') throw new Error('unreachable');
  bridge.complete(cmd.command);
  await vi.waitFor(async () => expect((await desktopOf(d.id)).statusMessage).toBe(`Snapshot ${name} taken`), {
    timeout: 10_000,
    interval: 20,
  });
  return cmd.command;
}

const desktopOf = async (id: string) => (await (env as Bindings).DESKTOP_SESSION.getByName(id).get()) as Desktop;

describe('snapshots', () => {
  it('takes a snapshot of a RUNNING desktop that stays RUNNING, lists it, and tells webhooks and the audit', async () => {
    const owner = uniqueUser('snap');
    const hook = await post<{ id: string }>(owner, '/api/v1/webhooks', { url: `https://hooks.example.com/${owner}` });
    expect(hook.status, hook.text).toBe(201);
    const d = await bridge.runningDesktop(owner);

    const res = await withListing(
      d.id,
      post<Operation>(owner, `/api/v1/desktops/${d.id}/snapshots`, { name: 'before-upgrade', withRam: true, description: 'clean' }),
      [],
    );
    expect(res.status, res.text).toBe(202);
    expect(res.body?.data.snapshot).toEqual({ name: 'before-upgrade', description: 'clean', withRam: true });
    expect(res.body?.data.desktop.status).toBe('RUNNING');
    const cmd = await bridge.command(d.id, 'snapshot');
    expect(cmd.spec.snapshot).toEqual({ name: 'before-upgrade', withRam: true, description: 'clean' });
    bridge.complete(cmd);
    await vi.waitFor(async () => expect((await desktopOf(d.id)).statusMessage).toBe('Snapshot before-upgrade taken'), { timeout: 10_000 });
    expect((await desktopOf(d.id)).status).toBe('RUNNING');

    const listing = api<{ snapshots: DesktopSnapshot[]; unsupported: string | null }>('GET', `/api/v1/desktops/${d.id}/snapshots`, {
      token: await token(owner),
    });
    const listed = await withListing(d.id, listing, [{ name: 'before-upgrade', description: 'clean', withRam: true }]);
    expect(listed.status).toBe(200);
    expect(listed.body?.data).toEqual({
      snapshots: [{ name: 'before-upgrade', description: 'clean', takenAt: '2026-12-05T08:00:00.000Z', withRam: true, parent: null }],
      unsupported: null,
    });

    await vi.waitFor(
      async () => {
        const rows = await withDb(cfg(), (db) =>
          db
            .select()
            .from(webhookDeliveries)
            .where(and(eq(webhookDeliveries.webhookId, hook.body!.data.id), eq(webhookDeliveries.eventType, 'desktop.snapshot_created'))),
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
            .where(and(eq(auditLog.target, d.id), eq(auditLog.action, 'desktop.snapshot'))),
        );
        expect(rows.map((r) => [r.actor, r.outcome, JSON.parse(r.details ?? 'null')])).toEqual([
          [owner, '202', { snapshot: 'before-upgrade', withRam: true }],
        ]);
      },
      { timeout: 10_000, interval: 100 },
    );
  });

  it('names a snapshot by the time when no name is given', async () => {
    const owner = uniqueUser('snap');
    const d = await bridge.runningDesktop(owner);
    const res = await withListing(d.id, post<Operation>(owner, `/api/v1/desktops/${d.id}/snapshots`), []);
    expect(res.status, res.text).toBe(202);
    expect(res.body?.data.snapshot.name).toMatch(/^snap-\d{8}-\d{6}$/);
  });

  it('restores a desktop: STARTING, through the statuses of a start, RUNNING again; the transition says restore', async () => {
    const owner = uniqueUser('snap');
    const d = await bridge.runningDesktop(owner);
    await takeSnapshot(owner, d, 'good');

    const res = await withListing(d.id, post<Desktop>(owner, `/api/v1/desktops/${d.id}/snapshots/good/restore`), [{ name: 'good' }]);
    expect(res.status, res.text).toBe(202);
    expect(res.body?.data.status).toBe('STARTING');
    const cmd = await bridge.command(d.id, 'restore');
    expect(cmd.spec.snapshot?.name).toBe('good');
    bridge.progress(cmd, 'shutdown', 'Rolling VM 31000 back to good');
    bridge.progress(cmd, 'start_vm', 'starting the VM');
    bridge.progress(cmd, 'wait_ip', 'waiting for the guest agent');
    bridge.progress(cmd, 'connection', 'pointing the connection at the new address', { ipAddress: '10.30.0.9' });
    bridge.complete(cmd, { vmId: 31000, node: 'pve1', ipAddress: '10.30.0.9', connectionId: '31' });
    await vi.waitFor(async () => expect((await desktopOf(d.id)).status).toBe('RUNNING'), { timeout: 10_000, interval: 20 });
    expect((await desktopOf(d.id)).ipAddress).toBe('10.30.0.9');

    const events = await api<TransitionRecord[]>('GET', `/api/v1/desktops/${d.id}/events`, { token: await token(owner) });
    const tail = events.body!.data.slice(-4).map((t) => `${t.from} --${t.event}--> ${t.to}`);
    expect(tail).toEqual([
      'RUNNING --restore--> STARTING',
      'STARTING --waiting_for_ip--> WAITING_FOR_IP',
      'WAITING_FOR_IP --configuring--> CONFIGURING',
      'CONFIGURING --restore_completed--> RUNNING',
    ]);
  });

  it('deletes a snapshot, and 404s one the desktop does not have', async () => {
    const owner = uniqueUser('snap');
    const d = await bridge.runningDesktop(owner);
    await takeSnapshot(owner, d, 'old');

    const unknown = await withListing(d.id, api('DELETE', `/api/v1/desktops/${d.id}/snapshots/nope`, { token: await token(owner) }), [
      { name: 'old' },
    ]);
    expect(unknown.status).toBe(404);
    expect(unknown.body?.message).toBe(`Desktop ${d.id} has no snapshot named nope`);
    const restoreUnknown = await withListing(d.id, post(owner, `/api/v1/desktops/${d.id}/snapshots/nope/restore`), [{ name: 'old' }]);
    expect(restoreUnknown.status).toBe(404);

    const res = await withListing(d.id, api<Operation>('DELETE', `/api/v1/desktops/${d.id}/snapshots/old`, { token: await token(owner) }), [
      { name: 'old' },
    ]);
    expect(res.status, res.text).toBe(202);
    const cmd = await bridge.command(d.id, 'delete_snapshot');
    expect(cmd.spec.snapshot?.name).toBe('old');
    bridge.complete(cmd);
    await vi.waitFor(async () => expect((await desktopOf(d.id)).statusMessage).toBe('Snapshot old deleted'), { timeout: 10_000 });
  });

  it('forks a desktop from a snapshot: a new desktop on the same site whose create clones it, for whoever may read it', async () => {
    const owner = uniqueUser('snap');
    const quota = await api('PUT', `/api/v1/admin/users/${owner}/quota`, {
      token: await token('root', { roles: ['admin'] }),
      body: { maxDesktops: 2 },
    });
    expect(quota.status, quota.text).toBe(200);
    const d = await bridge.runningDesktop(owner);
    await takeSnapshot(owner, d, 'base');

    const stranger = await post('someone-else', '/api/v1/desktops', { forkOf: { desktopId: d.id, snapshot: 'base' } });
    expect(stranger.status).toBe(404);
    const missing = await withListing(d.id, post(owner, '/api/v1/desktops', { forkOf: { desktopId: d.id, snapshot: 'other' } }), [
      { name: 'base' },
    ]);
    expect(missing.status).toBe(404);

    const res = await withListing(d.id, post<Desktop>(owner, '/api/v1/desktops', { forkOf: { desktopId: d.id, snapshot: 'base' } }), [
      { name: 'base' },
    ]);
    expect(res.status, res.text).toBe(202);
    const fork = res.body!.data;
    expect(fork).toMatchObject({
      siteId: SITE,
      userId: owner,
      name: 'Seeded (fork)',
      plan: d.plan,
      protocol: d.protocol,
      status: 'PENDING',
    });
    const create = await bridge.command(fork.id, 'create');
    expect(create.spec.forkOf).toEqual({ desktopId: d.id, snapshot: 'base' });
    await bridge.runCreate(create, { vmId: 31001, ipAddress: '10.30.0.2', connectionId: '32' });
    await vi.waitFor(async () => expect((await desktopOf(fork.id)).status).toBe('RUNNING'), { timeout: 10_000, interval: 20 });
    // Only the create clones: a later command of the fork carries no forkOf.
    expect((await post(owner, `/api/v1/desktops/${fork.id}/stop`)).status).toBe(202);
    expect((await bridge.command(fork.id, 'stop')).spec.forkOf).toBeUndefined();
  });

  it('refuses in the error envelope: WebRTC desktops, storage that cannot snapshot, a status, a name, an operation running', async () => {
    const owner = uniqueUser('snap');
    const selkies = await seedDesktop(SITE, owner, { backend: 'selkies', gpuSlots: 0 });
    const webrtc = await post(owner, `/api/v1/desktops/${selkies.id}/snapshots`, { name: 'x1' });
    expect(webrtc.status).toBe(409);
    expect(webrtc.body?.error?.code).toBe('SNAPSHOTS_UNSUPPORTED');
    expect(webrtc.body?.message).toMatch(/WebRTC \(Selkies\) desktop/);
    const forkWebrtc = await post(owner, '/api/v1/desktops', { forkOf: { desktopId: selkies.id, snapshot: 'x1' } });
    expect(forkWebrtc.body?.error?.code).toBe('SNAPSHOTS_UNSUPPORTED');

    const pending = await seedDesktop(SITE, owner);
    const early = await post(owner, `/api/v1/desktops/${pending.id}/snapshots`, { name: 'x1' });
    expect(early.status).toBe(409);
    expect(early.body?.error?.code).toBe('INVALID_STATE');
    expect(early.body?.message).toBe(`Cannot take a snapshot of desktop ${pending.id}: it is PENDING, not RUNNING or STOPPED`);

    const d = await bridge.runningDesktop(owner);
    for (const name of ['1abc', 'a', 'a'.repeat(41), 'has space', 'current']) {
      const bad = await post(owner, `/api/v1/desktops/${d.id}/snapshots`, { name });
      expect(bad.status, name).toBe(400);
      expect(bad.body?.error?.code).toBe('VALIDATION_FAILED');
    }
    expect((await post(owner, `/api/v1/desktops/${d.id}/snapshots/${'a'.repeat(41)}/restore`)).status).toBe(400);

    const lvm =
      "The desktop's disks are on storage that cannot take snapshots (plain LVM or raw files): san-lvm:vm-31000-disk-0 (lvm). Move them to LVM-thin, ZFS or Ceph to use snapshots.";
    const plain = await withListing(d.id, post(owner, `/api/v1/desktops/${d.id}/snapshots`, { name: 'x1' }), [], lvm);
    expect(plain.status).toBe(409);
    expect(plain.body?.error?.code).toBe('SNAPSHOTS_UNSUPPORTED');
    expect(plain.body?.message).toBe(lvm);

    const taken = await withListing(d.id, post(owner, `/api/v1/desktops/${d.id}/snapshots`, { name: 'x1' }), [{ name: 'x1' }]);
    expect(taken.status).toBe(409);
    expect(taken.body?.error?.code).toBe('CONFLICT');

    // One snapshot operation at a time: the second waits for the first to end.
    expect((await withListing(d.id, post(owner, `/api/v1/desktops/${d.id}/snapshots`, { name: 'x2' }), [])).status).toBe(202);
    const busy = await withListing(d.id, post(owner, `/api/v1/desktops/${d.id}/snapshots`, { name: 'x3' }), []);
    expect(busy.status).toBe(409);
    expect(busy.body?.message).toBe(`The snapshot x2 of desktop ${d.id} is being taken; try again when that is done`);
    expect((await post(owner, `/api/v1/desktops/${d.id}/stop`)).status).toBe(409);
  });

  it('gives back the quota slot of a snapshot the site could not take, and says why on the desktop', async () => {
    const owner = uniqueUser('snap');
    const d = await bridge.runningDesktop(owner);
    expect((await withListing(d.id, post(owner, `/api/v1/desktops/${d.id}/snapshots`, { name: 'doomed' }), [])).status).toBe(202);
    const cmd = await bridge.command(d.id, 'snapshot');
    bridge.send({ type: 'fail', commandId: cmd.id, desktopId: d.id, message: 'Proxmox refused to snapshot VM 31000: no space left' });
    await vi.waitFor(
      async () =>
        expect((await desktopOf(d.id)).statusMessage).toBe(
          'The snapshot doomed could not be taken: Proxmox refused to snapshot VM 31000: no space left',
        ),
      { timeout: 10_000, interval: 20 },
    );
    expect((await desktopOf(d.id)).status).toBe('RUNNING');
    await vi.waitFor(async () => {
      const held = await (env as Bindings).USER_ACCOUNT.getByName(owner).reserveSnapshot(d.id, 'probe', 1);
      expect(held.ok).toBe(true);
    });
  });

  it("refuses a snapshot past SNAPSHOT_MAX_PER_USER across the user's desktops, until one is deleted", async () => {
    const owner = uniqueUser('snap');
    const max = cfg().SNAPSHOT_MAX_PER_USER;
    const first = await bridge.runningDesktop(owner);
    const second = await bridge.runningDesktop(owner);
    const names: string[] = [];
    for (let i = 0; i < max; i++) {
      const d = i % 2 === 0 ? first : second;
      const name = `q${i}`;
      await takeSnapshot(
        owner,
        d,
        name,
        names.filter((_, j) => j % 2 === i % 2).map((n) => ({ name: n })),
      );
      names.push(name);
    }
    const over = await withListing(
      first.id,
      post(owner, `/api/v1/desktops/${first.id}/snapshots`, { name: 'one-more' }),
      names.filter((_, j) => j % 2 === 0).map((n) => ({ name: n })),
    );
    expect(over.status).toBe(409);
    expect(over.body?.error?.code).toBe('SNAPSHOT_QUOTA');
    expect(over.body?.message).toBe(`Snapshot quota reached: a user may keep at most ${max} snapshots (has ${max}); delete one first`);

    // Deleting one frees its slot.
    const evens = names.filter((_, j) => j % 2 === 0).map((n) => ({ name: n }));
    const del = await withListing(
      first.id,
      api('DELETE', `/api/v1/desktops/${first.id}/snapshots/q0`, { token: await token(owner) }),
      evens,
    );
    expect(del.status, del.text).toBe(202);
    bridge.complete(await bridge.command(first.id, 'delete_snapshot'));
    await vi.waitFor(async () => expect((await desktopOf(first.id)).statusMessage).toBe('Snapshot q0 deleted'), { timeout: 10_000 });
    const ok = await vi.waitFor(
      async () => {
        const again = withListing(first.id, post(owner, `/api/v1/desktops/${first.id}/snapshots`, { name: 'one-more' }), evens.slice(1));
        const r = await again;
        expect(r.status, r.text).toBe(202);
        return r;
      },
      { timeout: 10_000, interval: 50 },
    );
    expect(ok.status, ok.text).toBe(202);
  });
});
