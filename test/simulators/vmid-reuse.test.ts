/**
 * A VMID freed by a delete is not handed to a new desktop while the old VM is being destroyed (qemu-server's destroy_vm
 * removes the config last), nor right after it (the driver's quarantine), so a late task of the old VM can never hit
 * the new one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProxmoxDriver } from '../../on-prem-bridge/src/drivers/proxmox';
import { DEFAULT_TOKEN, type ProxmoxSimulator, startProxmoxSimulator } from '../../simulators/proxmox/server';

let sim: ProxmoxSimulator;
beforeAll(async () => {
  sim = await startProxmoxSimulator({ destroyDelayMs: 300 });
});
afterAll(async () => {
  await sim.stop();
});

const driver = () => createProxmoxDriver({ url: sim.url, tokenId: DEFAULT_TOKEN.id, tokenSecret: DEFAULT_TOKEN.secret });
const RANGE = { min: 42000, max: 42009 };

describe('VMID reuse', () => {
  it('does not hand out the id of a VM that is being destroyed, nor one this bridge just freed', async () => {
    const pve = driver();
    const first = await pve.allocateVmid(RANGE);
    await pve.waitForTask(await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: first, name: 'desk-oldoldold', full: false }));
    const destroying = pve.destroyVm('pve1', first).then((upid) => pve.waitForTask(upid));
    // While the destroy task runs the id is still taken, for this bridge and for a restarted one.
    expect(await pve.allocateVmid(RANGE)).not.toBe(first);
    expect(await driver().allocateVmid(RANGE)).not.toBe(first);
    await destroying;
    expect((await pve.listVms()).some((v) => v.vmid === first)).toBe(false);
    // Freed now, but this bridge keeps it in quarantine.
    const next = await Promise.all(Array.from({ length: 5 }, () => pve.allocateVmid(RANGE)));
    expect(next).not.toContain(first);
  });
});
