/**
 * Reassigning a disk to another VM on the Proxmox VE simulator (qemu-server's move_vm_disk with `target-vmid`): the
 * `qmmove` task, the volume renamed to the target's VMID with its drive options kept, and PVE's refusals (a running
 * source, a taken target key, a snapshot using the disk, a template, both or neither of storage and target-vmid).
 * Deleting a drive from a config detaches it as `unused<n>`, or removes the volume with `force`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TOKEN, type ProxmoxSimulator, startProxmoxSimulator } from '../../simulators/proxmox/server';
import { defaultTemplateConfig } from '../../simulators/proxmox/state';

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

async function task(
  sim: ProxmoxSimulator,
  method: string,
  path: string,
  form?: Record<string, string>,
): Promise<{ exit: string; upid: string }> {
  const r = await api(sim, method, path, form);
  expect(r.status, JSON.stringify(r)).toBe(200);
  const upid = String(r.data);
  for (;;) {
    const s = (await api(sim, 'GET', `/nodes/pve1/tasks/${encodeURIComponent(upid)}/status`)).data as Record<string, unknown>;
    if (s.status === 'stopped') return { exit: String(s.exitstatus), upid };
    await sleep(5);
  }
}

const vm = (vmid: number, rest = '') => `/nodes/pve1/qemu/${vmid}${rest}`;
const config = async (sim: ProxmoxSimulator, vmid: number) => (await api(sim, 'GET', vm(vmid, '/config'))).data as Record<string, string>;

/** A template with an OS disk and an empty data disk, as a site would prepare for desktops that keep user data. */
const TEMPLATE = { vmid: 9001, node: 'pve1', name: 'ubuntu-data-template' };
const templateConfig = { ...defaultTemplateConfig(TEMPLATE), scsi1: 'local-lvm:base-9001-disk-1,size=64G' };

async function clone(sim: ProxmoxSimulator, newid: number): Promise<void> {
  expect((await task(sim, 'POST', vm(9001, '/clone'), { newid: String(newid), name: `desk-${newid}` })).exit).toBe('OK');
}

describe('Proxmox simulator: move_disk to another VM', () => {
  let sim: ProxmoxSimulator;
  beforeAll(async () => {
    sim = await startProxmoxSimulator({ templates: [{ ...TEMPLATE, config: templateConfig }] });
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  it('reassigns a stopped VM’s data disk to another VM under a new volume name, keeping its options', async () => {
    await clone(sim, 200);
    await clone(sim, 201);
    await api(sim, 'PUT', vm(200, '/config'), { scsi1: `${(await config(sim, 200)).scsi1},serial=userdata` });
    // The target's own data disk must go first: PVE will not overwrite a drive key.
    const taken = await api(sim, 'POST', vm(200, '/move_disk'), { disk: 'scsi1', 'target-vmid': '201' });
    expect(taken.status).toBe(500);
    expect(taken.message).toBe("Target disk key 'scsi1' is already in use for VM '201'\n");
    expect((await api(sim, 'PUT', vm(201, '/config'), { delete: 'scsi1', force: '1' })).status).toBe(200);
    expect((await config(sim, 201)).unused0).toBeUndefined();

    const moved = await task(sim, 'POST', vm(200, '/move_disk'), { disk: 'scsi1', 'target-vmid': '201', 'target-disk': 'scsi1' });
    expect(moved.exit).toBe('OK');
    expect(moved.upid).toMatch(/:qmmove:200-scsi1>201-scsi1:root@pam!dev:$/);
    expect((await config(sim, 200)).scsi1).toBeUndefined();
    expect((await config(sim, 201)).scsi1).toBe('local-lvm:vm-201-disk-1,size=64G,serial=userdata');
    const log = (await api(sim, 'GET', `/nodes/pve1/tasks/${encodeURIComponent(moved.upid)}/log`)).data as { t: string }[];
    expect(log.map((l) => l.t)).toContain("reassign disk 'scsi1' from VM '200' as 'scsi1' to VM '201'");
  });

  it('refuses a running source, a disk a snapshot uses, a template, and a missing disk, with PVE’s texts', async () => {
    await clone(sim, 210);
    await clone(sim, 211);
    await api(sim, 'PUT', vm(211, '/config'), { delete: 'scsi1', force: '1' });
    expect((await task(sim, 'POST', vm(210, '/status/start'))).exit).toBe('OK');
    const running = await api(sim, 'POST', vm(210, '/move_disk'), { disk: 'scsi1', 'target-vmid': '211' });
    expect(running.message).toBe('Cannot move disk to another VM while the source VM is running - detach first\n');
    expect((await task(sim, 'POST', vm(210, '/status/stop'))).exit).toBe('OK');

    expect((await task(sim, 'POST', vm(210, '/snapshot'), { snapname: 'before' })).exit).toBe('OK');
    const snapshotted = await api(sim, 'POST', vm(210, '/move_disk'), { disk: 'scsi1', 'target-vmid': '211' });
    expect(snapshotted.message).toBe("Can't move disk used by a snapshot to another VM\n");
    expect((await task(sim, 'DELETE', vm(210, '/snapshot/before'))).exit).toBe('OK');

    const template = await api(sim, 'POST', vm(210, '/move_disk'), { disk: 'scsi1', 'target-vmid': '9001', 'target-disk': 'scsi5' });
    expect(template.message).toBe("Can't move disks from or to template VMs\n");
    const missing = await api(sim, 'POST', vm(210, '/move_disk'), { disk: 'scsi3', 'target-vmid': '211' });
    expect(missing.message).toBe("Disk 'scsi3' for VM '210' does not exist\n");
    const cdrom = await api(sim, 'POST', vm(210, '/move_disk'), { disk: 'ide2', 'target-vmid': '211', 'target-disk': 'ide3' });
    expect(cdrom.message).toBe("CD drive contents can't be moved to another VM\n");
    const nowhere = await api(sim, 'POST', vm(210, '/move_disk'), { disk: 'scsi1', 'target-vmid': '999' });
    expect(nowhere.message).toBe('could not find target VM 999\n');
  });

  it('answers parameter errors for the same VM, both targets or neither', async () => {
    await clone(sim, 220);
    const same = await api(sim, 'POST', vm(220, '/move_disk'), { disk: 'scsi1', 'target-vmid': '220' });
    expect(same.status).toBe(400);
    expect(same.errors).toEqual({ 'target-vmid': 'must be different than source VMID to reassign disk' });
    const both = await api(sim, 'POST', vm(220, '/move_disk'), { disk: 'scsi1', 'target-vmid': '221', storage: 'local' });
    expect(both.errors?.storage).toBe("either set 'storage' or 'target-vmid', but not both");
    const neither = await api(sim, 'POST', vm(220, '/move_disk'), { disk: 'scsi1' });
    expect(neither.errors?.['target-vmid']).toBe("both 'storage' and 'target-vmid' missing, either needs to be set");
  });

  it('detaches a deleted disk as unused<n>, and removes it when the unused entry is deleted', async () => {
    await clone(sim, 230);
    expect((await api(sim, 'PUT', vm(230, '/config'), { delete: 'scsi1' })).status).toBe(200);
    const detached = await config(sim, 230);
    expect(detached.scsi1).toBeUndefined();
    expect(detached.unused0).toBe('local-lvm:base-9001-disk-1/vm-230-disk-1');
    expect((await api(sim, 'PUT', vm(230, '/config'), { delete: 'unused0' })).status).toBe(200);
    expect((await config(sim, 230)).unused0).toBeUndefined();
  });
});
