/**
 * Snapshots on the Proxmox VE simulator as a client sees them: qemu-server's endpoints, its task types and lock
 * values, the name rule (pve-configid, at most 40), RAM state, rollback, delete, a linked clone of a snapshot, and
 * plain LVM refusing with PVE's own text.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TOKEN, type ProxmoxSimulator, startProxmoxSimulator } from '../../simulators/proxmox/server';

const AUTH = `PVEAPIToken=${DEFAULT_TOKEN.id}=${DEFAULT_TOKEN.secret}`;
type Envelope = { status: number; data: unknown; errors?: Record<string, string>; message?: string };

async function api(sim: ProxmoxSimulator, method: string, path: string, form?: Record<string, string>): Promise<Envelope> {
  const res = await fetch(`${sim.url}${path}`, {
    method,
    headers: { Authorization: AUTH, ...(form ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}) },
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
  const body = (await res.json()) as Omit<Envelope, 'status'>;
  return { status: res.status, ...body };
}

/** Calls an endpoint that forks a worker and waits for its end: the task's exit status. */
async function task(sim: ProxmoxSimulator, method: string, path: string, form?: Record<string, string>): Promise<string> {
  const r = await api(sim, method, path, form);
  expect(r.status, JSON.stringify(r)).toBe(200);
  const upid = String(r.data);
  for (;;) {
    const s = (await api(sim, 'GET', `/nodes/pve1/tasks/${encodeURIComponent(upid)}/status`)).data as Record<string, unknown>;
    if (s.status === 'stopped') return String(s.exitstatus);
    await sleep(5);
  }
}

const vm = (vmid: number, rest = '') => `/nodes/pve1/qemu/${vmid}${rest}`;

async function runningClone(sim: ProxmoxSimulator, newid: number, extra: Record<string, string> = {}): Promise<void> {
  expect(await task(sim, 'POST', vm(9000, '/clone'), { newid: String(newid), name: `desk-${newid}`, ...extra })).toBe('OK');
  expect(await task(sim, 'POST', vm(newid, '/status/start'))).toBe('OK');
}

describe('Proxmox simulator snapshots', () => {
  let sim: ProxmoxSimulator;
  beforeAll(async () => {
    sim = await startProxmoxSimulator();
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  it('takes a snapshot with RAM, rolls back to it (running again, old config) and deletes it', async () => {
    await runningClone(sim, 130);
    expect(await task(sim, 'POST', vm(130, '/snapshot'), { snapname: 'before-update', vmstate: '1', description: 'pre' })).toBe('OK');
    const list = (await api(sim, 'GET', vm(130, '/snapshot'))).data as Record<string, unknown>[];
    expect(list).toEqual([
      { name: 'before-update', snaptime: expect.any(Number), description: 'pre', vmstate: 1 },
      { name: 'current', digest: expect.any(String), running: 1, description: 'You are here!', parent: 'before-update' },
    ]);
    const snapConfig = (await api(sim, 'GET', vm(130, '/snapshot/before-update/config'))).data as Record<string, unknown>;
    expect(String(snapConfig.vmstate)).toMatch(/^local-lvm:vm-130-state-before-update,size=\d+G$/);

    await api(sim, 'PUT', vm(130, '/config'), { memory: '8192' });
    expect(await task(sim, 'POST', vm(130, '/snapshot/before-update/rollback'))).toBe('OK');
    const status = (await api(sim, 'GET', vm(130, '/status/current'))).data as Record<string, unknown>;
    expect(status.status).toBe('running');
    const config = (await api(sim, 'GET', vm(130, '/config'))).data as Record<string, unknown>;
    expect(config).toMatchObject({ memory: '4096', parent: 'before-update' });
    expect(config.lock).toBeUndefined();

    expect(await task(sim, 'DELETE', vm(130, '/snapshot/before-update'))).toBe('OK');
    const after = (await api(sim, 'GET', vm(130, '/snapshot'))).data as Record<string, unknown>[];
    expect(after).toEqual([{ name: 'current', digest: expect.any(String), running: 1, description: 'You are here!' }]);
    expect(await task(sim, 'DELETE', vm(130, '/snapshot/before-update'))).toBe("snapshot 'before-update' does not exist");
  });

  it('leaves a VM stopped after rolling back to a disk-only snapshot, unless start=1', async () => {
    await runningClone(sim, 131);
    expect(await task(sim, 'POST', vm(131, '/snapshot'), { snapname: 'disk-only' })).toBe('OK');
    expect(await task(sim, 'POST', vm(131, '/snapshot/disk-only/rollback'))).toBe('OK');
    expect(((await api(sim, 'GET', vm(131, '/status/current'))).data as { status: string }).status).toBe('stopped');
    expect(await task(sim, 'POST', vm(131, '/snapshot/disk-only/rollback'), { start: '1' })).toBe('OK');
    expect(((await api(sim, 'GET', vm(131, '/status/current'))).data as { status: string }).status).toBe('running');
  });

  it('applies the name rule: a letter first, [A-Za-z0-9_-], at most 40; current and pending reserved; no duplicates', async () => {
    await runningClone(sim, 132);
    const bad = await api(sim, 'POST', vm(132, '/snapshot'), { snapname: '1st' });
    expect(bad.status).toBe(400);
    expect(bad.errors?.snapname).toContain("invalid configuration ID '1st'");
    const long = await api(sim, 'POST', vm(132, '/snapshot'), { snapname: `a${'b'.repeat(40)}` });
    expect(long.status).toBe(400);
    expect(long.errors?.snapname).toBe('value may only be 40 characters long');
    const reserved = await api(sim, 'POST', vm(132, '/snapshot'), { snapname: 'current' });
    expect(reserved.status).toBe(500);
    expect(reserved.message).toContain("unable to use snapshot name 'current' (reserved name)");
    expect(await task(sim, 'POST', vm(132, '/snapshot'), { snapname: `a${'b'.repeat(39)}` })).toBe('OK');
    expect(await task(sim, 'POST', vm(132, '/snapshot'), { snapname: `a${'b'.repeat(39)}` })).toBe(
      `snapshot name 'a${'b'.repeat(39)}' already used`,
    );
  });

  it('makes a linked clone of a snapshot (a fork) with the snapshot config, not the current one', async () => {
    await runningClone(sim, 133);
    expect(await task(sim, 'POST', vm(133, '/snapshot'), { snapname: 'golden' })).toBe('OK');
    await api(sim, 'PUT', vm(133, '/config'), { memory: '8192' });
    const linkedWithout = await api(sim, 'POST', vm(133, '/clone'), { newid: '140', full: '0' });
    expect(linkedWithout.message).toContain("Linked clone feature is not supported for 'local-lvm:base-9000-disk-0/vm-133-disk-0' (scsi0)");
    expect(await task(sim, 'POST', vm(133, '/clone'), { newid: '140', full: '0', snapname: 'golden', name: 'fork' })).toBe('OK');
    const fork = (await api(sim, 'GET', vm(140, '/config'))).data as Record<string, unknown>;
    expect(fork).toMatchObject({ name: 'fork', memory: '4096', scsi0: expect.stringMatching(/^local-lvm:vm-140-disk-0,/) });
    expect(fork.parent).toBeUndefined();
    expect(fork.snaptime).toBeUndefined();
    const missing = await api(sim, 'POST', vm(133, '/clone'), { newid: '141', full: '0', snapname: 'nope' });
    expect(missing.message).toContain("snapshot 'nope' does not exist");
  });

  it('refuses snapshots on plain LVM with PVE text and leaves the VM unlocked', async () => {
    await runningClone(sim, 134, { full: '1', storage: 'san-lvm' });
    expect(await task(sim, 'POST', vm(134, '/snapshot'), { snapname: 'nope', vmstate: '1' })).toBe('snapshot feature is not available');
    const config = (await api(sim, 'GET', vm(134, '/config'))).data as Record<string, unknown>;
    expect(config.scsi0).toMatch(/^san-lvm:vm-134-disk-0/);
    expect(config.lock).toBeUndefined();
    const storage = (await api(sim, 'GET', '/storage/san-lvm')).data as Record<string, unknown>;
    expect(storage).toMatchObject({ type: 'lvm', shared: 1 });
  });
});

describe('Proxmox simulator snapshots in flight', () => {
  let sim: ProxmoxSimulator;
  beforeAll(async () => {
    sim = await startProxmoxSimulator({ snapshotDelayMs: 150, vmstateDelayMsPerGiB: 50 });
  });
  afterAll(() => sim.stop());

  it('holds lock: snapshot while the task runs; a config change meanwhile is refused', async () => {
    await runningClone(sim, 150);
    const r = await api(sim, 'POST', vm(150, '/snapshot'), { snapname: 'busy', vmstate: '1' });
    const config = (await api(sim, 'GET', vm(150, '/config'))).data as Record<string, unknown>;
    expect(config.lock).toBe('snapshot');
    const put = await api(sim, 'PUT', vm(150, '/config'), { memory: '2048' });
    expect(put.message).toContain('VM is locked (snapshot)');
    expect(String(r.data)).toMatch(/:qmsnapshot:150:/);
    for (;;) {
      const s = (await api(sim, 'GET', `/nodes/pve1/tasks/${encodeURIComponent(String(r.data))}/status`)).data as Record<string, unknown>;
      if (s.status === 'stopped') break;
      await sleep(10);
    }
    expect(((await api(sim, 'GET', vm(150, '/config'))).data as Record<string, unknown>).lock).toBeUndefined();
  });
});
