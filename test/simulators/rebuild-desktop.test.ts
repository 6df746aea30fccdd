/**
 * The bridge's rebuild task against the Proxmox simulator, on a desktop made by its own create task from a template
 * with a data disk: the desktop comes back running on a new VM cloned from the template, the old VM's data disk (with
 * what the user put on it) moved onto the new VM in place of the template's empty one, the system disk fresh, the old
 * VM and its snapshots gone, the Guacamole connection kept and re-pointed. A rebuild interrupted half-way is resumed
 * from the ledger without a second clone, and a delete after an unfinished rebuild removes both VMs.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createProxmoxDriver } from '../../on-prem-bridge/src/drivers/proxmox';
import { createDesktop } from '../../on-prem-bridge/src/tasks/create-desktop';
import { deleteDesktop } from '../../on-prem-bridge/src/tasks/delete-desktop';
import { type RebuildDeps, dataDisksOf, rebuildDesktop } from '../../on-prem-bridge/src/tasks/rebuild-desktop';
import { snapshotDesktop } from '../../on-prem-bridge/src/tasks/snapshot-desktop';
import type { VmLedger } from '../../on-prem-bridge/src/vm-ledger';
import { DEFAULT_TOKEN, type ProxmoxSimulator, startProxmoxSimulator } from '../../simulators/proxmox/server';
import { defaultTemplateConfig } from '../../simulators/proxmox/state';
import { FakeGuacamole } from '../bridge/support/fake-guacamole';
import { desktopId, makeDeps, makeSpec, recordingContext, stepsOf } from '../bridge/support/harness';

const DATA_TEMPLATE = { vmid: 9001, node: 'pve1', name: 'ubuntu-data-template' };
const PLAIN_TEMPLATE = { vmid: 9000, node: 'pve1', name: 'ubuntu-desktop-template' };

describe('the template’s data disk', () => {
  it('is every disk but the one it boots from', () => {
    const config = { ...defaultTemplateConfig(DATA_TEMPLATE), scsi1: 'local-lvm:base-9001-disk-1,size=64G' };
    expect(dataDisksOf(config)).toEqual(['scsi1']);
    expect(dataDisksOf(defaultTemplateConfig(PLAIN_TEMPLATE))).toEqual([]);
    expect(dataDisksOf({ boot: 'order=virtio1;net0', virtio0: 'local-lvm:d0', virtio1: 'local-lvm:d1', ide2: 'none,media=cdrom' })).toEqual(
      ['virtio0'],
    );
    expect(dataDisksOf({ bootdisk: 'sata0', sata0: 'local-lvm:d0', sata1: 'local-lvm:d1', efidisk0: 'local-lvm:efi' })).toEqual(['sata1']);
  });
});

describe('bridge rebuild task', () => {
  let sim: ProxmoxSimulator;
  beforeAll(async () => {
    sim = await startProxmoxSimulator({
      templates: [
        PLAIN_TEMPLATE,
        { ...DATA_TEMPLATE, config: { ...defaultTemplateConfig(DATA_TEMPLATE), scsi1: 'local-lvm:base-9001-disk-1,size=64G' } },
      ],
      snapshotDelayMs: 20,
      delsnapshotDelayMs: 20,
    });
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  function freshDeps(templateVmid = 9001, ledger?: VmLedger): RebuildDeps {
    const proxmox = createProxmoxDriver({ url: sim.url, tokenId: DEFAULT_TOKEN.id, tokenSecret: DEFAULT_TOKEN.secret });
    return { ...makeDeps({ proxmox, guacamole: new FakeGuacamole(), ...(ledger ? { ledger } : {}) }, { templateVmid }), proxmox };
  }

  /** A desktop made by the create task, with a mark on its data disk and one on its system disk. */
  async function desktopWithChanges(deps: RebuildDeps) {
    const id = desktopId();
    const created = await createDesktop(deps)(makeSpec(id), recordingContext().ctx);
    const vmid = Number(created.vmId);
    const config = await deps.proxmox.getVmConfig('pve1', vmid);
    await deps.proxmox.configureVm('pve1', vmid, {
      scsi0: `${config.scsi0},serial=os-changed`,
      ...(config.scsi1 !== undefined ? { scsi1: `${config.scsi1},serial=user-data` } : {}),
    });
    return { id, vmid, created };
  }

  /** A rebuild cut off as it reports `at` (a bridge restart, a superseding delete): it rejects, leaving its ledger entry. */
  async function rebuildStoppedAt(deps: RebuildDeps, id: string, at: string, why: string) {
    const stop = new AbortController();
    const first = recordingContext(stop.signal);
    const progress = first.ctx.progress;
    first.ctx.progress = (step, message, facts) => {
      progress(step, message, facts);
      if (step === at) stop.abort(new Error(why));
    };
    await expect(rebuildDesktop(deps)(makeSpec(id), first.ctx)).rejects.toThrow();
  }

  it('rebuilds a running desktop on a new VM that keeps the old one’s data disk, and drops the system disk’s changes', async () => {
    const deps = freshDeps();
    const { id, vmid, created } = await desktopWithChanges(deps);
    await snapshotDesktop(deps)(makeSpec(id, { snapshot: { name: 'before', withRam: false } }), recordingContext().ctx);

    const { ctx, progress } = recordingContext();
    const rebuilt = await rebuildDesktop(deps)(makeSpec(id), ctx);

    const next = Number(rebuilt.vmId);
    expect(next).not.toBe(vmid);
    expect(stepsOf(progress)).toEqual([
      'allocate',
      'clone',
      'configure_vm',
      'shutdown',
      'data_disk',
      'destroy',
      'start_vm',
      'wait_ip',
      'connection',
    ]);
    expect(progress.filter((p) => p.step === 'data_disk').map((p) => p.message)).toEqual([
      `deleting the snapshot before of the old VM ${vmid}: the rebuild does not keep snapshots`,
      `removing the template's empty data disk scsi1 from VM ${next}`,
      `moving the data disk scsi1 of VM ${vmid} onto VM ${next}`,
    ]);
    // Until the old VM is gone, no frame names the new VMID; from the start on, every one does.
    expect(progress.filter((p) => p.facts?.vmId !== undefined).map((p) => p.step)[0]).toBe('start_vm');
    expect(rebuilt).toMatchObject({ vmId: next, node: 'pve1', ipAddress: sim.vm(next)?.ipv4, connectionId: created.connectionId });

    const config = await deps.proxmox.getVmConfig('pve1', next);
    expect(config.name).toBe(`desk-${id}`);
    expect(config.scsi1).toBe(`local-lvm:vm-${next}-disk-1,size=64G,serial=user-data`);
    expect(String(config.scsi0)).toBe(`local-lvm:base-9001-disk-0/vm-${next}-disk-0,size=32G`);
    expect(config.unused0).toBeUndefined();
    expect((await deps.proxmox.getVmStatus('pve1', next)).status).toBe('running');
    expect(sim.vm(vmid)).toBeUndefined();
    expect(await deps.ledger.get(id)).toMatchObject({ vmid: next, node: 'pve1' });
    expect((await deps.ledger.get(id))?.rebuild).toBeUndefined();
    expect(sim.stats().tasks.byType.qmmove).toBe(1);
  });

  it('rebuilds from a template without a data disk: a fresh VM, nothing kept, said so', async () => {
    const deps = freshDeps(9000);
    const { id, vmid } = await desktopWithChanges(deps);
    const { ctx, progress } = recordingContext();
    const rebuilt = await rebuildDesktop(deps)(makeSpec(id), ctx);
    expect(progress.find((p) => p.step === 'data_disk')?.message).toBe(`template 9000 has no data disk: nothing of VM ${vmid} is kept`);
    expect(String((await deps.proxmox.getVmConfig('pve1', Number(rebuilt.vmId))).scsi0)).not.toContain('os-changed');
    expect(sim.vm(vmid)).toBeUndefined();
    expect(sim.stats().tasks.byType.qmmove).toBeUndefined();
  });

  it('resumes a rebuild interrupted before the disk moved, from the ledger, without a second clone', async () => {
    const deps = freshDeps();
    const { id, vmid } = await desktopWithChanges(deps);
    await rebuildStoppedAt(deps, id, 'data_disk', 'bridge restarted');
    const entry = await deps.ledger.get(id);
    expect(entry).toMatchObject({ vmid, rebuild: { vmid: expect.any(Number) } });

    // A new bridge process: same ledger on disk, new drivers.
    const again = freshDeps(9001, deps.ledger);
    const { ctx, progress: resumed } = recordingContext();
    const rebuilt = await rebuildDesktop(again)(makeSpec(id), ctx);
    expect(resumed[0]?.message).toBe(`resuming the rebuild into VM ${entry?.rebuild?.vmid} from an earlier run`);
    expect(rebuilt.vmId).toBe(entry?.rebuild?.vmid);
    expect(sim.stats().tasks.byType.qmclone).toBe(2);
    expect(String((await again.proxmox.getVmConfig('pve1', Number(rebuilt.vmId))).scsi1)).toContain('serial=user-data');
    expect(sim.vm(vmid)).toBeUndefined();
  });

  it('a delete after an unfinished rebuild removes both VMs', async () => {
    const deps = freshDeps();
    const { id, vmid } = await desktopWithChanges(deps);
    await rebuildStoppedAt(deps, id, 'configure_vm', 'superseded by delete');
    const next = (await deps.ledger.get(id))?.rebuild?.vmid as number;
    expect(sim.vm(next)).toBeDefined();

    await deleteDesktop(deps)(makeSpec(id), recordingContext().ctx);
    expect(sim.vm(vmid)).toBeUndefined();
    expect(sim.vm(next)).toBeUndefined();
    expect(await deps.ledger.get(id)).toBeNull();
  });
});
