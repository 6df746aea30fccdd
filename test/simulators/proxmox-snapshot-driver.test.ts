/**
 * The bridge's Proxmox driver's snapshot calls against the simulator: take (with RAM), list, roll back, fork as a
 * linked clone of a snapshot, delete, and the refusal on plain LVM reaching the bridge as a non-retryable task failure.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createProxmoxDriver } from '../../on-prem-bridge/src/drivers/proxmox';
import { InfraError } from '../../on-prem-bridge/src/drivers/types';
import { DEFAULT_TOKEN, type ProxmoxSimulator, startProxmoxSimulator } from '../../simulators/proxmox/server';

describe('Proxmox driver snapshots', () => {
  let sim: ProxmoxSimulator;
  let pve: ReturnType<typeof createProxmoxDriver>;
  beforeAll(async () => {
    sim = await startProxmoxSimulator();
    pve = createProxmoxDriver({ url: sim.url, tokenId: DEFAULT_TOKEN.id, tokenSecret: DEFAULT_TOKEN.secret });
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  async function runningDesktop(vmid: number, extra: { full?: boolean; storage?: string } = {}): Promise<void> {
    await pve.waitForTask(
      await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: vmid, name: `desk-${vmid}`, full: extra.full ?? false }),
    );
    await pve.waitForTask(await pve.startVm('pve1', vmid));
  }

  it('snapshots with RAM, lists, rolls back to a running guest, forks and deletes', async () => {
    await runningDesktop(41001);
    await pve.waitForTask(await pve.snapshotVm('pve1', 41001, { name: 'cd-before-upgrade', withRam: true, description: 'before' }));
    await pve.waitForTask(await pve.snapshotVm('pve1', 41001, { name: 'cd-disk-only', withRam: false }));
    expect(await pve.listSnapshots('pve1', 41001)).toEqual([
      { name: 'cd-before-upgrade', snaptime: expect.any(Number), description: 'before', withRam: true },
      { name: 'cd-disk-only', snaptime: expect.any(Number), description: '', parent: 'cd-before-upgrade', withRam: false },
    ]);

    await pve.waitForTask(await pve.rollbackVm('pve1', 41001, 'cd-before-upgrade'));
    expect(await pve.getVmStatus('pve1', 41001)).toEqual({ status: 'running' });

    await pve.waitForTask(
      await pve.cloneVm({ node: 'pve1', templateVmid: 41001, newid: 41002, name: 'fork', full: false, snapname: 'cd-disk-only' }),
    );
    expect((await pve.getVmConfig('pve1', 41002)).scsi0).toMatch(/^local-lvm:vm-41002-disk-0,/);

    await pve.waitForTask(await pve.deleteSnapshot('pve1', 41001, 'cd-before-upgrade'));
    expect((await pve.listSnapshots('pve1', 41001)).map((s) => [s.name, s.parent])).toEqual([['cd-disk-only', undefined]]);
  });

  it('reports plain LVM refusing snapshots as a task failure that retrying cannot help', async () => {
    await pve.waitForTask(await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: 41003, name: 'thick', full: true }));
    // Its disk moved to the SAN's plain LVM volume group (as `qm disk move` would leave it).
    await pve.configureVm('pve1', 41003, { scsi0: 'san-lvm:vm-41003-disk-0,size=32G' });
    const error = await pve.waitForTask(await pve.snapshotVm('pve1', 41003, { name: 'nope', withRam: false })).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InfraError);
    expect((error as InfraError).message).toBe('Proxmox task qmsnapshot 41003 failed: snapshot feature is not available');
    expect((error as InfraError).retryable).toBe(false);
  });
});
