/**
 * The Proxmox VE simulator against the wire contract of pveproxy and qemu-server, seen the way a client sees it: raw
 * HTTP, exact texts, statuses and shapes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TOKEN, type ProxmoxSimOptions, type ProxmoxSimulator, startProxmoxSimulator } from '../../simulators/proxmox/server';
import { setTimeout as sleep } from 'node:timers/promises';

const AUTH = `PVEAPIToken=${DEFAULT_TOKEN.id}=${DEFAULT_TOKEN.secret}`;

interface Reply {
  status: number;
  reason: string;
  contentType: string | null;
  text: string;
  /** The parsed envelope, and its members. */
  body: unknown;
  data: unknown;
  errors: unknown;
  message: unknown;
  total: unknown;
}

function obj(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`not an object: ${JSON.stringify(v)}`);
  return v as Record<string, unknown>;
}

function arr(v: unknown): unknown[] {
  if (!Array.isArray(v)) throw new Error(`not an array: ${JSON.stringify(v)}`);
  return v;
}

async function api(
  sim: ProxmoxSimulator,
  method: string,
  path: string,
  opts: { form?: Record<string, string>; json?: unknown; auth?: string | null } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (opts.auth !== null) headers.Authorization = opts.auth ?? AUTH;
  let body: string | undefined;
  if (opts.form) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(opts.form).toString();
  } else if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  const res = await fetch(`${sim.url}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  const envelope = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  return {
    status: res.status,
    reason: res.statusText,
    contentType: res.headers.get('content-type'),
    text,
    body: parsed,
    data: envelope.data,
    errors: envelope.errors,
    message: envelope.message,
    total: envelope.total,
  };
}

const taskPath = (upid: string, what: 'status' | 'log') => `/nodes/${upid.split(':')[1]}/tasks/${encodeURIComponent(upid)}/${what}`;

async function clone(sim: ProxmoxSimulator, newid: number, extra: Record<string, string> = {}): Promise<string> {
  const r = await api(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { form: { newid: String(newid), name: `desk-${newid}`, ...extra } });
  expect(r.status, r.text).toBe(200);
  return String(r.data);
}

async function waitTask(sim: ProxmoxSimulator, upid: string): Promise<Record<string, unknown>> {
  for (;;) {
    const r = await api(sim, 'GET', taskPath(upid, 'status'));
    if (obj(r.data).status === 'stopped') return obj(r.data);
    await sleep(5);
  }
}

async function simStats(sim: ProxmoxSimulator): Promise<Record<string, unknown>> {
  const res = await fetch(`${sim.url.replace('/api2/json', '')}/__sim/stats`);
  return obj(obj((await res.json()) as unknown).data);
}

describe('Proxmox simulator (zero delays)', () => {
  let sim: ProxmoxSimulator;
  beforeAll(async () => {
    sim = await startProxmoxSimulator();
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  it('wraps replies in {data} with exactly application/json;charset=UTF-8', async () => {
    const r = await api(sim, 'GET', '/version');
    expect(r.status).toBe(200);
    expect(r.contentType).toBe('application/json;charset=UTF-8');
    expect(r.body).toEqual({ data: expect.objectContaining({ release: expect.any(String), version: expect.any(String) }) });
  });

  it('answers a bad or missing token with a bodiless, typeless 401', async () => {
    const bad = await api(sim, 'GET', '/version', { auth: `PVEAPIToken=${DEFAULT_TOKEN.id}=00000000-0000-0000-0000-000000000000` });
    expect([bad.status, bad.reason, bad.contentType, bad.text]).toEqual([401, 'Authentication failed!', null, '']);
    const none = await api(sim, 'GET', '/version', { auth: null });
    expect([none.status, none.reason, none.contentType, none.text]).toEqual([401, 'No ticket', null, '']);
  });

  it('answers 501 for an unknown path, with the message in reason and body', async () => {
    const r = await api(sim, 'GET', '/nodes/pve1/foo');
    expect(r.status).toBe(501);
    expect(r.reason).toBe("Method 'GET /nodes/pve1/foo' not implemented");
    expect(r.body).toEqual({ data: null, message: "Method 'GET /nodes/pve1/foo' not implemented\n" });
  });

  it('starts a clone as a task whose UPID names the source vmid and the token', async () => {
    const upid = await clone(sim, 120);
    expect(upid).toMatch(/^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:qmclone:9000:root@pam!dev:$/);
    const status = await waitTask(sim, upid);
    expect(status).toMatchObject({ upid, node: 'pve1', type: 'qmclone', id: '9000', user: 'root@pam', tokenid: 'dev', exitstatus: 'OK' });
    expect(typeof status.pid).toBe('number');
    const log = await api(sim, 'GET', taskPath(upid, 'log'));
    expect(arr(log.data)[0]).toEqual({ n: 1, t: 'create linked clone of drive scsi0 (local-lvm:base-9000-disk-0)' });
    expect(arr(log.data).at(-1)).toEqual({ n: log.total, t: 'TASK OK' });
    const cfg = await api(sim, 'GET', '/nodes/pve1/qemu/120/config');
    expect(cfg.data).toMatchObject({ name: 'desk-120', scsi0: 'local-lvm:base-9000-disk-0/vm-120-disk-0,size=32G' });
    expect(obj(cfg.data).template).toBeUndefined();
    expect(obj(cfg.data).net0).not.toBe(sim.vm(9000)?.config.net0);
  });

  it('reports unknown and malformed UPIDs as 400 parameter errors', async () => {
    const unknown = await api(sim, 'GET', taskPath('UPID:pve1:0000AAAA:0000BBBB:6700CCCC:qmclone:9000:root@pam!dev:', 'status'));
    expect([unknown.status, unknown.errors]).toEqual([400, { upid: 'no such task' }]);
    const malformed = await api(sim, 'GET', '/nodes/pve1/tasks/not-a-upid/status');
    expect([malformed.status, malformed.errors]).toEqual([400, { upid: 'unable to parse worker upid' }]);
  });

  it('answers nextid as a JSON string and never reserves it', async () => {
    const a = await api(sim, 'GET', '/cluster/nextid');
    const b = await api(sim, 'GET', '/cluster/nextid');
    expect(a.body).toEqual({ data: '100' });
    expect(b.body).toEqual({ data: '100' });
    const taken = await api(sim, 'GET', '/cluster/nextid?vmid=9000');
    expect(taken.status).toBe(400);
    expect(taken.reason).toBe('Parameter verification failed.');
    expect(taken.errors).toEqual({ vmid: 'VM 9000 already exists' });
    expect((await api(sim, 'GET', '/cluster/nextid?vmid=150')).body).toEqual({ data: '150' });
  });

  it('refuses a clone onto a taken newid synchronously', async () => {
    await clone(sim, 130);
    const r = await api(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { form: { newid: '130' } });
    expect(r.status).toBe(500);
    expect(r.reason).toBe('unable to create VM 130: config file already exists');
    expect(r.message).toBe('unable to create VM 130: config file already exists\n');
  });

  it('refuses a linked clone with a target storage', async () => {
    const r = await api(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { form: { newid: '131', storage: 'local-lvm' } });
    expect([r.status, r.reason]).toEqual([500, "parameter 'storage' not allowed for linked clones"]);
  });

  it('refuses to destroy a running VM with the real text', async () => {
    await waitTask(sim, await clone(sim, 140));
    await waitTask(sim, String((await api(sim, 'POST', '/nodes/pve1/qemu/140/status/start')).data));
    const r = await api(sim, 'DELETE', '/nodes/pve1/qemu/140');
    expect([r.status, r.reason]).toEqual([500, 'VM 140 is running - destroy failed']);
  });

  it('reports start errors inside the task, not on the HTTP call', async () => {
    const r = await api(sim, 'POST', '/nodes/pve1/qemu/9000/status/start');
    expect(r.status).toBe(200);
    expect(await waitTask(sim, String(r.data))).toMatchObject({ exitstatus: "you can't start a vm if it's a template" });
  });

  it('returns memory as a string, integers as numbers and never the cloud-init password', async () => {
    await waitTask(sim, await clone(sim, 150));
    const put = await api(sim, 'PUT', '/nodes/pve1/qemu/150/config', {
      form: { cores: '8', memory: '8192', cipassword: 's3cret', tags: 'desk;b;a' },
    });
    expect(put.body).toEqual({ data: null });
    const cfg = (await api(sim, 'GET', '/nodes/pve1/qemu/150/config')).data;
    expect(cfg).toMatchObject({ cores: 8, memory: '8192', cipassword: '**********', tags: 'a;b;desk' });
    await api(sim, 'PUT', '/nodes/pve1/qemu/150/config', { form: { delete: 'cipassword,tags' } });
    const after = obj((await api(sim, 'GET', '/nodes/pve1/qemu/150/config')).data);
    expect(after.cipassword).toBeUndefined();
    expect(after.tags).toBeUndefined();
  });

  it('rejects form booleans written true/false and unknown parameters with 400', async () => {
    const r = await api(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { form: { newid: '160', full: 'true', colour: 'red' } });
    expect(r.status).toBe(400);
    expect(r.reason).toBe('Parameter verification failed.');
    expect(r.errors).toEqual({
      full: "type check ('boolean') failed - got 'true'",
      colour: 'property is not defined in schema and the schema does not allow additional properties',
    });
    const json = await api(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { json: { newid: 160, full: true } });
    expect(json.status).toBe(200);
  });

  it('validates property strings and value ranges like PVE::JSONSchema', async () => {
    await waitTask(sim, await clone(sim, 170));
    const r = await api(sim, 'PUT', '/nodes/pve1/qemu/170/config', { form: { memory: 'lots', cores: '0', name: 'not_a_dns_name' } });
    expect(r.errors).toEqual({
      memory: "invalid format - format error\nmemory.current: type check ('integer') failed - got 'lots'\n",
      cores: 'value must have a minimum value of 1',
      name: 'invalid format - value does not look like a valid DNS name\n',
    });
  });

  it('reports an unknown VM with the config-file text', async () => {
    const r = await api(sim, 'GET', '/nodes/pve1/qemu/4242/config');
    expect([r.status, r.reason]).toEqual([500, "Configuration file 'nodes/pve1/qemu-server/4242.conf' does not exist"]);
  });

  it('lists VMs in /cluster/resources with lock, tags and template as the API does', async () => {
    await waitTask(sim, await clone(sim, 180));
    const r = await api(sim, 'GET', '/cluster/resources?type=vm');
    expect(r.data).toEqual([
      expect.objectContaining({ id: 'qemu/180', type: 'qemu', vmid: 180, node: 'pve1', name: 'desk-180', status: 'stopped', template: 0 }),
      expect.objectContaining({ id: 'qemu/9000', vmid: 9000, name: 'ubuntu-desktop-template', tags: 'template', template: 1 }),
    ]);
  });
});

describe('Proxmox simulator (tasks in flight)', () => {
  let sim: ProxmoxSimulator;
  const delays: Partial<ProxmoxSimOptions> = { cloneDelayMs: 80, destroyDelayMs: 80 };
  beforeAll(async () => {
    sim = await startProxmoxSimulator(delays);
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  it('holds lock: clone on the new VM while the clone runs', async () => {
    const upid = await clone(sim, 200);
    const cfg = await api(sim, 'GET', '/nodes/pve1/qemu/200/config');
    expect(cfg.data).toMatchObject({ lock: 'clone', description: ' qmclone temporary file\n' });
    const res = await api(sim, 'GET', '/cluster/resources?type=vm');
    expect(res.data).toContainEqual(expect.objectContaining({ vmid: 200, lock: 'clone', name: 'VM 200' }));
    expect(obj((await api(sim, 'GET', taskPath(upid, 'status'))).data).status).toBe('running');
    await waitTask(sim, upid);
    const done = obj((await api(sim, 'GET', '/nodes/pve1/qemu/200/config')).data);
    expect(done.lock).toBeUndefined();
    expect(done.name).toBe('desk-200');
  });

  it('keeps a vmid taken until its destroy task ends', async () => {
    await waitTask(sim, await clone(sim, 210));
    const upid = String((await api(sim, 'DELETE', '/nodes/pve1/qemu/210')).data);
    expect((await api(sim, 'GET', '/cluster/nextid?vmid=210')).status).toBe(400);
    await waitTask(sim, upid);
    expect((await api(sim, 'GET', '/cluster/nextid?vmid=210')).body).toEqual({ data: '210' });
  });

  it('counts tasks and the time spent in task delays', async () => {
    await waitTask(sim, await clone(sim, 230));
    const stats = await simStats(sim);
    expect(stats.tasks).toEqual({ total: 1, byType: { qmclone: 1 } });
    expect(stats.taskDelayMs).toBe(80);
    expect(stats.taskDelayWallMs).toBeGreaterThanOrEqual(75);
  });
});

describe('Proxmox simulator fault injection', () => {
  let sim: ProxmoxSimulator;
  const base = () => sim.url.replace('/api2/json', '');
  beforeAll(async () => {
    sim = await startProxmoxSimulator();
  });
  afterAll(() => sim.stop());
  afterEach(() => sim.reset());

  it('injects the configured kinds through /__sim/faults and stops on DELETE', async () => {
    const set = await fetch(`${base()}/__sim/faults`, { method: 'POST', body: JSON.stringify({ rate: 1, kinds: ['proxy_596'] }) });
    expect(set.status).toBe(200);
    const r = await api(sim, 'GET', '/version');
    expect([r.status, r.reason, r.contentType, r.text]).toEqual([596, 'Connection timed out', null, '']);
    await fetch(`${base()}/__sim/faults`, { method: 'DELETE' });
    expect((await api(sim, 'GET', '/version')).status).toBe(200);
    expect((await simStats(sim)).faults).toEqual({ proxy_596: 1 });
  });

  it('runs a call whose answer a proxy_596 loses, and not one a proxy_599 stops', async () => {
    sim.setFaults({ rate: 1, kinds: ['proxy_596'] });
    const lost = await api(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { form: { newid: '320', name: 'desk-320' } });
    expect([lost.status, lost.text]).toEqual([596, '']);
    sim.setFaults({ rate: 1, kinds: ['proxy_599'] });
    const refused = await api(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { form: { newid: '321', name: 'desk-321' } });
    expect(refused.status).toBe(599);
    sim.setFaults(null);
    expect(sim.vm(320)?.name).toBe('desk-320');
    expect(sim.vm(321)).toBeUndefined();
    expect(sim.stats().faultsByRoute).toEqual({ 'POST /nodes/{node}/qemu/{vmid}/clone': { proxy_596: 1, proxy_599: 1 } });
  });

  it('rejects a malformed fault configuration', async () => {
    const r = await fetch(`${base()}/__sim/faults`, { method: 'POST', body: JSON.stringify({ rate: 2, kinds: ['meteor'] }) });
    expect(r.status).toBe(400);
  });

  it('draws the same faults for the same seed', async () => {
    const run = async () => {
      sim.setFaults({ rate: 0.5, kinds: ['http_500', 'proxy_599'], seed: 7 });
      const statuses: number[] = [];
      for (let i = 0; i < 30; i++) statuses.push((await api(sim, 'GET', '/version')).status);
      return statuses;
    };
    const first = await run();
    expect(await run()).toEqual(first);
    expect(new Set(first)).toEqual(new Set([200, 500, 599]));
  });

  it('fails a clone task with the storage lock time-out and removes the half-made VM', async () => {
    sim.setFaults({ rate: 1, kinds: ['task_error'] });
    const upid = await clone(sim, 300);
    expect(await waitTask(sim, upid)).toMatchObject({
      exitstatus: "clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout",
    });
    const log = await api(sim, 'GET', taskPath(upid, 'log'));
    expect(obj(arr(log.data).at(-1)).t).toBe(
      "TASK ERROR: clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout",
    );
    expect(sim.vm(300)).toBeUndefined();
  });

  it('answers the locked fault synchronously with the config file-lock text', async () => {
    sim.setFaults({ rate: 1, kinds: ['locked'] });
    const r = await api(sim, 'POST', '/nodes/pve1/qemu/9000/clone', { form: { newid: '310' } });
    expect([r.status, r.reason]).toEqual([500, "can't lock file '/var/lock/qemu-server/lock-9000.conf' - got timeout"]);
    // GETs are never locked out.
    expect((await api(sim, 'GET', '/nodes/pve1/qemu/9000/config')).status).toBe(200);
  });
});

describe('Proxmox simulator guest agent', () => {
  let sim: ProxmoxSimulator;
  let clock = Date.parse('2026-11-21T10:00:00Z');
  beforeAll(async () => {
    // Boot and DHCP phases follow the simulator's clock, so the test moves time instead of waiting.
    sim = await startProxmoxSimulator({ bootDelayMs: 4000, ipDelayMs: 2000, now: () => clock });
  });
  afterAll(() => sim.stop());

  it('walks through its phases as the guest boots', async () => {
    await waitTask(sim, await clone(sim, 220));
    const agent = async () => {
      const r = await api(sim, 'GET', '/nodes/pve1/qemu/220/agent/network-get-interfaces');
      if (r.status !== 200) return `${r.status} ${r.reason}`;
      const mac = /([0-9A-F]{2}(:[0-9A-F]{2}){5})/.exec(String(sim.vm(220)?.config.net0))?.[1]?.toLowerCase();
      const nic = arr(obj(r.data).result)
        .map(obj)
        .find((i) => i['hardware-address'] === mac);
      const addrs = arr(nic?.['ip-addresses'] ?? []).map(obj);
      return addrs.length === 0 ? 'no addresses' : addrs.map((a) => `${a['ip-address-type']} ${a['ip-address']}`).join(', ');
    };

    await api(sim, 'PUT', '/nodes/pve1/qemu/220/config', { form: { delete: 'agent' } });
    expect(await agent()).toBe('500 No QEMU guest agent configured');
    await api(sim, 'PUT', '/nodes/pve1/qemu/220/config', { form: { agent: '1' } });
    expect(await agent()).toBe('500 VM 220 is not running');
    expect((await api(sim, 'POST', '/nodes/pve1/qemu/220/agent/ping')).reason).toBe('VM 220 is not running');

    await waitTask(sim, String((await api(sim, 'POST', '/nodes/pve1/qemu/220/status/start')).data));
    expect(await agent()).toBe('500 QEMU guest agent is not running');
    clock += 4000;
    expect(await agent()).toBe('no addresses');
    clock += 1000;
    expect(await agent()).toMatch(/^ipv6 fe80::/);
    clock += 1000;
    expect(await agent()).toMatch(new RegExp(`^ipv4 ${sim.vm(220)?.ipv4.replaceAll('.', '\\.')}, ipv6 fe80::`));
    expect((await api(sim, 'POST', '/nodes/pve1/qemu/220/agent/ping')).body).toEqual({ data: { result: {} } });
  });
});
