/**
 * The bridge's snapshot steps against the Proxmox simulator with real task delays: a snapshot taken twice is taken
 * once, a rollback to a RAM snapshot leaves the guest running, and plain LVM's refusal reads as something a user can act on.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createProxmoxDriver } from '../../on-prem-bridge/src/drivers/proxmox';
import { TaskError } from '../../on-prem-bridge/src/errors';
import { removeSnapshot, rollbackTo, type SnapshotDeps, takeSnapshot } from '../../on-prem-bridge/src/tasks/snapshot-steps';
import { toolsFor } from '../../on-prem-bridge/src/tasks/tools';
import { DEFAULT_TOKEN, type ProxmoxSimulator, startProxmoxSimulator } from '../../simulators/proxmox/server';
import { FakeGuacamole } from '../bridge/support/fake-guacamole';
import { makeDeps, memoryLogger } from '../bridge/support/harness';

describe('bridge snapshot steps', () => {
  let sim: ProxmoxSimulator;
  let deps: SnapshotDeps;
  beforeAll(async () => {
    sim = await startProxmoxSimulator({ snapshotDelayMs: 40, rollbackDelayMs: 40, delsnapshotDelayMs: 20, vmstateDelayMsPerGiB: 10 });
    const proxmox = createProxmoxDriver({ url: sim.url, tokenId: DEFAULT_TOKEN.id, tokenSecret: DEFAULT_TOKEN.secret });
    deps = { ...makeDeps({ proxmox, guacamole: new FakeGuacamole() }), proxmox };
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  const tools = () => toolsFor(deps, new AbortController().signal, memoryLogger());
  const vm = { node: 'pve1', vmid: 42001 };

  async function runningDesktop(): Promise<void> {
    await deps.proxmox.waitForTask(
      await deps.proxmox.cloneVm({ node: 'pve1', templateVmid: 9000, newid: vm.vmid, name: 'desk', full: false }),
    );
    await deps.proxmox.waitForTask(await deps.proxmox.startVm('pve1', vm.vmid));
  }

  it('takes a snapshot once however often it is asked, rolls back to a running guest and removes it', async () => {
    await runningDesktop();
    const first = await takeSnapshot(deps, tools(), vm, { name: 'cd-1', withRam: true });
    const again = await takeSnapshot(deps, tools(), vm, { name: 'cd-1', withRam: true });
    expect(again).toEqual(first);
    expect(first.withRam).toBe(true);
    expect(sim.stats().tasks.byType.qmsnapshot).toBe(1);

    await deps.proxmox.waitForTask(await deps.proxmox.stopVm('pve1', vm.vmid));
    await rollbackTo(deps, tools(), vm, 'cd-1');
    expect((await deps.proxmox.getVmStatus('pve1', vm.vmid)).status).toBe('running');

    await removeSnapshot(deps, tools(), vm, 'cd-1');
    await removeSnapshot(deps, tools(), vm, 'cd-1');
    expect(await deps.proxmox.listSnapshots('pve1', vm.vmid)).toEqual([]);
    expect(sim.stats().tasks.byType.qmdelsnapshot).toBe(1);
    await expect(rollbackTo(deps, tools(), vm, 'cd-1')).rejects.toThrow('The desktop has no snapshot named cd-1');
  });

  it('says why plain LVM cannot take a snapshot', async () => {
    await runningDesktop();
    await deps.proxmox.configureVm('pve1', vm.vmid, { scsi0: `san-lvm:vm-${vm.vmid}-disk-0,size=32G` });
    const error = await takeSnapshot(deps, tools(), vm, { name: 'cd-2', withRam: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskError);
    expect((error as Error).message).toMatch(/^The desktop's disks are on storage that cannot take snapshots \(plain LVM/);
  });
});
