/**
 * The bridge's Proxmox VE driver: a thin typed client over the `proxmox-api` package. Every failure leaves as an
 * InfraError whose `retryable` says whether trying again can help.
 */
import proxmoxApi, { type Proxmox, type ProxmoxEngineOptions } from 'proxmox-api';
import { isRetryableTaskStatus, toInfraError } from './proxmox-errors';
import { hasNic, macOfNet, parseUpid, pickGuestIpv4 } from './proxmox-guest';
import { pollInterval, sleep } from '../sleep';
import {
  InfraError,
  type ProxmoxDisks,
  type ProxmoxDriver,
  type ProxmoxProbe,
  type ProxmoxSnapshots,
  type VmSnapshot,
  type VmSummary,
} from './types';

export interface ProxmoxDriverOptions {
  /** e.g. `https://pve1.lan:8006/api2/json` */
  url: string;
  /** `user@realm!tokenid` */
  tokenId: string;
  /** The token's UUID (lower case; proxmox-api refuses anything else). */
  tokenSecret: string;
  /** For tests, or to trust the cluster's own CA (an undici dispatcher in a wrapping fetch). */
  fetch?: typeof fetch;
  /** Per request; proxmox-api's default is 60 s. */
  timeoutMs?: number;
  /** How long allocateVmid keeps an id it handed out away from the next callers (default 10 min). */
  vmidQuarantineMs?: number;
  /** How long cloneVm waits for a clone it finds already running (after a re-sent POST) before giving up (default 10 min). */
  cloneResumeTimeoutMs?: number;
}

type EngineFetch = NonNullable<ProxmoxEngineOptions['fetch']>;

const API_PATH = '/api2/json';
const TASK_OK = /^(OK|WARNINGS: \d+)$/;
/** Consecutive failed status polls tolerated while waiting for a task, when each failure is retryable. */
const MAX_POLL_FAILURES = 5;
/** Task logs read when looking for the clone task behind an existing VM. */
const MAX_LOGS_READ = 10;
/** VMs whose net0 MAC is remembered for reading their guest address (getGuestIpv4). */
const MAX_MACS = 10_000;

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted.', 'AbortError');
}

/** Runs calls one at a time, in order (an in-process mutex). */
function createSerializer(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>) => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

/** `http(s)://host[:port]/api2/json` → proxmox-api's host/port/schema (it always appends /api2/json itself). */
function engineTarget(url: string): { host: string; port?: number; schema: 'http' | 'https' } {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`Proxmox url must be http(s): ${url}`);
  const path = u.pathname.replace(/\/+$/, '');
  if (path !== '' && path !== API_PATH) throw new Error(`Proxmox url must end in ${API_PATH}: ${url}`);
  return { host: u.hostname, port: u.port ? Number(u.port) : undefined, schema: u.protocol === 'http:' ? 'http' : 'https' };
}

function toConfig(raw: unknown): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  if (typeof raw !== 'object' || raw === null) return out;
  for (const [k, v] of Object.entries(raw)) if (typeof v === 'string' || typeof v === 'number') out[k] = v;
  return out;
}

function toSummary(r: Record<string, unknown>): VmSummary {
  const tags = typeof r.tags === 'string' ? r.tags.split(/[;,\s]+/).filter((t) => t !== '') : [];
  return {
    vmid: Number(r.vmid),
    node: String(r.node ?? ''),
    name: typeof r.name === 'string' ? r.name : '',
    status: String(r.status ?? 'unknown'),
    tags,
    ...(typeof r.lock === 'string' && r.lock !== '' ? { lock: r.lock } : {}),
    // Booleans come back as 1/0 (Perl; qemu-server's QemuServer.pm).
    template: r.template === 1 || r.template === '1' || r.template === true,
  };
}

function toSnapshot(s: Record<string, string | number>): VmSnapshot {
  return {
    name: String(s.name),
    snaptime: Number(s.snaptime ?? 0),
    description: String(s.description ?? ''),
    ...(s.parent !== undefined ? { parent: String(s.parent) } : {}),
    // Booleans come back as 1/0.
    withRam: s.vmstate === 1 || s.vmstate === '1',
  };
}

/**
 * proxmox-api sets Content-Length to the body's string length, which is wrong for any
 * non-ASCII parameter, and undici 8 (loaded by @kubernetes/client-node, and then the
 * global dispatcher for every fetch in the process) refuses a request that sets it at all
 * ("invalid content-length header"). fetch computes the right value from the body itself.
 */
function withoutContentLength(init: RequestInit | undefined): RequestInit | undefined {
  const given = init?.headers;
  if (!given) return init;
  if (given instanceof Headers || Array.isArray(given)) {
    const headers = new Headers(given);
    headers.delete('content-length');
    return { ...init, headers };
  }
  // proxmox-api's own form, a plain object: copied without the key, no Headers object per request.
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(given)) if (key.toLowerCase() !== 'content-length') headers[key] = value;
  return { ...init, headers };
}

export function createProxmoxDriver(opts: ProxmoxDriverOptions): ProxmoxDriver & ProxmoxProbe & ProxmoxSnapshots & ProxmoxDisks {
  const fetchImpl = opts.fetch ?? globalThis.fetch;
  // proxmox-api types its fetch with undici's own Request/Response classes; the global fetch is the same undici at runtime.
  const engineFetch = ((url: string | URL, init?: unknown) =>
    fetchImpl(url, withoutContentLength(init as RequestInit | undefined))) as unknown as EngineFetch;
  const pve: Proxmox.Api = proxmoxApi({
    ...engineTarget(opts.url),
    tokenID: opts.tokenId,
    tokenSecret: opts.tokenSecret,
    queryTimeout: opts.timeoutMs,
    fetch: engineFetch,
  });
  const quarantineMs = opts.vmidQuarantineMs ?? 10 * 60_000;
  const cloneResumeTimeoutMs = opts.cloneResumeTimeoutMs ?? 10 * 60_000;
  const handedOut = new Map<number, number>();
  const serialized = createSerializer();
  /** Per VMID range: where the next allocation looks, and the ids known taken (listed once, then as handed out). */
  const cursors = new Map<string, { next: number; taken: Set<number> }>();
  /** `node/vmid` → net0's MAC, from the last config read: the guest agent's NICs are matched against it. */
  const macs = new Map<string, string | null>();

  async function call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw toInfraError(e);
    }
  }

  const qemu = (node: string, vmid: number) => pve.nodes.$(node).qemu.$(vmid);

  /**
   * Every VM, read per node from `GET /nodes/{node}/qemu`, which reads the configs: live names, status and template
   * flags. `/cluster/resources` takes those from pvestatd's cache, up to 10 s old (pve-manager's API2Tools.pm
   * extract_vm_stats; pvestatd updates every 10 s).
   */
  async function listVms(): Promise<VmSummary[]> {
    const nodes: unknown[] = await call(() => pve.nodes.$get());
    const online = nodes
      .map((n) => n as { node?: unknown; status?: unknown })
      .filter((n) => typeof n.node === 'string' && n.status !== 'offline')
      .map((n) => String(n.node));
    const perNode = await Promise.all(
      online.map(async (node) => {
        const vms: unknown[] = await call(() => pve.nodes.$(node).qemu.$get());
        return vms.filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null).map((v) => toSummary({ ...v, node }));
      }),
    );
    return perNode.flat().sort((a, b) => a.vmid - b.vmid);
  }

  async function getVmConfig(node: string, vmid: number): Promise<Record<string, string | number>> {
    const config = toConfig(await call(() => qemu(node, vmid).config.$get()));
    const key = `${node}/${vmid}`;
    macs.delete(key);
    macs.set(key, macOfNet(config.net0));
    if (macs.size > MAX_MACS) macs.delete(macs.keys().next().value ?? '');
    return config;
  }

  async function getVmStatus(node: string, vmid: number): Promise<{ status: string; lock?: string }> {
    const raw: unknown = await call(() => qemu(node, vmid).status.current.$get());
    const st = toConfig(raw);
    return { status: String(st.status ?? 'unknown'), ...(st.lock !== undefined ? { lock: String(st.lock) } : {}) };
  }

  /**
   * The newest clone task of `templateVmid` whose log shows it creating disks for `newid` (`Logical volume
   * "vm-<newid>-disk-0" created.`), or null. The task id of a clone is the source vmid (qemu-server's clone_vm forks
   * its worker on the source), so the log is the only place that names the target.
   */
  async function findCloneTask(node: string, templateVmid: number, newid: number): Promise<string | null> {
    const tasks: unknown[] = await call(() =>
      pve.nodes.$(node).tasks.$get({ vmid: templateVmid, typefilter: 'qmclone', source: 'all', limit: 50 }),
    );
    const marker = `vm-${newid}-`;
    for (const task of tasks.slice(0, MAX_LOGS_READ)) {
      const upid = (task as { upid?: unknown }).upid;
      if (typeof upid !== 'string') continue;
      const lines: unknown[] = await call(() => pve.nodes.$(node).tasks.$(upid).log.$get({ limit: 50 }));
      if (lines.some((l) => String((l as { t?: unknown }).t ?? '').includes(marker))) return upid;
    }
    return null;
  }

  /**
   * `newid` already exists: proxmox-api re-sends a POST whose first attempt failed on the way back (proxmox-api's
   * ProxmoxEngine.ts resends once on a fetch failure), and a crashed caller retries. If the VM is our clone (our name,
   * or the temporary `lock: clone` config of a clone in progress), hand back its clone task.
   */
  async function resumeClone(o: Parameters<ProxmoxDriver['cloneVm']>[0], post: () => Promise<string>): Promise<string> {
    // That one VM's config, live: a site's whole inventory is not read for it.
    let existing: Record<string, string | number>;
    try {
      existing = await getVmConfig(o.node, o.newid);
    } catch (e) {
      if (!(e instanceof InfraError && /does not exist/.test(e.message))) throw e;
      // Gone from our node: the first attempt's task failed and removed its config (the id is free again), or
      // the id is taken on another node, which the POST sent again answers as it did.
      return call(post);
    }
    const name = existing.name === undefined ? '' : String(existing.name);
    const inProgress = existing.lock === 'clone' && (name === '' || name === `VM ${o.newid}`);
    if (name !== o.name && !inProgress) {
      throw new InfraError(`Proxmox: VM ${o.newid} already exists as '${name}' on ${o.node}`, 'proxmox', 500, false);
    }
    const upid = await findCloneTask(o.node, o.templateVmid, o.newid);
    if (upid) return upid;
    // Storage whose clone log does not name the new volume: wait for the clone lock to clear, then check the result.
    const deadline = Date.now() + cloneResumeTimeoutMs;
    for (;;) {
      const status = await getVmStatus(o.node, o.newid).catch((e: unknown) => {
        throw e instanceof InfraError && /does not exist/.test(e.message)
          ? new InfraError(`Proxmox: the clone to VM ${o.newid} failed (its config disappeared)`, 'proxmox', 500, true)
          : e;
      });
      if (status.lock !== 'clone') break;
      if (Date.now() > deadline) throw new InfraError(`Proxmox: VM ${o.newid} still locked (clone)`, 'proxmox', 500, true);
      await sleep(500);
    }
    const config = await getVmConfig(o.node, o.newid);
    if (config.name !== o.name) {
      throw new InfraError(`Proxmox: VM ${o.newid} already exists as '${String(config.name)}'`, 'proxmox', 500, false);
    }
    // The clone is complete and ours; any clone task of this template that ended OK serves as its handle.
    const tasks: unknown[] = await call(() =>
      pve.nodes.$(o.node).tasks.$get({ vmid: o.templateVmid, typefilter: 'qmclone', source: 'archive', limit: 50 }),
    );
    const ok = tasks.find((t) => (t as { status?: unknown }).status === 'OK') as { upid?: unknown } | undefined;
    if (typeof ok?.upid === 'string') return ok.upid;
    throw new InfraError(`Proxmox: VM ${o.newid} was cloned but its clone task is no longer listed`, 'proxmox', 500, true);
  }

  return {
    listVms,

    async findVmByName(name) {
      const matches = (await listVms()).filter((v) => v.name === name);
      return matches.find((v) => !v.template) ?? matches[0] ?? null;
    },

    allocateVmid(range) {
      const key = `${range.min}-${range.max}`;
      if (
        !Number.isInteger(range.min) ||
        !Number.isInteger(range.max) ||
        range.min < 100 ||
        range.max > 999_999_999 ||
        range.min > range.max
      ) {
        return Promise.reject(new InfraError(`Proxmox: invalid VMID range [${range.min}, ${range.max}]`, 'proxmox', 0, false));
      }
      // pve-manager's API2/Cluster.pm nextid never reserves, so allocations in this process are serialized and an id handed out stays
      // quarantined for quarantineMs: its clone may not be listed yet. Ids are handed out upwards from where the
      // last one was (next fit), each checked live with `nextid?vmid=`; the site's VMs are listed only to start
      // (the first allocation of this process) and again when the top of the range is reached, so a create does
      // not read an inventory of thousands of VMs.
      return serialized(async () => {
        const now = Date.now();
        for (const [id, until] of handedOut) if (until <= now) handedOut.delete(id);
        const scan = async (cursor: { next: number; taken: Set<number> }): Promise<number | null> => {
          for (let id = cursor.next; id <= range.max; id++) {
            cursor.next = id + 1;
            if (cursor.taken.has(id) || handedOut.has(id)) continue;
            try {
              await call(() => pve.cluster.nextid.$get({ vmid: id }));
            } catch (e) {
              // `?vmid=N` answers 400 {"errors":{"vmid":"VM N already exists"}} when someone else took it.
              if (e instanceof InfraError && e.status === 400 && /already exists/.test(e.message)) {
                cursor.taken.add(id);
                continue;
              }
              cursor.next = id;
              throw e;
            }
            handedOut.set(id, Date.now() + quarantineMs);
            cursor.taken.add(id);
            return id;
          }
          return null;
        };
        const current = cursors.get(key);
        const found = current ? await scan(current) : null;
        if (found !== null) return found;
        // From the bottom again, with what the site holds now (ids freed by destroys are free again).
        const fresh = { next: range.min, taken: new Set((await listVms()).map((v) => v.vmid)) };
        cursors.set(key, fresh);
        const again = await scan(fresh);
        if (again !== null) return again;
        throw new InfraError(`Proxmox: no free VMID in [${range.min}, ${range.max}]`, 'proxmox', 0, false);
      });
    },

    async cloneVm(o) {
      const post = () =>
        qemu(o.node, o.templateVmid).clone.$post({
          newid: o.newid,
          name: o.name,
          full: o.full,
          ...(o.description !== undefined ? { description: o.description } : {}),
          ...(o.snapname !== undefined ? { snapname: o.snapname } : {}),
        });
      try {
        return await call(post);
      } catch (e) {
        // qemu-server's clone_vm: a taken newid is refused synchronously with this text.
        if (e instanceof InfraError && /config file already exists/.test(e.message)) return resumeClone(o, post);
        throw e;
      }
    },

    async waitForTask(upid, waitOpts) {
      const parsed = parseUpid(upid);
      if (!parsed) throw new InfraError(`Proxmox: not a UPID: ${upid}`, 'proxmox', 0, false);
      const pollMs = waitOpts?.pollMs ?? 200;
      const signal = waitOpts?.signal;
      let failures = 0;
      for (let poll = 0; ; poll++) {
        if (signal?.aborted) throw abortError(signal);
        let status: Record<string, string | number> | null = null;
        try {
          // The task lives on the node named in the UPID.
          status = toConfig(await call(() => pve.nodes.$(parsed.node).tasks.$(upid).status.$get()));
          failures = 0;
        } catch (e) {
          if (!(e instanceof InfraError) || !e.retryable || ++failures > MAX_POLL_FAILURES) throw e;
        }
        if (status?.status === 'stopped') {
          const exit = String(status.exitstatus ?? 'unexpected status');
          if (TASK_OK.test(exit)) return;
          throw new InfraError(`Proxmox task ${parsed.type} ${parsed.id} failed: ${exit}`, 'proxmox', 500, isRetryableTaskStatus(exit));
        }
        await sleep(pollInterval(poll, pollMs), signal);
      }
    },

    async configureVm(node, vmid, config) {
      type ConfigPut = Parameters<ReturnType<typeof qemu>['config']['$put']>[0];
      await call(() => qemu(node, vmid).config.$put(config as unknown as ConfigPut));
    },

    getVmConfig,
    getVmStatus,

    async getVmUsage(node, vmid) {
      const [current, rrd] = await Promise.all([
        call(() => qemu(node, vmid).status.current.$get()),
        call(() => qemu(node, vmid).rrddata.$get({ timeframe: 'hour', cf: 'AVERAGE' })),
      ]);
      return { current: toConfig(current), rrd: Array.isArray(rrd) ? rrd.map((row: unknown) => toConfig(row)) : [] };
    },

    startVm: (node, vmid) => call(() => qemu(node, vmid).status.start.$post()),
    shutdownVm: (node, vmid, timeoutSeconds) => call(() => qemu(node, vmid).status.shutdown.$post({ timeout: timeoutSeconds })),
    stopVm: (node, vmid) => call(() => qemu(node, vmid).status.stop.$post()),
    // purge: also drop the VM from backup jobs, replication and HA (qemu-server's destroy_vm).
    destroyVm: (node, vmid) => {
      macs.delete(`${node}/${vmid}`);
      return call(() => qemu(node, vmid).$delete({ purge: true, 'destroy-unreferenced-disks': true }));
    },

    async listSnapshots(node, vmid) {
      const raw: unknown[] = await call(() => qemu(node, vmid).snapshot.$get());
      return raw
        .map(toConfig)
        .filter((s) => s.name !== 'current')
        .map((s) => toSnapshot(s));
    },
    snapshotVm: (node, vmid, snap) =>
      call(() =>
        qemu(node, vmid).snapshot.$post({
          snapname: snap.name,
          vmstate: snap.withRam,
          ...(snap.description !== undefined ? { description: snap.description } : {}),
        }),
      ),
    rollbackVm: (node, vmid, name, rollback) =>
      call(() =>
        qemu(node, vmid)
          .snapshot.$(name)
          .rollback.$post(rollback?.start ? { start: true } : {}),
      ),
    deleteSnapshot: (node, vmid, name) => call(() => qemu(node, vmid).snapshot.$(name).$delete()),
    moveDiskToVm: (node, vmid, disk, target) => {
      // The model types drive keys as an enum; ours come from the VMs' own configs.
      type MoveDisk = Parameters<ReturnType<typeof qemu>['move_disk']['$post']>[0];
      return call(() =>
        qemu(node, vmid).move_disk.$post({
          disk: disk as MoveDisk['disk'],
          'target-vmid': target.vmid,
          'target-disk': target.disk as MoveDisk['disk'],
        }),
      );
    },

    async version() {
      const v = toConfig(await call(() => pve.version.$get()));
      return { version: String(v.version ?? ''), release: String(v.release ?? '') };
    },

    async permissions(path) {
      const raw: unknown = await call(() => pve.access.permissions.$get(path ? { path } : {}));
      const out: Record<string, string[]> = {};
      if (typeof raw === 'object' && raw !== null)
        for (const [p, privs] of Object.entries(raw)) out[p] = Object.keys((privs ?? {}) as Record<string, unknown>);
      return out;
    },

    async storageType(storage) {
      const raw = toConfig(await call(() => pve.storage.$(storage).$get()));
      return String(raw.type ?? 'unknown');
    },

    async getGuestIpv4(node, vmid) {
      let reply: unknown;
      try {
        reply = await call(() => qemu(node, vmid).agent['network-get-interfaces'].$get());
      } catch (e) {
        // QemuServer/Agent.pm assert_agent_available: the phases before the guest is up are answers, not failures.
        if (e instanceof InfraError && /QEMU guest agent is not running|VM \d+ is not running/.test(e.message)) return null;
        throw e;
      }
      const result = typeof reply === 'object' && reply !== null ? (reply as { result?: unknown }).result : undefined;
      // The MAC of the last config read, while the guest still has a NIC with it; otherwise (none read yet, or
      // the vmid now belongs to another VM, or net0 was changed) the config is read again.
      const known = macs.get(`${node}/${vmid}`);
      if (known && hasNic(result, known)) return pickGuestIpv4(result, known);
      const config = await getVmConfig(node, vmid);
      return pickGuestIpv4(result, macOfNet(config.net0));
    },
  };
}
