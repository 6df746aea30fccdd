/**
 * Snapshots end to end with the real processes (the edge under wrangler dev, the bridge, the Proxmox and Guacamole
 * simulators, Postgres): a desktop is snapshotted, changed, restored (the change is gone and it is RUNNING again),
 * forked into a second RUNNING desktop, and its snapshot deleted; on plain LVM the snapshot is refused with the
 * bridge's reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from '../../scripts/lib/stack';
import type { DesktopSnapshot } from '../../src/schemas/bridge-protocol';
import type { Desktop, TransitionRecord } from '../../src/schemas/desktop';
import { edgeClient, until } from './support/edge-client';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
}, 180_000);
afterAll(async () => {
  await stack?.stop();
});

const PVE_AUTH = { authorization: 'PVEAPIToken=root@pam!dev=11111111-2222-3333-4444-555555555555' };
const call = edgeClient(() => stack.edgeUrl);

async function pveConfig(node: string, vmid: number): Promise<Record<string, string | number>> {
  const res = await fetch(`${stack.proxmoxUrl}/nodes/${node}/qemu/${vmid}/config`, { headers: PVE_AUTH });
  return ((await res.json()) as { data: Record<string, string | number> }).data;
}

/** A change made on the VM behind the control plane's back (PUT config applies at once). */
async function pveSet(node: string, vmid: number, values: Record<string, string>): Promise<void> {
  const res = await fetch(`${stack.proxmoxUrl}/nodes/${node}/qemu/${vmid}/config`, {
    method: 'PUT',
    headers: { ...PVE_AUTH, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(values).toString(),
  });
  expect(res.status, await res.text()).toBe(200);
}

async function statusOf(tok: string, id: string, want: Desktop['status']): Promise<Desktop> {
  return until(`desktop ${id} ${want}`, async () => {
    const d = (await call<Desktop>('GET', `/api/v1/desktops/${id}`, tok)).body.data;
    if (d.status === 'FAILED' && want !== 'FAILED') throw new Error(`desktop FAILED: ${d.errorMessage}`);
    return d.status === want ? d : undefined;
  });
}

const snapshotsOf = async (tok: string, id: string) =>
  (await call<{ snapshots: DesktopSnapshot[]; unsupported: string | null }>('GET', `/api/v1/desktops/${id}/snapshots`, tok)).body.data;

describe('snapshots, end to end', () => {
  it('snapshots a desktop, restores it (the change is gone, RUNNING again), forks it, deletes the snapshot; refuses plain LVM', async () => {
    const user = 'e2e-snapshots';
    const tok = await stack.token(user);
    const admin = await stack.token('e2e-snapshots-admin', ['admin']);
    expect((await call('PUT', `/api/v1/admin/users/${user}/quota`, admin, { maxDesktops: 2 })).status).toBe(200);

    const created = await call<Desktop>('POST', '/api/v1/desktops', tok, { name: 'Snapshot me', plan: 'BASIC' });
    expect(created.status).toBe(202);
    const id = created.body.data.id;
    const running = await statusOf(tok, id, 'RUNNING');
    const vm = { node: running.node as string, vmid: running.vmId as number };
    expect(await snapshotsOf(tok, id)).toEqual({ snapshots: [], unsupported: null });

    // Take it: the desktop stays RUNNING while Proxmox does.
    const taken = await call<{ snapshot: { name: string }; desktop: Desktop }>('POST', `/api/v1/desktops/${id}/snapshots`, tok, {
      name: 'clean',
      description: 'before the change',
    });
    expect(taken.status).toBe(202);
    expect(taken.body.data.desktop.status).toBe('RUNNING');
    const listed = await until('the snapshot listed', async () => {
      const list = await snapshotsOf(tok, id);
      return list.snapshots.length > 0 ? list : undefined;
    });
    expect(listed.snapshots).toEqual([
      { name: 'clean', description: 'before the change', takenAt: expect.any(String), withRam: false, parent: null },
    ]);
    await until('the snapshot command to end', async () => {
      const d = (await call<Desktop>('GET', `/api/v1/desktops/${id}`, tok)).body.data;
      return d.statusMessage === 'Snapshot clean taken' ? d : undefined;
    });

    // Change the VM after the snapshot.
    await pveSet(vm.node, vm.vmid, { memory: '3072', description: 'changed after the snapshot' });
    expect(await pveConfig(vm.node, vm.vmid)).toMatchObject({ memory: '3072', description: 'changed after the snapshot' });

    // Restore: STARTING, through the statuses of a start, RUNNING; the change is gone.
    const restore = await call<Desktop>('POST', `/api/v1/desktops/${id}/snapshots/clean/restore`, tok);
    expect(restore.status).toBe(202);
    expect(restore.body.data.status).toBe('STARTING');
    const restored = await statusOf(tok, id, 'RUNNING');
    expect(restored.ipAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const config = await pveConfig(vm.node, vm.vmid);
    expect(config.memory).toBe('2048');
    expect(config.description).not.toBe('changed after the snapshot');
    const events = (await call<TransitionRecord[]>('GET', `/api/v1/desktops/${id}/events`, tok)).body.data;
    const restoreAt = events.findIndex((e) => e.event === 'restore');
    expect(events.slice(restoreAt).map((e) => `${e.from}→${e.to}`)).toEqual([
      'RUNNING→STARTING',
      'STARTING→WAITING_FOR_IP',
      'WAITING_FOR_IP→CONFIGURING',
      'CONFIGURING→RUNNING',
    ]);
    // It can still be reached.
    expect((await call('GET', `/api/v1/desktops/${id}/connect`, tok)).status).toBe(200);

    // Fork: a second desktop, a linked clone of the snapshot, RUNNING with a VM of its own.
    const forked = await call<Desktop>('POST', '/api/v1/desktops', tok, { forkOf: { desktopId: id, snapshot: 'clean' } });
    expect(forked.status).toBe(202);
    const fork = await statusOf(tok, forked.body.data.id, 'RUNNING');
    expect(fork.name).toBe('Snapshot me (fork)');
    expect(fork.vmId).not.toBe(vm.vmid);
    expect(await pveConfig(fork.node as string, fork.vmId as number)).toMatchObject({ name: `desk-${fork.id}` });
    expect((await call('GET', `/api/v1/desktops/${fork.id}/connect`, tok)).status).toBe(200);

    // Delete the snapshot.
    expect((await call('DELETE', `/api/v1/desktops/${id}/snapshots/clean`, tok)).status).toBe(202);
    await until('the snapshot gone', async () => ((await snapshotsOf(tok, id)).snapshots.length === 0 ? true : undefined));

    // Plain LVM: the disk moved to san-lvm (type lvm) cannot take snapshots, and the API says so at once.
    await until('the delete command to end', async () => {
      const d = (await call<Desktop>('GET', `/api/v1/desktops/${id}`, tok)).body.data;
      return d.statusMessage === 'Snapshot clean deleted' ? d : undefined;
    });
    await pveSet(vm.node, vm.vmid, { scsi0: `san-lvm:vm-${vm.vmid}-disk-0,size=32G` });
    expect((await snapshotsOf(tok, id)).unsupported).toMatch(/^The desktop's disks are on storage that cannot take snapshots/);
    const refused = await fetch(`${stack.edgeUrl}/api/v1/desktops/${id}/snapshots`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'on-lvm' }),
    });
    const envelope = (await refused.json()) as { success: boolean; message: string; error: { code: string } };
    expect(refused.status).toBe(409);
    expect(envelope.error.code).toBe('SNAPSHOTS_UNSUPPORTED');
    expect(envelope.message).toBe(
      `The desktop's disks are on storage that cannot take snapshots (plain LVM or raw files): san-lvm:vm-${vm.vmid}-disk-0 (lvm). Move them to LVM-thin, ZFS or Ceph to use snapshots.`,
    );

    for (const d of [id, fork.id]) expect((await call('DELETE', `/api/v1/desktops/${d}`, tok)).status).toBe(202);
    for (const d of [id, fork.id]) await statusOf(tok, d, 'DELETED');
  }, 240_000);
});
