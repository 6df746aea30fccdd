/**
 * What a create asks of the site: on a Proxmox node with 2,000 other VMs and a Guacamole with hundreds of other
 * desktops' connections, a create (and the same create delivered again) touches its own VM and its own
 * connection, never a list of the whole inventory, so its cost does not grow with the site. The real drivers
 * talk to the simulators; every request they send is recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuacamoleDriver } from '../../on-prem-bridge/src/drivers/guacamole';
import { createProxmoxDriver } from '../../on-prem-bridge/src/drivers/proxmox';
import { createDesktop } from '../../on-prem-bridge/src/tasks/create-desktop';
import type { TaskDeps } from '../../on-prem-bridge/src/tasks/context';
import { memoryLedger } from '../../on-prem-bridge/src/vm-ledger';
import { type GuacamoleSimulator, startGuacamoleSimulator } from '../../simulators/guacamole/server';
import { DEFAULT_TOKEN, type ProxmoxSimulator, startProxmoxSimulator } from '../../simulators/proxmox/server';
import { desktopId, makeDeps, makeSpec, recordingContext } from '../bridge/support/harness';

const SITE_VMS = 2000;
const OTHER_CONNECTIONS = 300;

let proxmoxSim: ProxmoxSimulator;
let guacamoleSim: GuacamoleSimulator;
let deps: TaskDeps;
/** `METHOD /path` of every request the drivers sent, in order. */
const sent: string[] = [];

const recording =
  (f: typeof fetch): typeof fetch =>
  (input, init) => {
    sent.push(`${init?.method ?? 'GET'} ${decodeURIComponent(new URL(String(input)).pathname)}`);
    return f(input, init);
  };

beforeAll(async () => {
  proxmoxSim = await startProxmoxSimulator({ siteVms: SITE_VMS });
  guacamoleSim = await startGuacamoleSimulator({ port: 0 });
  const guacamole = createGuacamoleDriver({ url: guacamoleSim.url, username: 'guacadmin', password: 'guacadmin', fetch: recording(fetch) });
  for (let i = 0; i < OTHER_CONNECTIONS; i++) {
    await guacamole.createConnection({ name: `team-host-${i}`, protocol: 'rdp', parameters: { hostname: `10.9.${i >> 8}.${i & 255}` } });
  }
  const proxmox = createProxmoxDriver({
    url: proxmoxSim.url,
    tokenId: DEFAULT_TOKEN.id,
    tokenSecret: DEFAULT_TOKEN.secret,
    fetch: recording(fetch),
  });
  deps = makeDeps({ proxmox, guacamole, ledger: memoryLedger() });
  // The bridge's first create after it starts: it lists the site once to see which VMIDs are taken, and
  // reads the template's config (both remembered from then on).
  await createDesktop(deps)(makeSpec(desktopId()), recordingContext().ctx);
}, 60_000);

afterAll(async () => {
  await Promise.all([proxmoxSim?.stop(), guacamoleSim?.stop()]);
});

/** The requests one run of `fn` sent. */
async function requestsOf(fn: () => Promise<unknown>): Promise<string[]> {
  const from = sent.length;
  await fn();
  return sent.slice(from);
}

const VM_LISTS = [/^GET \/api2\/json\/cluster\/resources$/, /^GET \/api2\/json\/nodes\/[^/]+\/qemu$/];
const CONNECTION_LISTS = [/^GET \/guacamole\/api\/session\/data\/[^/]+\/(connections|users)$/];
const listing = (patterns: RegExp[]) => (request: string) => patterns.some((re) => re.test(request));

describe('a create on a site with thousands of VMs', () => {
  it('asks about its own VM and connection only, also when the create is delivered twice', async () => {
    const id = desktopId();
    const create = () => createDesktop(deps)(makeSpec(id), recordingContext().ctx);

    const first = await requestsOf(create);
    const vm = proxmoxSim.vms().find((v) => v.name === `desk-${id}`);
    expect(vm).toBeDefined();
    expect(first.filter(listing([...VM_LISTS, ...CONNECTION_LISTS]))).toEqual([]);
    // Every VM-addressed call is about the new VM, or the template it is cloned from.
    const vmids = new Set(first.flatMap((r) => /\/qemu\/(\d+)/.exec(r)?.[1] ?? []).map(Number));
    expect([...vmids].sort()).toEqual([vm?.vmid, 9000].sort());
    const connections = new Set(first.flatMap((r) => /\/connections\/([^/]+)/.exec(r)?.[1] ?? []));
    expect(connections.size).toBeLessThanOrEqual(1);

    // Delivered again (the edge never heard the result): one VM, one connection, and no list of the VMs (the
    // connection, which exists now, is looked up by its name, which Guacamole's API can only do from the list).
    const again = await requestsOf(create);
    expect(proxmoxSim.vms().filter((v) => v.name === `desk-${id}`)).toHaveLength(1);
    expect(guacamoleSim.connections().filter((c) => c.name === `desk-${id}`)).toHaveLength(1);
    expect(again.filter((r) => /\/clone$/.test(r))).toEqual([]);
    expect(again.filter(listing(VM_LISTS))).toEqual([]);
  });
});
