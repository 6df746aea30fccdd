/**
 * The bridge's snapshot tasks on a desktop made by its own create task, against the Proxmox simulator: a restore
 * rolls the VM back and brings the desktop online again (running, with an address and its connection), whatever power
 * state it was left in.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createProxmoxDriver } from '../../on-prem-bridge/src/drivers/proxmox';
import { createDesktop } from '../../on-prem-bridge/src/tasks/create-desktop';
import { deleteSnapshotOfDesktop, restoreDesktop, snapshotDesktop } from '../../on-prem-bridge/src/tasks/snapshot-desktop';
import type { SnapshotDeps } from '../../on-prem-bridge/src/tasks/snapshot-steps';
import { DEFAULT_TOKEN, type ProxmoxSimulator, startProxmoxSimulator } from '../../simulators/proxmox/server';
import { FakeGuacamole } from '../bridge/support/fake-guacamole';
import { desktopId, makeDeps, makeSpec, recordingContext, stepsOf } from '../bridge/support/harness';

describe('bridge snapshot tasks', () => {
  let sim: ProxmoxSimulator;
  let deps: SnapshotDeps;
  beforeAll(async () => {
    sim = await startProxmoxSimulator({ snapshotDelayMs: 30, rollbackDelayMs: 30 });
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  function freshDeps(): SnapshotDeps {
    const proxmox = createProxmoxDriver({ url: sim.url, tokenId: DEFAULT_TOKEN.id, tokenSecret: DEFAULT_TOKEN.secret });
    return { ...makeDeps({ proxmox, guacamole: new FakeGuacamole() }, { templateVmid: 9000 }), proxmox };
  }

  it('snapshots a desktop without RAM, restores it to RUNNING with a connection, then deletes the snapshot', async () => {
    deps = freshDeps();
    const id = desktopId();
    const created = await createDesktop(deps)(makeSpec(id), recordingContext().ctx);
    expect(created.vmId).toBeDefined();
    const vmid = Number(created.vmId);
    const spec = makeSpec(id, { snapshot: { name: 'before-upgrade', withRam: false } });

    await snapshotDesktop(deps)(spec, recordingContext().ctx);
    expect((await deps.proxmox.listSnapshots('pve1', vmid)).map((s) => s.name)).toEqual(['before-upgrade']);

    await deps.proxmox.configureVm('pve1', vmid, { memory: 2048 });
    const { ctx, progress } = recordingContext();
    const restored = await restoreDesktop(deps)(spec, ctx);
    // The rollback left a disk-only snapshot's VM off: the task started it again and waited for its address.
    expect(stepsOf(progress)).toEqual(['shutdown', 'start_vm', 'wait_ip', 'connection']);
    expect(restored).toMatchObject({ vmId: vmid, node: 'pve1', ipAddress: sim.vm(vmid)?.ipv4, connectionId: created.connectionId });
    expect((await deps.proxmox.getVmStatus('pve1', vmid)).status).toBe('running');
    expect((await deps.proxmox.getVmConfig('pve1', vmid)).memory).toBe('4096');

    await deleteSnapshotOfDesktop(deps)(spec, recordingContext().ctx);
    expect(await deps.proxmox.listSnapshots('pve1', vmid)).toEqual([]);
  });

  it('restores a snapshot with RAM: the guest resumes running, no start needed', async () => {
    deps = freshDeps();
    const id = desktopId();
    const created = await createDesktop(deps)(makeSpec(id), recordingContext().ctx);
    const spec = makeSpec(id, { snapshot: { name: 'with-ram', withRam: true } });
    await snapshotDesktop(deps)(spec, recordingContext().ctx);
    const { ctx, progress } = recordingContext();
    await restoreDesktop(deps)(spec, ctx);
    expect(progress.find((p) => p.step === 'start_vm')?.message).toBe(`VM ${created.vmId} is already running`);
    expect(sim.stats().tasks.byType.qmstart).toBe(1);
  });

  it("forks a desktop: a new desktop running as a linked clone of the other's snapshot", async () => {
    deps = freshDeps();
    const source = desktopId();
    const made = await createDesktop(deps)(makeSpec(source), recordingContext().ctx);
    await snapshotDesktop(deps)(makeSpec(source, { snapshot: { name: 'golden', withRam: false } }), recordingContext().ctx);
    const fork = desktopId();
    const forked = await createDesktop(deps)(
      makeSpec(fork, { userId: 'teammate', forkOf: { desktopId: source, snapshot: 'golden' } }),
      recordingContext().ctx,
    );
    expect(forked.vmId).not.toBe(made.vmId);
    expect(forked.ipAddress).toBe(sim.vm(Number(forked.vmId))?.ipv4);
    expect(String((await deps.proxmox.getVmConfig('pve1', Number(forked.vmId))).scsi0)).toMatch(
      new RegExp(`^local-lvm:vm-${forked.vmId}-disk-0,`),
    );
    expect((await deps.proxmox.getVmStatus('pve1', Number(forked.vmId))).status).toBe('running');
  });
});
