/**
 * GPU bookings belong to one run of a desktop (its create, or a start): starts that race,
 * and the release of a run that ended arriving after the next run began, must never free
 * the slots of the run that holds them, nor book a GPU twice.
 */
import { env } from 'cloudflare:workers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Bindings } from '../../src/env';
import type { Desktop } from '../../src/schemas/desktop';
import { FakeBridge, registerSite } from './fake-bridge';
import { api, token, uniqueUser } from './helpers';

const IMAGE = 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-20250815000000';
let admin: string;
let bridge: FakeBridge;
let heartbeat: ReturnType<typeof setInterval>;

interface Occupancy {
  siteId: string;
  gpus: { gpuId: string; slots: number; used: number; sessions: { sessionId: string; slots: number }[] }[];
  totals: { slots: number; used: number; free: number };
}

async function occupancy(): Promise<Occupancy> {
  const res = await api<Occupancy[]>('GET', '/api/v1/admin/gpus', { token: admin });
  const local = res.body?.data.find((s) => s.siteId === 'local');
  if (!local) throw new Error('no occupancy for site local');
  return local;
}

const bookingsOf = (occ: Occupancy, desktopId: string) =>
  occ.gpus.flatMap((g) => g.sessions.filter((s) => s.sessionId.split('/')[0] === desktopId).map((s) => ({ ...s, gpuId: g.gpuId })));

beforeAll(async () => {
  admin = await token('root', { roles: ['admin'] });
  bridge = await FakeBridge.connect('local', await registerSite('local'));
  // This test takes a while on a busy machine: the link must not lapse for want of heartbeats.
  heartbeat = setInterval(() => bridge.send({ type: 'heartbeat', running: [] }), 1000);
  // Two GPUs of 8 slots: two whole-GPU sessions at most.
  bridge.send({
    type: 'capacity',
    gpus: [
      { id: 'k3s-gpu-1/gpu0', node: 'k3s-gpu-1', model: 'NVIDIA RTX A4000', slots: 8 },
      { id: 'k3s-gpu-1/gpu1', node: 'k3s-gpu-1', model: 'NVIDIA RTX A4000', slots: 8 },
    ],
  });
  await vi.waitFor(async () => expect((await occupancy()).totals.slots).toBe(16));
}, 60_000);

afterAll(async () => {
  clearInterval(heartbeat);
  await bridge.close();
});

describe('GPU bookings per run', () => {
  it('survive concurrent start/stop/start and late releases: one booking per running desktop, never more slots than the GPUs have', async () => {
    const templateId = `gpu-runs-${crypto.randomUUID().slice(0, 6)}`;
    const made = await api('POST', '/api/v1/admin/templates', {
      token: admin,
      body: { id: templateId, name: 'Whole GPU', os: 'Ubuntu 24.04', backend: 'selkies', protocol: 'webrtc', gpuSlots: 8, image: IMAGE },
    });
    expect(made.status).toBe(201);
    const user = uniqueUser('gpu-runs');
    const tok = await token(user);
    const hub = (env as Bindings).SITE_HUB.getByName('local');
    const stub = (id: string) => (env as Bindings).DESKTOP_SESSION.getByName(id);
    const waitFor = (id: string, status: Desktop['status']) =>
      vi.waitFor(async () => expect((await stub(id).get())?.status).toBe(status), { timeout: 10_000, interval: 20 });
    const facts = { vmId: 0, ipAddress: '10.9.0.1', connectionId: 'x' };
    // The newest command of a kind (the fake bridge keeps every frame it was sent).
    const handled = new Set<string>();
    const next = async (kind: 'create' | 'start' | 'stop') => {
      const f = await bridge.waitFor(
        (x) => x.type === 'command' && x.command.desktopId === id && x.command.kind === kind && !handled.has(x.command.id),
      );
      if (f.type !== 'command') throw new Error('unreachable');
      handled.add(f.command.id);
      return f.command;
    };

    const created = await api<Desktop>('POST', '/api/v1/desktops', { token: tok, body: { templateId } });
    expect(created.status).toBe(202);
    const id = created.body!.data.id;
    await bridge.runCreate(await next('create'), facts);
    await waitFor(id, 'RUNNING');
    const firstRun = (await stub(id).currentRun())?.runId ?? null;

    // stop; then two starts at once: one wins, the other is refused.
    expect((await api('POST', `/api/v1/desktops/${id}/stop`, { token: tok })).status).toBe(202);
    bridge.complete(await next('stop'));
    await waitFor(id, 'STOPPED');
    const starts = await Promise.all([1, 2].map(() => api('POST', `/api/v1/desktops/${id}/start`, { token: tok })));
    expect(starts.map((r) => r.status).sort()).toEqual([202, 409]);
    const secondRun = (await stub(id).currentRun())?.runId ?? null;
    expect(secondRun).not.toBe(firstRun);
    // The start went out with this run's booking, not the first run's.
    const startCmd = await next('start');
    const held = bookingsOf(await occupancy(), id);
    expect(held).toEqual([{ sessionId: `${id}/${secondRun}`, slots: 8, gpuId: startCmd.spec.gpu?.gpuId }]);

    // The first run's release arrives late, after the second run began: it frees nothing of the second.
    await hub.releaseGpu(id, firstRun);
    expect(bookingsOf(await occupancy(), id)).toEqual(held);

    // So the site is full once one more whole-GPU session runs, and a third is refused.
    const other = await api<Desktop>('POST', '/api/v1/desktops', { token: await token(uniqueUser('gpu-runs')), body: { templateId } });
    expect(other.status).toBe(202);
    const third = await api('POST', '/api/v1/desktops', { token: await token(uniqueUser('gpu-runs')), body: { templateId } });
    expect(third.status).toBe(409);
    expect(third.body?.error?.code).toBe('GPU_CAPACITY');
    const occ = await occupancy();
    for (const g of occ.gpus) expect(g.used).toBeLessThanOrEqual(g.slots);
    expect(occ.totals.used).toBe(16);

    // The second run ends and a third begins at once; only the ended run's slots are released.
    bridge.complete(startCmd);
    await waitFor(id, 'RUNNING');
    expect((await api('POST', `/api/v1/desktops/${id}/stop`, { token: tok })).status).toBe(202);
    bridge.complete(await next('stop'));
    await waitFor(id, 'STOPPED');
    await vi.waitFor(async () => expect(bookingsOf(await occupancy(), id)).toEqual([]));
    expect((await api('POST', `/api/v1/desktops/${id}/start`, { token: tok })).status).toBe(202);
    const thirdRun = (await stub(id).currentRun())?.runId ?? null;
    await hub.releaseGpu(id, secondRun);
    expect(bookingsOf(await occupancy(), id).map((b) => b.sessionId)).toEqual([`${id}/${thirdRun}`]);
    expect((await occupancy()).totals.used).toBe(16);
  }, 30_000);
});
