/**
 * A contract-faithful Proxmox VE API simulator (plain node:http) for tests, local development and benchmarks; the
 * comments name the Proxmox sources (pve-http-server, pve-manager, qemu-server) each behaviour follows.
 *
 * Besides the PVE API under /api2/json it serves simulator-only control endpoints, without auth.
 * Product code never calls those; only tests and benchmarks do:
 *   GET    /__sim/stats   requests (in all and by endpoint), tasks by type, ms spent in task delays (sum and wall clock), faults injected
 *                         (by kind, and by endpoint)
 *   GET    /__sim/vms     every VM with its config, power state and guest IPv4
 *   POST   /__sim/faults  {"rate": 0..1, "kinds": [...], "seed"?: n} — see faults.ts for the kinds
 *   DELETE /__sim/faults  no more faults
 *   POST   /__sim/reset   templates only (and the start options' site VMs), no tasks, zero stats, the faults of the start options
 *   POST   /__sim/site-vms {"count": n} — n more stopped VMs of other teams on the first node (site-vms.ts)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { listen, readBody, readJson, simulatorServer } from '../shared/http-server';
import { FaultConfigSchema, type FaultConfig, FaultInjector, type FaultKind } from './faults';
import { authenticate, die, extractParams, PveError, paramError, sendBodiless, sendData, sendError, sendJson } from './http';
import { Listing, ROUTES, type Route } from './routes';
import { type EndpointSchema, loadEndpointSchemas, type RawValue, validateParams } from './schema';
import {
  Cluster,
  defaultTemplateConfig,
  type ProxmoxSimOptions,
  type SimStats,
  type SimTask,
  type SimTemplate,
  type VmConfig,
} from './state';
import { setTimeout as sleep } from 'node:timers/promises';

export type { FaultConfig, FaultKind } from './faults';
export type { ProxmoxSimOptions, SimTemplate } from './state';

export const DEFAULT_TOKEN = { id: 'root@pam!dev', secret: '11111111-2222-3333-4444-555555555555' };

const DATA_TEMPLATE = { vmid: 9001, node: 'pve1', name: 'ubuntu-data-template' };

/**
 * The dev stack's templates (`npm run dev`, the test stacks): the plain desktop of the defaults, and one with a data
 * disk (`scsi1` beside the OS disk) that a rebuild keeps; the bridge knows it as `ubuntu-data` (scripts/lib/local-config.ts).
 */
export const DEV_TEMPLATES: SimTemplate[] = [
  { vmid: 9000, node: 'pve1', name: 'ubuntu-desktop-template' },
  {
    ...DATA_TEMPLATE,
    config: {
      ...defaultTemplateConfig(DATA_TEMPLATE),
      net0: 'virtio=BC:24:11:5E:90:01,bridge=vmbr0,firewall=1',
      scsi1: 'local-lvm:base-9001-disk-1,size=64G',
    },
  },
];

export function defaultOptions(): ProxmoxSimOptions {
  return {
    host: '127.0.0.1',
    port: 0,
    nodes: ['pve1'],
    tokens: [DEFAULT_TOKEN],
    templates: [{ vmid: 9000, node: 'pve1', name: 'ubuntu-desktop-template' }],
    cloneDelayMs: 0,
    configDelayMs: 0,
    startDelayMs: 0,
    shutdownDelayMs: 0,
    stopDelayMs: 0,
    destroyDelayMs: 0,
    snapshotDelayMs: 0,
    vmstateDelayMsPerGiB: 0,
    rollbackDelayMs: 0,
    delsnapshotDelayMs: 0,
    bootDelayMs: 0,
    ipDelayMs: 0,
    authFailureDelayMs: 0,
    ipPrefix: '10.20',
    ipSeed: 0,
    faults: null,
    now: Date.now,
    statusCacheMs: 0,
    lockWaitMs: 10_000,
    desktopDelayMs: 0,
    siteVms: 0,
  };
}

export interface SimVmSnapshot {
  vmid: number;
  node: string;
  name: string | undefined;
  status: 'running' | 'stopped';
  lock: string | undefined;
  template: boolean;
  config: VmConfig;
  ipv4: string;
}

export interface ProxmoxSimulator {
  /** Base URL including /api2/json, e.g. http://127.0.0.1:8006/api2/json */
  url: string;
  port: number;
  stop(): Promise<void>;
  vms(): SimVmSnapshot[];
  vm(vmid: number): SimVmSnapshot | undefined;
  tasks(): SimTask[];
  stats(): SimStats & {
    faults: Partial<Record<FaultKind, number>>;
    /** Faults per endpoint, e.g. `{"POST /nodes/{node}/qemu/{vmid}/clone": {"task_error": 2}}`. */
    faultsByRoute: Record<string, Partial<Record<FaultKind, number>>>;
  };
  setFaults(config: FaultConfig | null): void;
  /** `count` more stopped VMs of other teams (site-vms.ts): a site whose inventory is not the bridge's alone. */
  addSiteVms(count: number): void;
  /** Back to the templates, no tasks, zero stats, the faults of the options. */
  reset(): void;
}

const API_PREFIX = '/api2/json';
const SiteVmsSchema = z.object({ count: z.number().int().min(0).max(100_000) });
/** A transient 500 as PVE produces it (pmxcfs without quorum): same status as a permanent failure, only the text differs. */
const TRANSIENT_500 = 'cluster not ready - no quorum?';

interface RouteMatch {
  route: Route;
  schema: EndpointSchema;
  pathParams: Record<string, string>;
}

interface CompiledRoute {
  route: Route;
  schema: EndpointSchema;
  /** The path's segments: a literal, or `{ param }` for a variable one. */
  template: Array<string | { param: string }>;
}

function compile(route: Route, schema: EndpointSchema): CompiledRoute {
  const template = route.path
    .split('/')
    .filter((s) => s !== '')
    .map((t) => (t.startsWith('{') && t.endsWith('}') ? { param: t.slice(1, -1) } : t));
  return { route, schema, template };
}

function matchRoute(routes: CompiledRoute[], method: string, path: string): RouteMatch | null {
  const segments = path.split('/').filter((s) => s !== '');
  for (const { route, schema, template } of routes) {
    if (route.method !== method || template.length !== segments.length) continue;
    const pathParams: Record<string, string> = {};
    const ok = template.every((t, i) => {
      const seg = segments[i] ?? '';
      if (typeof t === 'string') return t === seg;
      pathParams[t.param] = decodeURIComponent(seg);
      return true;
    });
    if (ok) return { route, schema, pathParams };
  }
  return null;
}

export async function startProxmoxSimulator(overrides: Partial<ProxmoxSimOptions> = {}): Promise<ProxmoxSimulator> {
  const options: ProxmoxSimOptions = { ...defaultOptions(), ...overrides };
  const cluster = new Cluster(options);
  const faults = new FaultInjector();
  faults.configure(options.faults);

  const schemas = new Map(loadEndpointSchemas().map((s) => [`${s.method} ${s.path}`, s]));
  const routes = ROUTES.map((route) => {
    const schema = schemas.get(`${route.method} ${route.path}`);
    if (!schema) throw new Error(`api-schema.json has no schema for ${route.method} ${route.path}`);
    return compile(route, schema);
  });

  async function api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    cluster.stats.requests += 1;
    const caller = authenticate(req, options.tokens);
    if ('reason' in caller) {
      if (options.authFailureDelayMs > 0) await sleep(options.authFailureDelayMs);
      sendBodiless(res, 401, caller.reason);
      return;
    }
    const method = req.method ?? 'GET';
    const path = url.pathname.slice(API_PREFIX.length) || '/';
    const match = matchRoute(routes, method, path);
    if (!match) {
      sendError(res, 501, `Method '${method} ${path}' not implemented`);
      return;
    }
    const raw: Record<string, RawValue> = extractParams(url, req.headers['content-type'], await readBody(req));
    for (const [key, value] of Object.entries(match.pathParams)) {
      // pve-manager's HTTPServer.pm: a body value may not contradict the path.
      if (raw[key] !== undefined && String(raw[key]) !== value)
        paramError({ [key]: 'duplicate parameter (already defined in URI) with conflicting values!' });
      raw[key] = value;
    }
    const checked = validateParams(match.schema, raw);
    if (!checked.ok) paramError(checked.errors);
    const { params } = checked;
    const node = params.node;
    if (node !== undefined && !cluster.hasNode(String(node))) {
      die(`hostname lookup '${node}' failed - failed to get address info for: ${node}: Name or service not known`);
    }

    const { route } = match;
    const byRoute = cluster.stats.requestsByRoute;
    byRoute[`${method} ${route.path}`] = (byRoute[`${method} ${route.path}`] ?? 0) + 1;
    const applicable: FaultKind[] = ['http_500', 'proxy_596', 'proxy_599'];
    if (route.path.includes('{vmid}') && method !== 'GET' && !route.agent) applicable.push('locked');
    if (route.startsTask) applicable.push('task_error');
    if (route.agent) applicable.push('agent_timeout');
    const fault = faults.draw(applicable, `${method} ${route.path}`);
    if (fault === 'http_500') die(TRANSIENT_500);
    // pve-http-server's proxy_request: pveproxy relays AnyEvent::HTTP's pseudo-status of a failed hop to
    // pvedaemon/another node. A 599 hop failed on the way there; a 596 timed out waiting for the answer, so the call
    // ran ("may still complete").
    if (fault === 'proxy_599') return sendBodiless(res, 599, 'Too many redirections');
    if (fault === 'locked') die(`can't lock file '/var/lock/qemu-server/lock-${params.vmid}.conf' - got timeout`);

    if (fault === 'proxy_596') {
      try {
        await route.handle({ cluster, params, caller, fault: null });
      } catch {
        // Whatever the call itself answered, success or error, is lost with the hop.
      }
      return sendBodiless(res, 596, 'Connection timed out');
    }
    const data = await route.handle({ cluster, params, caller, fault });
    if (data instanceof Listing) sendData(res, data.data, { total: data.total });
    else sendData(res, data);
  }

  /** Simulator-only control API: never part of the Proxmox contract, never called by product code. */
  async function control(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const key = `${req.method} ${url.pathname}`;
    if (key === 'GET /__sim/stats') return sendData(res, simulator.stats());
    if (key === 'GET /__sim/vms') return sendData(res, simulator.vms());
    if (key === 'POST /__sim/reset') {
      simulator.reset();
      return sendData(res, null);
    }
    if (key === 'POST /__sim/site-vms') {
      const parsed = SiteVmsSchema.safeParse(await readJson(req));
      if (!parsed.success) return sendJson(res, 400, 'Bad Request', { data: null, message: parsed.error.message });
      simulator.addSiteVms(parsed.data.count);
      return sendData(res, { vms: cluster.vms.size });
    }
    if (key === 'DELETE /__sim/faults') {
      simulator.setFaults(null);
      return sendData(res, null);
    }
    if (key === 'POST /__sim/faults') {
      const body = await readJson(req);
      const parsed = FaultConfigSchema.safeParse(body);
      if (!parsed.success) return sendJson(res, 400, 'Bad Request', { data: null, message: parsed.error.message });
      simulator.setFaults(parsed.data);
      return sendData(res, parsed.data);
    }
    sendJson(res, 404, 'Not Found', { data: null, message: `no simulator endpoint ${key}` });
  }

  const server = simulatorServer(
    async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://simulator');
      if (url.pathname.startsWith('/__sim/')) return control(req, res, url);
      if (url.pathname === API_PREFIX || url.pathname.startsWith(`${API_PREFIX}/`)) return api(req, res, url);
      sendJson(res, 404, 'Not Found', { data: null, message: 'not an API path' });
    },
    (res, e) => {
      if (e instanceof PveError) sendError(res, e.status, e.message, e.errors);
      else sendError(res, 500, e instanceof Error ? e.message : String(e));
    },
  );
  const listening = await listen(server, options.host, options.port, options.tls);
  const port = listening.port;

  const snapshot = (vmid: number): SimVmSnapshot | undefined => {
    const vm = cluster.vms.get(vmid);
    if (!vm) return undefined;
    const c = vm.config;
    return {
      vmid: vm.vmid,
      node: vm.node,
      name: c.name !== undefined ? String(c.name) : undefined,
      status: vm.status,
      lock: c.lock !== undefined ? String(c.lock) : undefined,
      template: Boolean(c.template),
      config: { ...c },
      ipv4: vm.ipv4,
    };
  };

  const simulator: ProxmoxSimulator = {
    url: `${listening.scheme}://${options.host}:${port}${API_PREFIX}`,
    port,
    async stop() {
      cluster.shutdown();
      await listening.close();
    },
    vms: () =>
      [...cluster.vms.keys()]
        .sort((a, b) => a - b)
        .map(snapshot)
        .filter((v) => v !== undefined),
    vm: snapshot,
    tasks: () => [...cluster.tasks.values()],
    stats: () => ({
      ...cluster.statsNow(),
      faults: Object.fromEntries(faults.counts),
      faultsByRoute: Object.fromEntries([...faults.byRoute].map(([route, counts]) => [route, Object.fromEntries(counts)])),
    }),
    setFaults: (config) => faults.configure(config),
    addSiteVms: (count) => cluster.addSiteVms(count),
    reset: () => {
      cluster.reset();
      faults.clearCounts();
      faults.configure(options.faults);
    },
  };
  return simulator;
}
