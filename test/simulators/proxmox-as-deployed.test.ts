/**
 * What a real Proxmox VE does that the bridge must cope with: HTTPS with the cluster's own CA, /cluster/resources from
 * pvestatd's 10 s cache, config flocks held by a clone, the second destroy's text, privilege-separated tokens, and a
 * guest whose desktop answers some seconds after its agent reported an address.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trustFrom, trustedApiFetch, trustedFetch } from '../../on-prem-bridge/src/tls-trust';
import { RFB_GREETING, X224_CONNECTION_CONFIRM } from '../../simulators/proxmox/guest-desktop';
import { DEFAULT_TOKEN, type ProxmoxSimOptions, type ProxmoxSimulator, startProxmoxSimulator } from '../../simulators/proxmox/server';
import { throwawayCa } from './support/dev-ca';
import { until } from './support/until';

const AUTH = { Authorization: `PVEAPIToken=${DEFAULT_TOKEN.id}=${DEFAULT_TOKEN.secret}` };

async function pve(sim: ProxmoxSimulator, method: string, path: string, form?: Record<string, string>, f: typeof fetch = fetch) {
  const res = await f(`${sim.url}${path}`, {
    method,
    headers: { ...AUTH, ...(form ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}) },
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
  const text = await res.text();
  const body = text ? (JSON.parse(text) as { data?: unknown; message?: string }) : {};
  return { status: res.status, reason: res.statusText, data: body.data as never, message: body.message };
}

async function task(sim: ProxmoxSimulator, upid: string): Promise<{ status: string; exitstatus?: string }> {
  return until(async () => {
    const r = await pve(sim, 'GET', `/nodes/pve1/tasks/${encodeURIComponent(upid)}/status`);
    const t = r.data as { status: string; exitstatus?: string };
    return t.status === 'stopped' ? t : null;
  }, 5000);
}

async function withSim<T>(options: Partial<ProxmoxSimOptions>, fn: (sim: ProxmoxSimulator) => Promise<T>): Promise<T> {
  const sim = await startProxmoxSimulator(options);
  try {
    return await fn(sim);
  } finally {
    await sim.stop();
  }
}

describe('Proxmox simulator as deployed', () => {
  let ca: Awaited<ReturnType<typeof throwawayCa>>;
  beforeAll(async () => {
    ca = await throwawayCa();
  });
  afterAll(() => ca.remove());

  it.each([
    ['fetch', trustedFetch],
    ['the API fetch over undici request', trustedApiFetch],
  ])(
    'serves HTTPS with a certificate of its own CA: verified with the CA file or the pinned fingerprint, refused without (%s)',
    async (_, trusted) => {
      await withSim({ tls: { cert: ca.server.cert, key: ca.server.key } }, async (sim) => {
        expect(sim.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/api2\/json$/);
        const withCa = trusted(trustFrom('PROXMOX_CA_FILE', ca.caFile, undefined));
        expect((await pve(sim, 'GET', '/version', undefined, withCa)).data).toMatchObject({ release: '9.1' });
        // A second connection resumes the first one's TLS session, still verified.
        const again = await Promise.all([1, 2, 3].map(() => pve(sim, 'GET', '/version', undefined, withCa)));
        expect(again.map((r) => r.status)).toEqual([200, 200, 200]);
        const pinned = trusted(trustFrom('PROXMOX_CA_FILE', undefined, ca.server.fingerprint256.toLowerCase()));
        expect((await pve(sim, 'GET', '/version', undefined, pinned)).status).toBe(200);
        const wrongPin = trusted(trustFrom('PROXMOX_CA_FILE', undefined, ca.ca.fingerprint256));
        await expect(pve(sim, 'GET', '/version', undefined, wrongPin)).rejects.toThrow();
        await expect(pve(sim, 'GET', '/version', undefined, trusted({ kind: 'system' }))).rejects.toThrow();
        // Errors read as fetch's: the reason phrase and the body of a refusal arrive whole.
        const refused = await pve(sim, 'GET', '/nodes/pve1/qemu/4242/config', undefined, withCa);
        expect([refused.status, refused.reason, refused.message]).toEqual([
          500,
          "Configuration file 'nodes/pve1/qemu-server/4242.conf' does not exist",
          "Configuration file 'nodes/pve1/qemu-server/4242.conf' does not exist\n",
        ]);
        // Plain HTTP still answers on loopback (a browser or test on the same machine).
        const plain = await fetch(sim.url.replace('https:', 'http:').replace('/api2/json', '/api2/json/version'), { headers: AUTH });
        expect(plain.status).toBe(200);
      });
    },
  );

  it('lists a new VM in /cluster/resources without its name until pvestatd broadcasts; the node list and config are live', async () => {
    await withSim({ statusCacheMs: 300 }, async (sim) => {
      const r = await pve(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { newid: '300', name: 'desk-lag' });
      expect((await task(sim, r.data)).exitstatus).toBe('OK');
      const resources = (await pve(sim, 'GET', '/cluster/resources?type=vm')).data as Array<Record<string, unknown>>;
      const stale = resources.find((v) => v.vmid === 300);
      expect(stale).toMatchObject({ vmid: 300, status: 'unknown' });
      expect(stale?.name).toBeUndefined();
      const live = (await pve(sim, 'GET', '/nodes/pve1/qemu')).data as Array<Record<string, unknown>>;
      expect(live.find((v) => v.vmid === 300)?.name).toBe('desk-lag');
      await pve(sim, 'PUT', '/nodes/pve1/qemu/300/config', { tags: 'cdaas;desk-lag' });
      // Tags and locks are read from the configs: live.
      expect(
        ((await pve(sim, 'GET', '/cluster/resources?type=vm')).data as Array<Record<string, unknown>>).find((v) => v.vmid === 300),
      ).toMatchObject({ tags: 'cdaas;desk-lag' });
      await until(async () => {
        const vms = (await pve(sim, 'GET', '/cluster/resources?type=vm')).data as Array<Record<string, unknown>>;
        return vms.find((v) => v.vmid === 300)?.name === 'desk-lag';
      });
    });
  });

  it('holds the new VM’s flock for the whole clone: a config change waits, and fails with can’t lock file when the clone outlasts it', async () => {
    await withSim({ cloneDelayMs: 400, lockWaitMs: 100 }, async (sim) => {
      const r = await pve(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { newid: '310', name: 'desk-flock' });
      const put = await pve(sim, 'PUT', '/nodes/pve1/qemu/310/config', { cores: '4' });
      expect([put.status, put.message]).toEqual([500, "can't lock file '/var/lock/qemu-server/lock-310.conf' - got timeout\n"]);
      await task(sim, r.data);
    });
    await withSim({ cloneDelayMs: 100, lockWaitMs: 2000 }, async (sim) => {
      const r = await pve(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { newid: '311', name: 'desk-flock' });
      const put = await pve(sim, 'PUT', '/nodes/pve1/qemu/311/config', { cores: '4' });
      expect(put.status).toBe(200);
      expect((await task(sim, r.data)).exitstatus).toBe('OK');
      expect(sim.vm(311)?.config.cores).toBe(4);
    });
  });

  it('shows the name with lock: clone halfway through a clone, as qemu-server writes the config after each disk', async () => {
    await withSim({ cloneDelayMs: 300 }, async (sim) => {
      const r = await pve(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { newid: '320', name: 'desk-mid' });
      await until(async () => sim.vm(320)?.name === 'desk-mid' && sim.vm(320)?.lock === 'clone');
      await task(sim, r.data);
      expect(sim.vm(320)?.lock).toBeUndefined();
    });
  });

  it('answers a second destroy of the same VM with “does not exist”, and the failed one does not unlock the first', async () => {
    await withSim({ destroyDelayMs: 150, lockWaitMs: 2000 }, async (sim) => {
      await task(sim, (await pve(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { newid: '330', name: 'desk-twice' })).data);
      const first = await pve(sim, 'DELETE', '/nodes/pve1/qemu/330');
      const second = await pve(sim, 'DELETE', '/nodes/pve1/qemu/330');
      expect(sim.vm(330)?.lock).toBe('destroyed');
      expect((await task(sim, first.data)).exitstatus).toBe('OK');
      expect((await task(sim, second.data)).exitstatus).toBe("Configuration file 'nodes/pve1/qemu-server/330.conf' does not exist");
      expect(sim.vm(330)).toBeUndefined();
    });
    await withSim({ destroyDelayMs: 300, lockWaitMs: 50 }, async (sim) => {
      await task(sim, (await pve(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { newid: '331', name: 'desk-twice' })).data);
      const first = await pve(sim, 'DELETE', '/nodes/pve1/qemu/331');
      const second = await pve(sim, 'DELETE', '/nodes/pve1/qemu/331');
      expect((await task(sim, second.data)).exitstatus).toBe("can't lock file '/var/lock/qemu-server/lock-331.conf' - got timeout");
      // The bug this replaces: the failed second task cleared the first one's lock.
      expect(sim.vm(331)?.lock).toBe('destroyed');
      expect((await task(sim, first.data)).exitstatus).toBe('OK');
    });
  });

  it('answers a privilege-separated token 403 “Permission check failed” for what it lacks, and lists its privileges', async () => {
    const privileges = ['VM.Audit', 'VM.Clone', 'VM.Allocate', 'Datastore.AllocateSpace', 'SDN.Use', 'VM.Config.CPU', 'VM.Config.Memory'];
    await withSim({ tokens: [{ ...DEFAULT_TOKEN, privileges }] }, async (sim) => {
      const perms = await pve(sim, 'GET', '/access/permissions?path=/vms/9000');
      expect(Object.keys((perms.data as Record<string, Record<string, number>>)['/vms/9000'] ?? {})).toEqual([...privileges].sort());
      await task(sim, (await pve(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { newid: '340', name: 'desk-perm' })).data);
      const put = await pve(sim, 'PUT', '/nodes/pve1/qemu/340/config', { cores: '2', ciuser: 'desktop' });
      expect([put.status, put.reason]).toEqual([403, 'Permission check failed (/vms/340, VM.Config.Cloudinit)']);
      const start = await pve(sim, 'POST', '/nodes/pve1/qemu/340/status/start');
      expect(start.message).toBe('Permission check failed (/vms/340, VM.PowerMgmt)\n');
    });
  });

  it('opens the guest’s VNC and RDP ports some time after the agent reports its address, speaking their greetings', async () => {
    const prefix = `127.${100 + Math.floor(Math.random() * 150)}`;
    await withSim({ ipPrefix: prefix, bootDelayMs: 0, ipDelayMs: 0, desktopDelayMs: 300 }, async (sim) => {
      await task(sim, (await pve(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { newid: '350', name: 'desk-port' })).data);
      await task(sim, (await pve(sim, 'POST', '/nodes/pve1/qemu/350/status/start')).data);
      const ip = sim.vm(350)?.ipv4 ?? '';
      expect(ip.startsWith(`${prefix}.`)).toBe(true);
      const first = (port: number, send?: Buffer) =>
        new Promise<Buffer | string>((resolve) => {
          const socket = connect(port, ip);
          socket.once('connect', () => send && socket.write(send));
          socket.once('data', (b: Buffer) => {
            socket.destroy();
            resolve(b);
          });
          socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        });
      expect(await first(5900)).toBe('ECONNREFUSED');
      const vnc = await until(async () => {
        const b = await first(5900);
        return typeof b === 'string' ? null : b.toString();
      });
      expect(vnc).toBe(RFB_GREETING);
      const request = Buffer.from([0x03, 0, 0, 0x13, 0x0e, 0xe0, 0, 0, 0, 0, 0, 0x01, 0, 0x08, 0, 0x03, 0, 0, 0]);
      expect(await first(3389, request)).toEqual(X224_CONNECTION_CONFIRM);
      await task(sim, (await pve(sim, 'POST', '/nodes/pve1/qemu/350/status/stop')).data);
      expect(await until(async () => (await first(5900)) === 'ECONNREFUSED')).toBe(true);
    });
  });
});
