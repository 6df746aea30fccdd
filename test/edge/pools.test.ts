/**
 * Warm pools (issue 13) through the API: an admin makes a pool for a template, its members
 * are built through the ordinary create path (the fake bridge plays the site), and a
 * user's create for that template is answered by a ready member, RUNNING at once and
 * theirs from then on. Concurrent claims never share a member, a member that went bad is
 * replaced and never handed out, a paused pool builds nothing, and a claimed desktop
 * is destroyed on delete, never returned.
 */
import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm } from 'cloudflare:test';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Command } from '../../src/schemas/bridge-protocol';
import type { Desktop } from '../../src/schemas/desktop';
import type { PoolView } from '../../src/schemas/pool';
import { FakeBridge, registerSite } from './fake-bridge';
import { api, token, uniqueUser } from './helpers';

let bridge: FakeBridge;
let admin: string;
let vmId = 52000;
/** Create and stop commands already played, so each is played once. */
const played = new Set<string>();

beforeAll(async () => {
  bridge = await FakeBridge.connect('local', await registerSite('local'));
  admin = await token('root', { roles: ['admin'] });
});

afterAll(async () => {
  await bridge.close();
});

async function template(id: string): Promise<void> {
  const res = await api('POST', '/api/v1/admin/templates', {
    token: admin,
    body: { id, name: `Pooled ${id}`, os: 'Ubuntu 24.04', backend: 'proxmox', protocol: 'vnc', defaultPlan: 'BASIC' },
  });
  expect(res.status, res.text).toBe(201);
}

async function putPool(id: string, templateId: string, sizing: object, extra: object = {}) {
  const res = await api<PoolView>('PUT', `/api/v1/admin/pools/${id}`, { token: admin, body: { templateId, sizing, ...extra } });
  expect(res.status, res.text).toBe(200);
}

const view = async (id: string) => {
  const res = await api<PoolView>('GET', `/api/v1/admin/pools/${id}`, { token: admin });
  expect(res.status, res.text).toBe(200);
  return res.body?.data as PoolView;
};

/** Plays, as the site would, every create and stop the pool has sent for its members. */
function playPoolCommands(): void {
  for (const f of bridge.received) {
    if (f.type !== 'command' || played.has(f.command.id) || !f.command.spec.userId.startsWith('pool:')) continue;
    played.add(f.command.id);
    const cmd: Command = f.command;
    if (cmd.kind === 'create' && cmd.spec.backend === 'selkies') void playSelkies(cmd);
    else if (cmd.kind === 'create') {
      const vm = vmId++;
      void bridge.runCreate(cmd, { vmId: vm, ipAddress: `10.52.${vm % 250}.1`, connectionId: String(vm) });
    } else if (cmd.kind === 'stop' || cmd.kind === 'delete') bridge.complete(cmd);
  }
}

/** Plays a Selkies create or start as the bridge reports it: the pod scheduled on its GPU's node, then its route. */
async function playSelkies(cmd: Command): Promise<void> {
  const node = cmd.spec.gpu?.node ?? cmd.spec.node ?? 'k3s-cpu-1';
  bridge.send({ type: 'accepted', commandId: cmd.id, desktopId: cmd.desktopId });
  bridge.progress(cmd, 'clone', `creating the session's pod desk-${cmd.desktopId}`);
  bridge.progress(cmd, 'start_vm', `pod scheduled on ${node}`, { node });
  bridge.progress(cmd, 'wait_ip', 'waiting for the desktop');
  const sessionUrl = `https://desk-${cmd.desktopId}.desk.test/`;
  bridge.progress(cmd, 'connection', `publishing the session at ${sessionUrl}`, { sessionUrl });
  bridge.complete(cmd, { node, sessionUrl });
}

/** Waits until the pool shows `running` and `stopped` members ready, playing the site meanwhile. */
async function ready(poolId: string, running: number, stopped = 0): Promise<PoolView> {
  return vi.waitFor(
    async () => {
      playPoolCommands();
      await runDurableObjectAlarm(env.WARM_POOL.getByName(`${poolId}#0`));
      const v = await view(poolId);
      const count = (tier: string) => v.members.filter((m) => m.tier === tier && m.phase === 'ready').length;
      expect([count('running'), count('stopped')]).toEqual([running, stopped]);
      return v;
    },
    { timeout: 20_000, interval: 100 },
  );
}

const create = async (user: string, templateId: string, headers: Record<string, string> = {}) =>
  api<Desktop>('POST', '/api/v1/desktops', { token: await token(user), body: { templateId }, headers });

describe('warm pools', () => {
  it('answers a create with a ready member: RUNNING at once, the user’s from the claim on, destroyed on delete', async () => {
    await template('pooled-a');
    await putPool('pool-a', 'pooled-a', { running: 1, cap: 1 });
    const [member] = (await ready('pool-a', 1)).members;
    // Nobody's yet: no user sees it, nor lists it.
    const alice = uniqueUser('alice');
    expect((await api('GET', `/api/v1/desktops/${member?.desktopId}`, { token: await token(alice) })).status).toBe(404);

    const before = Date.now();
    const res = await create(alice, 'pooled-a');
    expect(res.status, res.text).toBe(202);
    const d = res.body?.data as Desktop;
    expect(d).toMatchObject({
      id: member?.desktopId,
      userId: alice,
      status: 'RUNNING',
      claimedFromPool: 'pool-a',
      createdBy: `user:${alice}`,
    });
    expect(res.headers.get('location')).toBe(`/api/v1/desktops/${d.id}`);
    const list = await api<{ items: Desktop[] }>('GET', '/api/v1/desktops', { token: await token(alice) });
    expect(list.body?.data.items.map((x) => [x.id, x.status])).toEqual([[d.id, 'RUNNING']]);

    const stub = env.DESKTOP_SESSION.getByName(d.id);
    // Billed from the claim, not from when the pool built it; its idle clock starts now too.
    const usage = await stub.usage();
    expect(usage).toHaveLength(1);
    expect(usage[0]?.startedAt).toBeGreaterThanOrEqual(before);
    expect(Date.parse(d.lastActivityAt ?? '')).toBeGreaterThanOrEqual(before);
    expect(d.idleStopAt).not.toBeNull();
    const last = (await stub.history()).at(-1);
    expect(last).toMatchObject({ from: 'RUNNING', to: 'RUNNING', event: 'claimed', actor: `user:${alice}` });
    // The audit trail names its first owner.
    await vi.waitFor(
      async () => {
        const audit = await api<{ items: { actor: string; details: unknown }[] }>(
          'GET',
          `/api/v1/admin/audit?action=desktop.create&target=${d.id}`,
          { token: admin },
        );
        // Built by the pool (a system record of its transition), then created for alice from it.
        expect(audit.body?.data.items.map((r) => [r.actor, r.details])).toEqual([
          [alice, { claimedFromPool: 'pool-a' }],
          ['system:pool:pool-a', { reason: 'desktop creation requested' }],
        ]);
      },
      { timeout: 15_000, interval: 100 },
    );

    const v = await view('pool-a');
    expect(v.stats).toMatchObject({ hits: 1, misses: 0 });
    expect(v.members.map((m) => m.desktopId)).not.toContain(d.id);

    // Delete destroys it: the site is told to tear it down, and the pool never sees it again.
    expect((await api('DELETE', `/api/v1/desktops/${d.id}`, { token: await token(alice) })).status).toBe(202);
    const teardown = await bridge.command(d.id, 'delete');
    expect(teardown.spec.userId).toBe(alice);
    await ready('pool-a', 1);
    expect((await view('pool-a')).members.map((m) => m.desktopId)).not.toContain(d.id);
  });

  it('never hands one member to two users, however many claim at once', async () => {
    await template('pooled-b');
    await putPool('pool-b', 'pooled-b', { running: 3, cap: 3 });
    await ready('pool-b', 3);
    // A paused pool does not refill while the claims run, so the misses are exactly the claims past three.
    await putPool('pool-b', 'pooled-b', { running: 3, cap: 3 }, { paused: true });
    const users = Array.from({ length: 7 }, () => uniqueUser('rush'));
    const answers = await Promise.all(users.map((u) => create(u, 'pooled-b')));
    expect(answers.map((a) => a.status)).toEqual(users.map(() => 202));
    const desktops = answers.map((a) => a.body?.data as Desktop);
    const claimed = desktops.filter((d) => d.claimedFromPool === 'pool-b');
    expect(claimed).toHaveLength(3);
    expect(new Set(claimed.map((d) => d.id)).size).toBe(3);
    for (const d of claimed) expect((await env.DESKTOP_SESSION.getByName(d.id).get())?.userId).toBe(d.userId);
    // The others were built for their request, cold.
    expect(desktops.filter((d) => !d.claimedFromPool).map((d) => d.status)).toEqual(['PENDING', 'PENDING', 'PENDING', 'PENDING']);
    expect((await view('pool-b')).stats).toMatchObject({ hits: 3, misses: 4 });
  });

  it('replaces a member that went bad and never hands it out', async () => {
    await template('pooled-c');
    await putPool('pool-c', 'pooled-c', { running: 1, cap: 1 });
    const [bad] = (await ready('pool-c', 1)).members;
    // Reconciliation finds its VM gone: FAILED, before the pool has looked again.
    const seen = await env.DESKTOP_SESSION.getByName(bad?.desktopId ?? '').reconcileObservation(
      'local',
      new Date(Date.now() + 1000).toISOString(),
      null,
    );
    expect(seen).toBe('vm_missing');

    const res = await create(uniqueUser('carol'), 'pooled-c');
    expect(res.status, res.text).toBe(202);
    expect(res.body?.data).toMatchObject({ status: 'PENDING', claimedFromPool: null });
    expect(res.body?.data.id).not.toBe(bad?.desktopId);

    // The pool destroys it and builds another.
    await vi.waitFor(() => bridge.command(bad?.desktopId ?? '', 'delete'), { timeout: 10_000 });
    const replaced = await ready('pool-c', 1);
    expect(replaced.members[0]?.desktopId).not.toBe(bad?.desktopId);
    expect(replaced.stats).toMatchObject({ replaced: 1, misses: 1, hits: 0 });
  });

  it('builds nothing while paused, and refills when resumed', async () => {
    await template('pooled-d');
    await putPool('pool-d', 'pooled-d', { running: 1, cap: 1 });
    await ready('pool-d', 1);
    await putPool('pool-d', 'pooled-d', { running: 1, cap: 1 }, { paused: true });
    expect((await create(uniqueUser('dave'), 'pooled-d')).body?.data.claimedFromPool).toBe('pool-d');
    const creates = () => bridge.received.filter((f) => f.type === 'command' && f.command.kind === 'create').length;
    const before = creates();
    await runDurableObjectAlarm(env.WARM_POOL.getByName('pool-d#0'));
    const paused = await view('pool-d');
    expect(paused.members).toEqual([]);
    expect(paused.target.reasons.at(-1)).toBe('paused: nothing is built, started or stopped');
    expect(creates()).toBe(before);

    await putPool('pool-d', 'pooled-d', { running: 1, cap: 1 }, { paused: false });
    await ready('pool-d', 1);
  });

  it('starts a member of the stopped tier for its claimer', async () => {
    await template('pooled-e');
    await putPool('pool-e', 'pooled-e', { running: 0, stopped: 1, cap: 0 });
    const [member] = (await ready('pool-e', 0, 1)).members;
    const res = await create(uniqueUser('erin'), 'pooled-e');
    expect(res.body?.data).toMatchObject({ id: member?.desktopId, status: 'STARTING', claimedFromPool: 'pool-e' });
    const start = await bridge.command(member?.desktopId ?? '', 'start');
    expect(start.spec.userId).toBe(res.body?.data.userId);
    expect((await view('pool-e')).stats).toMatchObject({ warmHits: 1 });
  });

  it('answers a retried create with the member its Idempotency-Key got', async () => {
    await template('pooled-f');
    await putPool('pool-f', 'pooled-f', { running: 1, cap: 1 });
    await ready('pool-f', 1);
    const frank = uniqueUser('frank');
    const headers = { 'idempotency-key': `pool-retry-${frank}` };
    const first = await create(frank, 'pooled-f', headers);
    const again = await create(frank, 'pooled-f', headers);
    expect(first.body?.data.claimedFromPool).toBe('pool-f');
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body?.data.id).toBe(first.body?.data.id);
  });

  it('replaces the ready members of a template edited after its pool was saved, handing none of them out; a retired template’s go', async () => {
    await template('pooled-edit');
    await putPool('pool-edit', 'pooled-edit', { running: 1, cap: 2 });
    const [old] = (await ready('pool-edit', 1)).members;
    const body = { name: 'Pooled pooled-edit', os: 'Ubuntu 24.04', backend: 'proxmox', protocol: 'vnc', defaultPlan: 'STANDARD' };
    const edited = await api('PUT', '/api/v1/admin/templates/pooled-edit', { token: admin, body });
    expect(edited.status, edited.text).toBe(200);
    expect(edited.body?.message).toMatch(/warm pools told: pool-edit/);

    // Made from the earlier version (BASIC): not handed out, the create goes cold.
    const res = await create(uniqueUser('erin'), 'pooled-edit');
    expect(res.status, res.text).toBe(202);
    expect(res.body?.data).toMatchObject({ status: 'PENDING', claimedFromPool: null, plan: 'STANDARD' });
    expect(res.body?.data.id).not.toBe(old?.desktopId);

    // The replenisher destroys it and builds its replacement from the template as it is now.
    const after = await ready('pool-edit', 1);
    const fresh = after.members.find((m) => m.phase === 'ready');
    expect(fresh?.desktopId).not.toBe(old?.desktopId);
    const commandsFor = (id: string | undefined) =>
      bridge.received.flatMap((f) => (f.type === 'command' && f.command.desktopId === id ? [f.command] : []));
    // The delete goes out through the jobs queue and the site's hub: it reaches the bridge a moment after.
    const deleteSent = (id: string | undefined) =>
      vi.waitFor(() => expect(commandsFor(id).map((c) => c.kind)).toContain('delete'), { timeout: 10_000, interval: 50 });
    await deleteSent(old?.desktopId);
    expect(commandsFor(fresh?.desktopId).find((c) => c.kind === 'create')?.spec).toMatchObject({ cpuCores: 4, memoryMb: 4096 });
    const claimed = await create(uniqueUser('frank'), 'pooled-edit');
    expect(claimed.body?.data).toMatchObject({ id: fresh?.desktopId, status: 'RUNNING', plan: 'STANDARD', claimedFromPool: 'pool-edit' });

    // Retired: no new launches, so its unclaimed members are destroyed and none is built.
    const last = (await ready('pool-edit', 1)).members.find((m) => m.phase === 'ready');
    const retired = await api('DELETE', '/api/v1/admin/templates/pooled-edit', { token: admin });
    expect(retired.status, retired.text).toBe(200);
    expect(retired.body?.message).toMatch(/warm pools told: pool-edit/);
    const empty = await vi.waitFor(
      async () => {
        playPoolCommands();
        await runDurableObjectAlarm(env.WARM_POOL.getByName('pool-edit#0'));
        const v = await view('pool-edit');
        expect(v.members).toEqual([]);
        return v;
      },
      { timeout: 20_000, interval: 100 },
    );
    expect(empty.target?.reasons.join(' ')).toMatch(/retired/);
    await deleteSent(last?.desktopId);
  });

  it('claims a Selkies member: STARTING while its pod is replaced by one with the claimer’s home on its node, then RUNNING; its GPU slot held throughout', async () => {
    bridge.send({ type: 'capacity', gpus: [{ id: 'k3s-a/gpu0', node: 'k3s-a', model: 'NVIDIA RTX A4000', slots: 8 }] });
    const gpuUse = async () => {
      const res = await api<{ siteId: string; gpus: { sessions: { sessionId: string }[] }[] }[]>('GET', '/api/v1/admin/gpus', {
        token: admin,
      });
      return (res.body?.data.find((x) => x.siteId === 'local')?.gpus ?? []).flatMap((g) => g.sessions.map((x) => x.sessionId));
    };
    await vi.waitFor(async () => expect((await api('GET', '/api/v1/admin/gpus', { token: admin })).text).toContain('k3s-a/gpu0'));
    const made = await api('POST', '/api/v1/admin/templates', {
      token: admin,
      body: {
        id: 'pooled-webrtc',
        name: 'Pooled WebRTC',
        os: 'Ubuntu 24.04',
        backend: 'selkies',
        protocol: 'webrtc',
        gpuSlots: 1,
        image: 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20250815000000',
      },
    });
    expect(made.status, made.text).toBe(201);
    // A stopped pod is no pod: such a pool has a running tier only.
    const stopped = await api('PUT', '/api/v1/admin/pools/pool-webrtc', {
      token: admin,
      body: { templateId: 'pooled-webrtc', sizing: { running: 1, stopped: 1, cap: 2 } },
    });
    expect(stopped.status).toBe(400);
    expect(stopped.text).toMatch(/running tier only/);

    await putPool('pool-webrtc', 'pooled-webrtc', { running: 1, cap: 1 });
    const [member] = (await ready('pool-webrtc', 1)).members;
    const id = member?.desktopId ?? '';
    const build = await bridge.command(id, 'create');
    const builtBy = Math.floor(Date.now() / 1000);
    // Nobody's yet: a throwaway home, and the GPU slot booked for the member's run.
    expect(build.spec).toMatchObject({ userId: 'pool:pool-webrtc', scratchHome: true, gpu: { node: 'k3s-a' } });
    const booking = (await gpuUse()).filter((b) => b.startsWith(`${id}/`));
    expect(booking).toHaveLength(1);

    // TURN credentials carry their expiry in whole seconds: let the clock leave the second the member's were minted in,
    // so the claimer's can only equal them if they were reused.
    await vi.waitFor(() => expect(Math.floor(Date.now() / 1000)).toBeGreaterThan(builtBy), { timeout: 2_000, interval: 20 });
    const alice = uniqueUser('alice');
    const res = await create(alice, 'pooled-webrtc');
    expect(res.status, res.text).toBe(202);
    expect(res.body?.data).toMatchObject({ id, userId: alice, status: 'STARTING', claimedFromPool: 'pool-webrtc' });
    // The start replaces the pod: alice's home (no throwaway one), on the member's node, the same GPU booking.
    const start = await bridge.command(id, 'start');
    expect(start.spec).toMatchObject({ userId: alice, tenant: 'users', node: 'k3s-a', gpu: build.spec.gpu });
    expect(start.spec.scratchHome).toBeUndefined();
    expect(start.spec.turn?.username).not.toBe(build.spec.turn?.username);
    expect((await gpuUse()).filter((b) => b.startsWith(`${id}/`))).toEqual(booking);

    await playSelkies(start);
    const running = await vi.waitFor(
      async () => {
        const r = await api<Desktop>('GET', `/api/v1/desktops/${id}`, { token: await token(alice) });
        expect(r.body?.data.status).toBe('RUNNING');
        return r.body?.data as Desktop;
      },
      { timeout: 10_000, interval: 50 },
    );
    expect(running).toMatchObject({ userId: alice, sessionUrl: `https://desk-${id}.desk.test/`, node: 'k3s-a' });
    const stub = env.DESKTOP_SESSION.getByName(id);
    const history = (await stub.history()).map((t) => `${t.from} --${t.event}--> ${t.to}`);
    expect(history.slice(-4)).toEqual([
      'RUNNING --claimed_rehome--> STARTING',
      'STARTING --waiting_for_ip--> WAITING_FOR_IP',
      'WAITING_FOR_IP --configuring--> CONFIGURING',
      'CONFIGURING --start_completed--> RUNNING',
    ]);
    // Billed to alice from when it came up as hers; the pool's time before was nobody's.
    expect(await stub.usage()).toHaveLength(1);
    expect((await view('pool-webrtc')).stats).toMatchObject({ hits: 1 });
  });

  it('refuses a pool for an unknown template, and a second pool for the same template and site', async () => {
    const unknown = await api('PUT', '/api/v1/admin/pools/nope', {
      token: admin,
      body: { templateId: 'no-such', sizing: { running: 1, cap: 1 } },
    });
    expect(unknown.status).toBe(400);
    await template('pooled-g');
    await putPool('pool-g', 'pooled-g', { running: 0, cap: 0 });
    const twice = await api('PUT', '/api/v1/admin/pools/pool-g2', {
      token: admin,
      body: { templateId: 'pooled-g', sizing: { running: 0, cap: 0 } },
    });
    expect(twice.status).toBe(409);
    expect(twice.body?.message).toBe('Pool pool-g already serves template pooled-g at site local');
  });
});
