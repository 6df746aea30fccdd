/**
 * The bridge's Proxmox driver (built on the `proxmox-api` package) against the simulator: the
 * provisioning path, VMID allocation under concurrency, clone idempotency and error classification.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createProxmoxDriver } from '../../on-prem-bridge/src/drivers/proxmox';
import { pickGuestIpv4 } from '../../on-prem-bridge/src/drivers/proxmox-guest';
import { InfraError, type ProxmoxDriver } from '../../on-prem-bridge/src/drivers/types';
import { DEFAULT_TOKEN, type FaultKind, type ProxmoxSimulator, startProxmoxSimulator } from '../../simulators/proxmox/server';
import { until } from './support/until';

const RANGE = { min: 41000, max: 41999 };

function driverFor(sim: ProxmoxSimulator, extra: { fetch?: typeof fetch } = {}): ProxmoxDriver {
  return createProxmoxDriver({ url: sim.url, tokenId: DEFAULT_TOKEN.id, tokenSecret: DEFAULT_TOKEN.secret, ...extra });
}

async function failure(promise: Promise<unknown>): Promise<InfraError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof InfraError)) throw new Error(`expected an InfraError, got ${String(error)}`);
  return error;
}

describe('Proxmox driver', () => {
  let sim: ProxmoxSimulator;
  let pve: ProxmoxDriver;
  beforeAll(async () => {
    sim = await startProxmoxSimulator();
    pve = driverFor(sim);
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  it('provisions and tears down a desktop: clone, configure, start, IP, shutdown, destroy', async () => {
    const vmid = await pve.allocateVmid(RANGE);
    await pve.waitForTask(await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: vmid, name: `desk-${vmid}`, full: false }));
    await pve.configureVm('pve1', vmid, { cores: 8, memory: 8192, tags: 'desk;cloud-desktop' });
    expect(await pve.getVmConfig('pve1', vmid)).toMatchObject({ cores: 8, memory: '8192', name: `desk-${vmid}` });

    await pve.waitForTask(await pve.startVm('pve1', vmid));
    expect(await pve.getVmStatus('pve1', vmid)).toEqual({ status: 'running' });
    const ip = await until(() => pve.getGuestIpv4('pve1', vmid));
    expect(ip).toBe(sim.vm(vmid)?.ipv4);
    expect(ip).toMatch(/^10\.20\.\d+\.\d+$/);
    expect(await pve.findVmByName(`desk-${vmid}`)).toMatchObject({
      vmid,
      node: 'pve1',
      status: 'running',
      tags: ['cloud-desktop', 'desk'],
      template: false,
    });

    await pve.waitForTask(await pve.shutdownVm('pve1', vmid, 30));
    expect((await pve.getVmStatus('pve1', vmid)).status).toBe('stopped');
    await pve.waitForTask(await pve.destroyVm('pve1', vmid));
    expect((await pve.listVms()).map((v) => v.vmid)).toEqual([9000]);
    expect(sim.vms().map((v) => v.vmid)).toEqual([9000]);
  });

  it('sends POSTs whole once @kubernetes/client-node is loaded, non-ASCII parameters included', async () => {
    // Loading the Kubernetes client makes its undici 8 the dispatcher of every fetch in the
    // process, which refused proxmox-api's own (string-length) Content-Length header.
    await import('@kubernetes/client-node');
    const vmid = await pve.allocateVmid(RANGE);
    const description = 'Büro-Desktop für Zoë — 日本語';
    await pve.waitForTask(
      await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: vmid, name: `desk-${vmid}`, full: false, description }),
    );
    await pve.configureVm('pve1', vmid, { cores: 2, description });
    expect(await pve.getVmConfig('pve1', vmid)).toMatchObject({ cores: 2, description });
  });

  it('gives 50 concurrent allocate+clone calls 50 distinct VMIDs', async () => {
    const vmids = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const vmid = await pve.allocateVmid(RANGE);
        await pve.waitForTask(await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: vmid, name: `desk-c${i}`, full: false }));
        return vmid;
      }),
    );
    expect(new Set(vmids).size).toBe(50);
    const listed = (await pve.listVms()).filter((v) => !v.template);
    expect(listed.map((v) => v.vmid).sort()).toEqual([...vmids].sort());
    expect(listed.every((v) => v.lock === undefined)).toBe(true);
  });

  it('allocates past ids taken in the cluster or handed out recently', async () => {
    await pve.waitForTask(await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: 100, name: 'someone-else', full: false }));
    expect(await pve.allocateVmid({ min: 100, max: 103 })).toBe(101);
    expect(await pve.allocateVmid({ min: 100, max: 103 })).toBe(102);
    // A second driver (another process) does not share the quarantine, but sees the cluster.
    expect(await driverFor(sim).allocateVmid({ min: 100, max: 103 })).toBe(101);
    const full = await failure(pve.allocateVmid({ min: 100, max: 100 }));
    expect(full.retryable).toBe(false);
  });

  it('returns the agent phases before the guest has an address as null', async () => {
    const vmid = 150;
    await pve.waitForTask(await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: vmid, name: 'desk-150', full: false }));
    expect(await pve.getGuestIpv4('pve1', vmid)).toBeNull(); // VM not running
    await pve.configureVm('pve1', vmid, { delete: 'agent' });
    await pve.waitForTask(await pve.startVm('pve1', vmid));
    const unconfigured = await failure(pve.getGuestIpv4('pve1', vmid));
    expect([unconfigured.retryable, unconfigured.message]).toEqual([false, expect.stringContaining('No QEMU guest agent configured')]);
  });

  it('reports a failed task with its exit status', async () => {
    const error = await failure(pve.startVm('pve1', 9000).then((upid) => pve.waitForTask(upid)));
    expect(error.message).toContain("you can't start a vm if it's a template");
    expect(error.retryable).toBe(false);
  });

  it('refuses a newid that belongs to another VM, permanently', async () => {
    const error = await failure(pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: 9000, name: 'desk-x', full: false }));
    expect([error.status, error.retryable]).toEqual([500, false]);
    expect(error.message).toContain('already exists');
  });

  it('classifies permanent errors as not retryable', async () => {
    const missing = await failure(pve.getVmConfig('pve1', 4242));
    expect([missing.status, missing.retryable]).toEqual([500, false]);
    expect(missing.message).toContain("Configuration file 'nodes/pve1/qemu-server/4242.conf' does not exist");
    const bad = await failure(pve.configureVm('pve1', 9000, { cores: 0 }));
    expect([bad.status, bad.retryable]).toEqual([400, false]);
    expect(bad.message).toContain('cores: value must have a minimum value of 1');
    const missingTemplate = await failure(pve.cloneVm({ node: 'pve1', templateVmid: 4242, newid: 160, name: 'x', full: false }));
    expect(missingTemplate.retryable).toBe(false);
    const unauthorized = await failure(
      createProxmoxDriver({ url: sim.url, tokenId: DEFAULT_TOKEN.id, tokenSecret: '00000000-0000-0000-0000-000000000000' }).listVms(),
    );
    expect([unauthorized.status, unauthorized.retryable]).toEqual([401, false]);
  });

  it('classifies an unreachable server as a retryable network failure', async () => {
    const down = await startProxmoxSimulator();
    const url = down.url;
    await down.stop();
    const error = await failure(createProxmoxDriver({ url, tokenId: DEFAULT_TOKEN.id, tokenSecret: DEFAULT_TOKEN.secret }).listVms());
    expect([error.status, error.retryable]).toEqual([0, true]);
  });

  it('picks the address of the NIC whose MAC matches net0', () => {
    // A published network-get-interfaces answer, plus a container bridge and a link-local address on the right NIC.
    const result = [
      {
        name: 'lo',
        'hardware-address': '00:00:00:00:00:00',
        'ip-addresses': [{ 'ip-address': '127.0.0.1', 'ip-address-type': 'ipv4', prefix: 8 }],
      },
      {
        name: 'docker0',
        'hardware-address': '02:42:ac:11:00:02',
        'ip-addresses': [{ 'ip-address': '172.17.0.1', 'ip-address-type': 'ipv4', prefix: 16 }],
      },
      {
        name: 'ens18',
        'hardware-address': 'b6:ad:86:35:12:92',
        'ip-addresses': [
          { 'ip-address': '169.254.10.1', 'ip-address-type': 'ipv4', prefix: 16 },
          { 'ip-address': 'fe80::e16e:6393:36f7:42ef', 'ip-address-type': 'ipv6', prefix: 64 },
          { 'ip-address': '192.168.3.102', 'ip-address-type': 'ipv4', prefix: 24 },
        ],
      },
    ];
    expect(pickGuestIpv4(result, 'B6:AD:86:35:12:92')).toBe('192.168.3.102');
    expect(pickGuestIpv4(result, 'b6:ad:86:35:12:93')).toBeNull();
    expect(pickGuestIpv4(result, null)).toBe('192.168.3.102');
  });
});

describe('Proxmox driver with tasks in flight', () => {
  let sim: ProxmoxSimulator;
  beforeAll(async () => {
    sim = await startProxmoxSimulator({ cloneDelayMs: 100 });
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  it('survives proxmox-api re-sending a clone POST whose reply was lost', async () => {
    let dropped = false;
    // The first clone POST reaches the simulator, then the connection "fails": proxmox-api sends it again
    // (ProxmoxEngine.ts).
    const flaky: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!dropped && init?.method === 'POST' && String(input).endsWith('/clone')) {
        dropped = true;
        throw new TypeError('fetch failed');
      }
      return res;
    };
    const pve = driverFor(sim, { fetch: flaky });
    const upid = await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: 500, name: 'desk-500', full: false });
    expect(dropped).toBe(true);
    expect(sim.vm(500)?.lock).toBe('clone');
    await pve.waitForTask(upid, { pollMs: 10 });
    expect(sim.vm(500)).toMatchObject({ name: 'desk-500', lock: undefined });
    expect(sim.stats().tasks.byType).toEqual({ qmclone: 1 });
  });

  it('resumes a finished clone when called again after a crash', async () => {
    const pve = driverFor(sim);
    await pve.waitForTask(await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: 510, name: 'desk-510', full: false }), {
      pollMs: 10,
    });
    const again = await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: 510, name: 'desk-510', full: false });
    await pve.waitForTask(again, { pollMs: 10 });
    expect(sim.stats().tasks.byType).toEqual({ qmclone: 1 });
  });

  it('keeps polling a task through transient failures of the status call', async () => {
    const pve = driverFor(sim);
    const upid = await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: 530, name: 'desk-530', full: false });
    sim.setFaults({ rate: 0.5, kinds: ['http_500', 'proxy_596'], seed: 3 });
    await pve.waitForTask(upid, { pollMs: 5 });
    expect(sim.vm(530)?.name).toBe('desk-530');
    expect(Object.values(sim.stats().faults).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it('stops waiting for a task when aborted', async () => {
    const pve = driverFor(sim);
    const upid = await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: 520, name: 'desk-520', full: false });
    const error = await pve.waitForTask(upid, { signal: AbortSignal.timeout(20), pollMs: 5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DOMException);
    expect((error as DOMException).name).toBe('TimeoutError');
  });
});

describe('Proxmox driver under injected faults', () => {
  let sim: ProxmoxSimulator;
  let pve: ProxmoxDriver;
  beforeAll(async () => {
    sim = await startProxmoxSimulator();
    pve = driverFor(sim);
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  async function runningVm(vmid: number): Promise<void> {
    await pve.waitForTask(await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: vmid, name: `desk-${vmid}`, full: false }));
    await pve.waitForTask(await pve.startVm('pve1', vmid));
  }

  const cases: Array<{ kind: FaultKind; act: () => Promise<unknown>; status: number; text: RegExp }> = [
    { kind: 'http_500', act: () => pve.listVms(), status: 500, text: /no quorum/ },
    { kind: 'proxy_596', act: () => pve.listVms(), status: 596, text: /Connection timed out/ },
    { kind: 'proxy_599', act: () => pve.getVmStatus('pve1', 9000), status: 599, text: /Too many redirections/ },
    {
      kind: 'locked',
      act: () => pve.configureVm('pve1', 9000, { cores: 4 }),
      status: 500,
      text: /can't lock file '\/var\/lock\/qemu-server\/lock-9000.conf' - got timeout/,
    },
    {
      kind: 'task_error',
      act: async () => pve.waitForTask(await pve.cloneVm({ node: 'pve1', templateVmid: 9000, newid: 600, name: 'desk-600', full: false })),
      status: 500,
      text: /clone failed: can't lock file '\/var\/lock\/pve-manager\/pve-storage-local-lvm' - got timeout/,
    },
    {
      kind: 'agent_timeout',
      act: async () => {
        await runningVm(610);
        sim.setFaults({ rate: 1, kinds: ['agent_timeout'] });
        return pve.getGuestIpv4('pve1', 610);
      },
      status: 500,
      text: /VM 610 qga command 'guest-network-get-interfaces' failed - got timeout/,
    },
  ];

  for (const c of cases) {
    it(`classifies the ${c.kind} fault as retryable`, async () => {
      if (c.kind !== 'agent_timeout') sim.setFaults({ rate: 1, kinds: [c.kind] });
      const error = await failure(c.act());
      expect(error.message).toMatch(c.text);
      expect([error.status, error.retryable]).toEqual([c.status, true]);
      expect(sim.stats().faults[c.kind]).toBeGreaterThanOrEqual(1);
    });
  }
});
