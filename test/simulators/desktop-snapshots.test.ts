/**
 * The bridge's desktop_snapshots answer against the Proxmox simulator: a desktop's snapshots as the API shows them
 * (time, RAM or not, parent), and whether its disks' storage can take snapshots at all, so the edge can refuse a
 * snapshot on plain LVM at once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createProxmoxDriver } from '../../on-prem-bridge/src/drivers/proxmox';
import { createDesktop } from '../../on-prem-bridge/src/tasks/create-desktop';
import { desktopSnapshots, diskVolumes, volumeCanSnapshot } from '../../on-prem-bridge/src/tasks/desktop-snapshots';
import { snapshotDesktop } from '../../on-prem-bridge/src/tasks/snapshot-desktop';
import type { SnapshotDeps } from '../../on-prem-bridge/src/tasks/snapshot-steps';
import { DEFAULT_TOKEN, type ProxmoxSimulator, startProxmoxSimulator } from '../../simulators/proxmox/server';
import { FakeGuacamole } from '../bridge/support/fake-guacamole';
import { desktopId, makeDeps, makeSpec, memoryLogger, recordingContext } from '../bridge/support/harness';

describe('desktop_snapshots', () => {
  let sim: ProxmoxSimulator;
  let deps: SnapshotDeps;
  beforeAll(async () => {
    sim = await startProxmoxSimulator({ snapshotDelayMs: 20, rollbackDelayMs: 20 });
    const proxmox = createProxmoxDriver({ url: sim.url, tokenId: DEFAULT_TOKEN.id, tokenSecret: DEFAULT_TOKEN.secret });
    deps = { ...makeDeps({ proxmox, guacamole: new FakeGuacamole() }, { templateVmid: 9000 }), proxmox };
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  const list = (id: string) => desktopSnapshots(deps, id, new AbortController().signal, memoryLogger());

  it('lists a desktop’s snapshots oldest first, with time, RAM and parent, on storage that takes them', async () => {
    const id = desktopId();
    await createDesktop(deps)(makeSpec(id), recordingContext().ctx);
    expect(await list(id)).toEqual({ ok: true, snapshots: { snapshots: [], unsupported: null } });

    const before = Date.now();
    await snapshotDesktop(deps)(
      makeSpec(id, { snapshot: { name: 'first', withRam: false, description: 'clean' } }),
      recordingContext().ctx,
    );
    await snapshotDesktop(deps)(makeSpec(id, { snapshot: { name: 'second', withRam: true } }), recordingContext().ctx);
    const answer = await list(id);
    if (!answer.ok) throw new Error(answer.error);
    expect(answer.snapshots.unsupported).toBeNull();
    expect(answer.snapshots.snapshots).toMatchObject([
      { name: 'first', description: 'clean', withRam: false, parent: null },
      { name: 'second', withRam: true, parent: 'first' },
    ]);
    // Proxmox keeps whole seconds.
    expect(Date.parse(answer.snapshots.snapshots[0]?.takenAt ?? '')).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
  });

  it('says why a desktop on plain LVM cannot take snapshots', async () => {
    const id = desktopId();
    const created = await createDesktop(deps)(makeSpec(id), recordingContext().ctx);
    await deps.proxmox.configureVm('pve1', Number(created.vmId), { scsi0: `san-lvm:vm-${created.vmId}-disk-0,size=32G` });
    const answer = await list(id);
    if (!answer.ok) throw new Error(answer.error);
    expect(answer.snapshots.unsupported).toBe(
      `The desktop's disks are on storage that cannot take snapshots (plain LVM or raw files): san-lvm:vm-${created.vmId}-disk-0 (lvm). Move them to LVM-thin, ZFS or Ceph to use snapshots.`,
    );
  });

  it('refuses a desktop without a VM, as such', async () => {
    expect(await list(desktopId())).toMatchObject({ ok: false, refusal: 'vm_missing' });
  });

  it('knows which storage snapshots which volume (pve-storage volume_has_feature)', () => {
    expect(volumeCanSnapshot('lvmthin', 'local-lvm:vm-1-disk-0')).toBe(true);
    expect(volumeCanSnapshot('zfspool', 'tank:vm-1-disk-0')).toBe(true);
    expect(volumeCanSnapshot('rbd', 'ceph:vm-1-disk-0')).toBe(true);
    expect(volumeCanSnapshot('dir', 'local:1/vm-1-disk-0.qcow2')).toBe(true);
    expect(volumeCanSnapshot('dir', 'local:1/vm-1-disk-0.raw')).toBe(false);
    expect(volumeCanSnapshot('lvm', 'san-lvm:vm-1-disk-0')).toBe(false);
    expect(
      diskVolumes({
        scsi0: 'local-lvm:vm-1-disk-0,size=32G',
        ide2: 'local:iso/x.iso,media=cdrom',
        ide0: 'local-lvm:vm-1-cloudinit,media=cdrom',
        net0: 'virtio=AA',
      }),
    ).toEqual(['local-lvm:vm-1-disk-0']);
  });
});
