/**
 * What the simulators themselves say, never the edge's word: VMs from Proxmox's
 * live node list, connections and users from Guacamole's REST API (as its admin),
 * and the simulator-only control endpoints for faults and their counts. The REST reads
 * go through the faulted APIs, so they are only made while no faults are set.
 */
import { LOCAL } from '../../../scripts/lib/local-config';
import type { Stack } from '../../../scripts/lib/stack';

export interface PveVm {
  vmid: number;
  name: string;
  status: string;
  tags: string[];
  lock?: string;
  template: boolean;
  /** The guest's address as the simulator hands it out (GET /__sim/vms). */
  ipv4?: string;
}

export interface GuacConnection {
  identifier: string;
  name: string;
  /** The address the connection points at (GET …/connections/{id}/parameters). */
  hostname?: string;
}

export interface InfraSnapshot {
  vms: PveVm[];
  connections: GuacConnection[];
  users: string[];
  /** Proxmox tasks still running (GET /nodes/{node}/tasks?source=active). */
  activeTasks: number;
}

export const PROXMOX_FAULT_KINDS = ['http_500', 'proxy_596', 'proxy_599', 'task_error', 'locked', 'agent_timeout'] as const;
export const GUACAMOLE_FAULT_KINDS = ['http_500', 'http_403'] as const;
export type ProxmoxFaultKind = (typeof PROXMOX_FAULT_KINDS)[number];
export type GuacamoleFaultKind = (typeof GUACAMOLE_FAULT_KINDS)[number];

/** Faults counted by the simulators, keyed `<system>:<kind>` and `<system>:<METHOD path>`. */
export interface FaultCounts {
  byKind: Record<string, number>;
  /** endpoint → kind → count */
  byRoute: Record<string, Record<string, number>>;
}

interface ProxmoxStats {
  faults: Record<string, number>;
  faultsByRoute: Record<string, Record<string, number>>;
}
interface GuacamoleStats {
  faultsInjected: Record<string, number>;
  faultsInjectedByRoute: Record<string, Record<string, number>>;
}

const PVE_AUTH = { authorization: `PVEAPIToken=${LOCAL.proxmoxTokenId}=${LOCAL.proxmoxTokenSecret}` };

export class Infra {
  private readonly simBase: string;

  constructor(private readonly stack: Stack) {
    this.simBase = stack.proxmoxUrl.replace(/\/api2\/json$/, '');
  }

  async setFaults(config: {
    proxmox?: { rate: number; kinds: readonly ProxmoxFaultKind[]; seed: number };
    guacamole?: { rate: number; kinds: readonly GuacamoleFaultKind[]; seed: number };
  }): Promise<void> {
    const post = async (url: string, body: unknown) => {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`POST ${url} answered ${res.status}: ${await res.text()}`);
    };
    await Promise.all([
      config.proxmox ? post(`${this.simBase}/__sim/faults`, config.proxmox) : this.clearProxmoxFaults(),
      config.guacamole ? post(`${this.stack.guacamoleUrl}/__sim/faults`, config.guacamole) : this.clearGuacamoleFaults(),
    ]);
  }

  async clearFaults(): Promise<void> {
    await Promise.all([this.clearProxmoxFaults(), this.clearGuacamoleFaults()]);
  }

  private async clearProxmoxFaults(): Promise<void> {
    await fetch(`${this.simBase}/__sim/faults`, { method: 'DELETE' });
  }

  private async clearGuacamoleFaults(): Promise<void> {
    await fetch(`${this.stack.guacamoleUrl}/__sim/faults`, { method: 'DELETE' });
  }

  /** Everything injected so far, from both simulators' own counters. */
  async faultCounts(): Promise<FaultCounts> {
    const [pve, guac] = await Promise.all([
      fetch(`${this.simBase}/__sim/stats`).then(async (r) => ((await r.json()) as { data: ProxmoxStats }).data),
      fetch(`${this.stack.guacamoleUrl}/__sim/stats`).then(async (r) => (await r.json()) as GuacamoleStats),
    ]);
    const byKind: Record<string, number> = {};
    const byRoute: Record<string, Record<string, number>> = {};
    for (const [kind, n] of Object.entries(pve.faults)) byKind[`proxmox:${kind}`] = n;
    for (const [kind, n] of Object.entries(guac.faultsInjected)) if (n > 0) byKind[`guacamole:${kind}`] = n;
    for (const [route, counts] of Object.entries(pve.faultsByRoute)) byRoute[`proxmox ${route}`] = { ...counts };
    for (const [route, counts] of Object.entries(guac.faultsInjectedByRoute)) {
      byRoute[`guacamole ${route}`] = Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));
    }
    return { byKind, byRoute };
  }

  /** How many clone tasks Proxmox has started so far (simulator stats; never faulted). */
  async clonesStarted(): Promise<number> {
    const res = await fetch(`${this.simBase}/__sim/stats`);
    const stats = ((await res.json()) as { data: { tasks: { byType: Record<string, number> } } }).data;
    return stats.tasks.byType.qmclone ?? 0;
  }

  async snapshot(): Promise<InfraSnapshot> {
    const [vms, guac, activeTasks] = await Promise.all([this.vms(), this.guacamole(), this.activeTasks()]);
    return { vms, ...guac, activeTasks };
  }

  private async pve<T>(path: string): Promise<T> {
    const res = await fetch(`${this.stack.proxmoxUrl}${path}`, { headers: PVE_AUTH });
    if (!res.ok) throw new Error(`Proxmox GET ${path} answered ${res.status} ${res.statusText}`);
    return ((await res.json()) as { data: T }).data;
  }

  private async vms(): Promise<PveVm[]> {
    const [resources, simVms] = await Promise.all([
      // The node's own list reads the configs; /cluster/resources lags (pvestatd) and would misreport new VMs.
      this.pve<{ vmid: number; name?: string; status: string; tags?: string; lock?: string; template?: number }[]>('/nodes/pve1/qemu'),
      fetch(`${this.simBase}/__sim/vms`).then(async (r) => ((await r.json()) as { data: { vmid: number; ipv4: string }[] }).data),
    ]);
    const ips = new Map(simVms.map((v) => [v.vmid, v.ipv4]));
    return resources.map((r) => ({
      vmid: r.vmid,
      name: r.name ?? '',
      status: r.status,
      tags: (r.tags ?? '').split(/[;,\s]+/).filter(Boolean),
      ...(r.lock ? { lock: r.lock } : {}),
      template: r.template === 1,
      ipv4: ips.get(r.vmid),
    }));
  }

  private async activeTasks(): Promise<number> {
    const tasks = await this.pve<unknown[]>('/nodes/pve1/tasks?source=active');
    return tasks.length;
  }

  private async guacamole(): Promise<{ connections: GuacConnection[]; users: string[] }> {
    const login = await fetch(`${this.stack.guacamoleUrl}/api/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: LOCAL.guacamoleUser, password: LOCAL.guacamolePassword }),
    });
    if (!login.ok) throw new Error(`Guacamole login answered ${login.status}`);
    const { authToken, dataSource } = (await login.json()) as { authToken: string; dataSource: string };
    const get = async <T>(path: string): Promise<T> => {
      const res = await fetch(`${this.stack.guacamoleUrl}/api/session/data/${dataSource}${path}`, {
        headers: { 'Guacamole-Token': authToken },
      });
      if (!res.ok) throw new Error(`Guacamole GET ${path} answered ${res.status}`);
      return (await res.json()) as T;
    };
    try {
      const [connections, users] = await Promise.all([
        get<Record<string, { identifier: string; name: string }>>('/connections'),
        get<Record<string, { username: string }>>('/users'),
      ]);
      const withHosts = await Promise.all(
        Object.values(connections).map(async (c) => {
          const parameters = await get<Record<string, string>>(`/connections/${encodeURIComponent(c.identifier)}/parameters`);
          return { identifier: c.identifier, name: c.name, hostname: parameters.hostname };
        }),
      );
      return { connections: withHosts, users: Object.values(users).map((u) => u.username) };
    } finally {
      await fetch(`${this.stack.guacamoleUrl}/api/tokens/${authToken}`, { method: 'DELETE' });
    }
  }
}

/** `after - before`, per key (counters only grow). */
export function faultDelta(before: FaultCounts, after: FaultCounts): FaultCounts {
  const byKind: Record<string, number> = {};
  for (const [k, n] of Object.entries(after.byKind)) {
    const d = n - (before.byKind[k] ?? 0);
    if (d > 0) byKind[k] = d;
  }
  const byRoute: Record<string, Record<string, number>> = {};
  for (const [route, counts] of Object.entries(after.byRoute)) {
    for (const [k, n] of Object.entries(counts)) {
      const d = n - (before.byRoute[route]?.[k] ?? 0);
      if (d > 0) byRoute[route] = { ...byRoute[route], [k]: d };
    }
  }
  return { byKind, byRoute };
}
