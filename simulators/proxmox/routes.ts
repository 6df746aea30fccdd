/**
 * The endpoints the simulator implements, with PVE's own checks, texts and sync-vs-task split (qemu-server's
 * PVE/API2/Qemu.pm, pve-manager's Cluster.pm and Tasks.pm). Parameters arrive validated against api-schema.json.
 */
import { randomUUID } from 'node:crypto';
import type { FaultKind } from './faults';
import { agentState, assertAgentAnswers, guestInterfaces, macOf } from './guest';
import { type Caller, die, paramError } from './http';
import { configPrivilege } from './permissions';
import type { Params } from './schema';
import { DISK_ROUTES, deleteDrive } from './disks';
import { SNAPSHOT_ROUTES, snapshotOf } from './snapshots';
import { Cluster, isUpid, noSuchVm, type SimTask, type SimVm, type VmConfig } from './state';
import { STORAGE_TYPES, STORAGES, storageConfig, storageOf } from './storage';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RouteContext {
  cluster: Cluster;
  params: Params;
  caller: Caller;
  /** The fault drawn for this request, when it is one the handler applies (task_error, agent_timeout). */
  fault: FaultKind | null;
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  /** Starts a task: eligible for the `task_error` fault. */
  startsTask?: boolean;
  /** Talks to the guest agent: eligible for the `agent_timeout` fault. */
  agent?: boolean;
  handle(ctx: RouteContext): unknown;
}

/** A list reply with PVE's sibling `total` (task log, task list). */
export class Listing {
  constructor(
    readonly data: unknown[],
    readonly total: number,
  ) {}
}

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;
/** Parameters that steer an update and are never written to the config. */
const UPDATE_CONTROL = new Set(['node', 'vmid', 'delete', 'digest', 'skiplock', 'force', 'revert', 'background_delay']);
/** Keys a clone never copies: the source's own state, and a snapshot's bookkeeping. */
const SNAPSHOT_ONLY_KEYS = new Set(['template', 'lock', 'parent', 'snaptime', 'vmstate', 'runningmachine', 'runningcpu']);
const DISK_KEY = /^(scsi|virtio|sata|ide)\d+$|^efidisk0$|^tpmstate0$/;
/** The lock-timeout texts of pve-common's lock_file_full, used by the task_error fault. */
const STORAGE_LOCK_TIMEOUT = "can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout";

function int(p: Params, key: string): number {
  return Number(p[key]);
}
function opt(p: Params, key: string): string | undefined {
  const v = p[key];
  return v === undefined ? undefined : String(v);
}

function splitList(v: string | undefined): string[] {
  return (v ?? '').split(/[,;\s\0]+/).filter((s) => s !== '');
}

function memoryMiB(config: VmConfig): number {
  const m = /^(?:current=)?(\d+)/.exec(String(config.memory ?? '512'));
  return Number(m?.[1] ?? 512);
}

function vmName(vm: SimVm): string {
  // qemu-server's QemuServer.pm vmstatus: a VM without a name (e.g. the temporary config of a running clone) is "VM
  // <id>".
  return vm.config.name !== undefined ? String(vm.config.name) : `VM ${vm.vmid}`;
}

function uptime(vm: SimVm, now: number): number {
  return vm.status === 'running' && vm.startedAt ? Math.floor((now - vm.startedAt) / 1000) : 0;
}

function vmStatus(vm: SimVm, now: number): Record<string, unknown> {
  const c = vm.config;
  const running = vm.status === 'running';
  return {
    vmid: vm.vmid,
    name: vmName(vm),
    status: vm.status,
    cpus: Number(c.cores ?? 1) * Number(c.sockets ?? 1),
    maxmem: memoryMiB(c) * MIB,
    mem: running ? Math.floor((memoryMiB(c) * MIB) / 3) : 0,
    maxdisk: 32 * GIB,
    disk: 0,
    cpu: running ? 0.012 : 0,
    uptime: uptime(vm, now),
    netin: running ? 184_320 : 0,
    netout: running ? 20_480 : 0,
    diskread: running ? 512 * MIB : 0,
    diskwrite: running ? 64 * MIB : 0,
    ...(running ? { pid: 200_000 + vm.vmid } : {}),
    ...(c.tags !== undefined ? { tags: String(c.tags) } : {}),
    ...(c.lock !== undefined ? { lock: String(c.lock) } : {}),
    ...(c.template ? { template: 1 } : {}),
  };
}

/** pvestatd's pve2-vm RRAs: 70 rows each, one row per step (seconds) of the timeframe. */
const RRD_STEP: Record<string, number> = { hour: 60, day: 1800, week: 10_800, month: 43_200, year: 604_800 };

/**
 * GET …/rrddata (PVE::API2Tools / RRD.pm): 70 rows, oldest first, each with its `time` (aligned to the step); rows from
 * before the VM's current run carry only `time` (the RRD holds unknown there and PVE drops such fields). cpu is a
 * fraction of maxcpu, mem and maxmem bytes, netin/netout/diskread/diskwrite bytes per second. The values wander
 * deterministically (by vmid and time) so charts of the simulator look like a desktop in use.
 */
function rrdData(vm: SimVm, timeframe: string, now: number): Record<string, number>[] {
  const step = RRD_STEP[timeframe] ?? 60;
  const last = Math.floor(now / 1000 / step) * step;
  const c = vm.config;
  const maxcpu = Number(c.cores ?? 1) * Number(c.sockets ?? 1);
  const maxmem = memoryMiB(c) * MIB;
  const since = vm.status === 'running' && vm.startedAt ? Math.floor(vm.startedAt / 1000 / step) * step : Number.POSITIVE_INFINITY;
  const rows: Record<string, number>[] = [];
  for (let i = 69; i >= 0; i--) {
    const time = last - i * step;
    if (time < since) {
      rows.push({ time });
      continue;
    }
    const wave = (period: number, phase: number) => 0.5 + 0.5 * Math.sin(time / step / period + vm.vmid + phase);
    rows.push({
      time,
      cpu: round(0.02 + 0.35 * wave(7, 0) * wave(3, 1)),
      maxcpu,
      mem: Math.floor(maxmem * (0.3 + 0.25 * wave(11, 2))),
      maxmem,
      disk: 0,
      maxdisk: 32 * GIB,
      netin: round(2_000 + 180_000 * wave(5, 3) ** 3),
      netout: round(1_000 + 40_000 * wave(5, 4) ** 3),
      diskread: round(50_000 * wave(13, 5) ** 4),
      diskwrite: round(120_000 * wave(9, 6) ** 4),
    });
  }
  return rows;
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/**
 * pve-manager's Cluster.pm resources: vmid, node and type from the cluster's vmlist, name/status/template and the sizes
 * from pvestatd's last broadcast (`status: "unknown"` and no name before the first one), lock and tags from the config.
 */
function resourceOf(cluster: Cluster, vm: SimVm): Record<string, unknown> {
  const stats = cluster.statusCache.stats(vm.vmid, () => cluster.liveStats(vm));
  const c = vm.config;
  return {
    id: `qemu/${vm.vmid}`,
    type: 'qemu',
    node: vm.node,
    vmid: vm.vmid,
    ...(stats ?? { status: 'unknown' }),
    ...(c.tags !== undefined ? { tags: String(c.tags) } : {}),
    ...(c.lock !== undefined ? { lock: String(c.lock) } : {}),
  };
}

function taskStatus(task: SimTask): Record<string, unknown> {
  return {
    upid: task.upid,
    node: task.node,
    pid: task.pid,
    pstart: task.pstart,
    starttime: task.starttime,
    type: task.type,
    id: task.id,
    ...Cluster.splitUser(task.user),
    status: task.status,
    ...(task.exitstatus !== undefined ? { exitstatus: task.exitstatus } : {}),
  };
}

function findTask(ctx: RouteContext): SimTask {
  const upid = String(ctx.params.upid);
  if (!isUpid(upid)) paramError({ upid: 'unable to parse worker upid' });
  const task = ctx.cluster.tasks.get(upid);
  if (!task || task.node !== ctx.params.node) paramError({ upid: 'no such task' });
  return task;
}

/** New identity for a clone (qemu-server's clone_vm): fresh MACs, smbios1 uuid and vmgenid; disks renamed for the new VM. */
function cloneConfig(
  src: SimVm,
  source: VmConfig,
  newid: number,
  p: Params,
  full: boolean,
  cluster: Cluster,
): { config: VmConfig; log: string[] } {
  const config: VmConfig = {};
  const log: string[] = [];
  let diskIndex = 0;
  for (const [key, value] of Object.entries(source)) {
    if (SNAPSHOT_ONLY_KEYS.has(key) || /^unused\d+$/.test(key)) continue;
    let v = value;
    if (/^net\d+$/.test(key)) {
      const mac = macOf(value);
      v = mac ? String(value).replace(mac, cluster.nextMac()) : value;
    } else if (key === 'smbios1') {
      v = String(value).replace(/uuid=[0-9a-f-]+/i, `uuid=${randomUUID()}`);
    } else if (key === 'vmgenid') {
      v = randomUUID();
    } else if (DISK_KEY.test(key)) {
      const [volid = '', ...rest] = String(value).split(',');
      const storage = volid.split(':')[0] ?? 'local-lvm';
      if (/cloudinit/.test(volid)) {
        v = [`${storage}:vm-${newid}-cloudinit`, ...rest].join(',');
      } else if (!rest.includes('media=cdrom')) {
        const name = `vm-${newid}-disk-${diskIndex++}`;
        log.push(`create ${full ? 'full' : 'linked'} clone of drive ${key} (${volid})`);
        // lvcreate's own output line, as it appears in real clone logs on LVM-thin.
        log.push(`  Logical volume "${name}" created.`);
        // A linked clone of a template names its base volume; one of a snapshot is a volume of its own.
        const linked = src.config.template ? `${volid}/${name}` : `${storage}:${name}`;
        const target = full ? `${opt(p, 'storage') ?? storage}:${name}` : linked;
        v = [target, ...rest].join(',');
      }
    }
    config[key] = v;
  }
  config.name = opt(p, 'name') ?? `Copy-of-VM-${src.config.name ?? src.vmid}`;
  const description = opt(p, 'description');
  if (description !== undefined) config.description = description;
  return { config, log };
}

function firstDisk(vm: SimVm): [string, string] | undefined {
  for (const [key, value] of Object.entries(vm.config)) {
    const volid = String(value).split(',')[0] ?? '';
    if (DISK_KEY.test(key) && !String(value).includes('media=cdrom') && !/cloudinit/.test(volid)) return [key, volid];
  }
  return undefined;
}

/** Checks of update_vm_api that happen before the reply; returns the change to apply (now for PUT, in the task for POST). */
function prepareUpdate(ctx: RouteContext): () => void {
  const { cluster, params } = ctx;
  const vm = cluster.vmOn(String(params.node), int(params, 'vmid'));
  cluster.checkLock(vm, params.skiplock);
  const digest = opt(params, 'digest');
  if (digest !== undefined && digest !== cluster.digest(vm.config)) die('checksum mismatch (file change by other user?)');
  const deletes = splitList(opt(params, 'delete'));
  const changes = Object.entries(params).filter(([k]) => !UPDATE_CONTROL.has(k));
  // qemu-server's update_vm_api `$check_vm_modify_config_perm`: each option needs its own VM.Config.* privilege.
  for (const key of [...changes.map(([k]) => k), ...deletes]) ctx.caller.privileges.check(`/vms/${vm.vmid}`, configPrivilege(key));
  for (const [k] of changes) {
    if (deletes.includes(k)) paramError({ delete: `you can't use '-${k}' and '-delete ${k}' at the same time` });
  }
  return () => {
    for (const k of deletes) deleteDrive(vm, k, params.force === 1);
    for (const [k, v] of changes) {
      // PVE stores tags de-duplicated and sorted, `;`-separated (GuestHelpers get_unique_tags).
      vm.config[k] = k === 'tags' ? [...new Set(splitList(String(v)))].sort().join(';') : v;
    }
  };
}

function agentVm(ctx: RouteContext, command: string): SimVm {
  const vm = ctx.cluster.vmOn(String(ctx.params.node), int(ctx.params, 'vmid'));
  // PVE 9 (qemu-server's API2/Qemu/Agent.pm): read-only agent commands need VM.GuestAgent.Audit.
  ctx.caller.privileges.check(`/vms/${vm.vmid}`, 'VM.GuestAgent.Audit');
  assertAgentAnswers(vm, ctx.cluster.now(), ctx.fault, command);
  return vm;
}

export const ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/version',
    handle: () => ({ version: '9.1.1', release: '9.1', repoid: '42d5b7a1' }),
  },
  {
    method: 'GET',
    path: '/nodes',
    handle: ({ cluster }) =>
      cluster.options.nodes.map((node) => ({
        node,
        status: 'online',
        type: 'node',
        id: `node/${node}`,
        level: '',
        maxcpu: 64,
        maxmem: 256 * GIB,
        mem: 48 * GIB,
        cpu: 0.08,
        uptime: 1_209_600,
        ssl_fingerprint: '5F:3A:9C:1E:77:0B:D4:2A:6E:81:C3:94:AF:10:5D:E2:38:7B:C6:09:4F:D1:AA:62:1C:E8:53:B0:7A:2D:96:F4',
      })),
  },
  {
    method: 'GET',
    path: '/cluster/resources',
    handle: ({ cluster, params, caller }) => {
      const type = opt(params, 'type');
      // Guests are listed only where the caller has VM.Audit (Cluster.pm: `$rpcenv->check($authuser, "/vms/$vmid", ['VM.Audit'], 1)`).
      const vms = [...cluster.vms.values()]
        .filter(() => caller.privileges.has('VM.Audit'))
        .sort((a, b) => a.vmid - b.vmid)
        .map((vm) => resourceOf(cluster, vm));
      const nodes = cluster.options.nodes.map((node) => ({
        id: `node/${node}`,
        type: 'node',
        node,
        status: 'online',
        level: '',
        maxcpu: 64,
        cpu: 0.08,
        maxmem: 256 * GIB,
        mem: 48 * GIB,
        maxdisk: 100 * GIB,
        disk: 12 * GIB,
        uptime: 1_209_600,
        'cgroup-mode': 2,
      }));
      const storages = cluster.options.nodes.flatMap((node) =>
        STORAGES.map((storage) => ({
          id: `storage/${node}/${storage}`,
          type: 'storage',
          node,
          storage,
          status: 'available',
          plugintype: STORAGE_TYPES[storage],
          content: storageConfig(storage).content,
          shared: STORAGE_TYPES[storage] === 'lvm' ? 1 : 0,
          maxdisk: 900 * GIB,
          disk: 120 * GIB,
        })),
      );
      if (type === 'vm') return vms;
      if (type === 'node') return nodes;
      if (type === 'storage') return storages;
      if (type === 'sdn') return [];
      return [...nodes, ...storages, ...vms];
    },
  },
  {
    method: 'GET',
    path: '/cluster/nextid',
    // pve-manager's API2/Cluster.pm nextid: never reserves; answered as a string.
    handle: ({ cluster, params }) => {
      const wanted = params.vmid;
      if (wanted !== undefined) {
        if (cluster.vms.has(Number(wanted))) paramError({ vmid: `VM ${wanted} already exists` });
        return String(wanted);
      }
      for (let id = 100; id < 1_000_000; id++) if (!cluster.vms.has(id)) return String(id);
      die('unable to get any free VMID in range [100, 1000000)');
    },
  },
  {
    method: 'GET',
    path: '/nodes/{node}/qemu',
    // qemu-server's vmlist: read from the configs (live), only VMs the caller has VM.Audit on.
    handle: ({ cluster, params, caller }) =>
      [...cluster.vms.values()]
        .filter((vm) => vm.node === params.node && caller.privileges.has('VM.Audit'))
        .map((vm) => vmStatus(vm, cluster.now())),
  },
  {
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/clone',
    startsTask: true,
    handle: (ctx) => {
      const { cluster, params } = ctx;
      const node = String(params.node);
      const vmid = int(params, 'vmid');
      const newid = int(params, 'newid');
      const src = cluster.vmOn(node, vmid);
      // qemu-server's clone_vm permissions: VM.Clone on the source, VM.Allocate on the new id, space on the target
      // storage.
      ctx.caller.privileges.check(`/vms/${vmid}`, 'VM.Clone');
      ctx.caller.privileges.check(`/vms/${newid}`, 'VM.Allocate');
      const snapname = opt(params, 'snapname');
      // clone_vm: the copy is made of the snapshot's config and disks when one is named.
      const source = snapname !== undefined ? snapshotOf(src, snapname) : src.config;
      cluster.checkLock(src);
      const isTemplate = Boolean(src.config.template);
      // qemu-server's clone_vm: full defaults to 1 for a normal VM and to a linked clone for a template.
      const full = params.full !== undefined ? params.full === 1 : !isTemplate;
      if (!full) {
        if (params.storage !== undefined) die("parameter 'storage' not allowed for linked clones");
        if (params.format !== undefined) die("parameter 'format' not allowed for linked clones");
        // volume_has_feature 'clone': from a template's base volume, or from a snapshot on LVM-thin.
        const disk = firstDisk(src);
        const fromSnapshot = snapname !== undefined && disk !== undefined && STORAGE_TYPES[storageOf(disk[1])] === 'lvmthin';
        if (!isTemplate && disk && !fromSnapshot) die(`Linked clone feature is not supported for '${disk[1]}' (${disk[0]})`);
      }
      const target = opt(params, 'target');
      if (target !== undefined && target !== node) die(`can't clone VM to node '${target}' (VM uses local storage)`);
      const storage = opt(params, 'storage');
      if (storage !== undefined && !STORAGES.includes(storage)) die(`storage '${storage}' does not exist`);
      if (full) ctx.caller.privileges.check(`/storage/${storage ?? 'local-lvm'}`, 'Datastore.AllocateSpace');
      ctx.caller.privileges.check('/sdn/zones/localnetwork/vmbr0', 'SDN.Use');
      if (cluster.vms.has(newid)) die(`unable to create VM ${newid}: config file already exists`);

      const { config, log: diskLog } = cloneConfig(src, source, newid, params, full, cluster);
      // The new VM exists from now on, as a temporary config holding `lock: clone`.
      const vm: SimVm = {
        vmid: newid,
        node,
        config: { lock: 'clone', description: ' qmclone temporary file\n' },
        status: 'stopped',
        ipv4: cluster.nextIpv4(),
        desktop: src.desktop,
      };
      cluster.vms.set(newid, vm);
      const task = cluster.runTask({
        node,
        type: 'qmclone',
        id: String(vmid), // the task id of a clone is the source vmid
        user: ctx.caller.userid,
        delayMs: cluster.options.cloneDelayMs,
        // qemu-server's clone_vm: the worker holds the new VM's config flock for the whole copy, so calls on it wait.
        flock: newid,
        begin: (log) => log.push(...diskLog),
        // clone_vm: the config (name included) is written after each disk, still locked.
        midway: () => {
          if (cluster.vms.get(newid) === vm) vm.config = { ...config, lock: 'clone' };
        },
        complete: (log) => {
          if (full) log.push('transferred 32.0 GiB of 32.0 GiB (100.00%)');
          vm.config = config;
        },
        // A failed clone removes what it created (qemu-server's clone_vm error path).
        onError: () => {
          if (cluster.vms.get(newid) === vm) cluster.vms.delete(newid);
        },
        injectedError: ctx.fault === 'task_error' ? `clone failed: ${STORAGE_LOCK_TIMEOUT}` : undefined,
      });
      return task.upid;
    },
  },
  {
    method: 'GET',
    path: '/nodes/{node}/qemu/{vmid}/config',
    handle: ({ cluster, params, caller }) => {
      const vm = cluster.vmOn(String(params.node), int(params, 'vmid'));
      caller.privileges.check(`/vms/${vm.vmid}`, 'VM.Audit');
      const snapshot = opt(params, 'snapshot');
      const config = snapshot !== undefined ? snapshotOf(vm, snapshot) : vm.config;
      const out: VmConfig = { ...config, digest: cluster.digest(config) };
      // Real PVE never returns the cloud-init password in clear text.
      if (out.cipassword !== undefined) out.cipassword = '**********';
      return out;
    },
  },
  {
    method: 'PUT',
    path: '/nodes/{node}/qemu/{vmid}/config',
    // The synchronous update runs under the VM's flock (qemu-server's update_vm_api `lock_config`): during a clone it
    // waits.
    handle: async (ctx) => {
      const vmid = int(ctx.params, 'vmid');
      ctx.cluster.vmOn(String(ctx.params.node), vmid);
      await ctx.cluster.withFlock(vmid, () => prepareUpdate(ctx)());
      return null;
    },
  },
  {
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/config',
    startsTask: true,
    handle: async (ctx) => {
      const { cluster, params } = ctx;
      const apply = prepareUpdate(ctx);
      const task = cluster.runTask({
        node: String(params.node),
        type: 'qmconfig',
        id: String(params.vmid),
        user: ctx.caller.userid,
        delayMs: cluster.options.configDelayMs,
        complete: () => apply(),
        injectedError:
          ctx.fault === 'task_error' ? `can't lock file '/var/lock/qemu-server/lock-${params.vmid}.conf' - got timeout` : undefined,
      });
      // update_vm_api: with background_delay the call waits that long and answers null if the task ended OK.
      const waitS = params.background_delay;
      if (waitS === undefined) return task.upid;
      const deadline = Date.now() + Number(waitS) * 1000;
      while (task.status === 'running' && Date.now() < deadline) await sleep(Math.min(50, cluster.options.configDelayMs));
      if (task.status === 'running') return task.upid;
      if (task.exitstatus !== 'OK') die(task.exitstatus ?? 'unexpected status');
      return null;
    },
  },
  {
    method: 'GET',
    path: '/nodes/{node}/qemu/{vmid}/status/current',
    handle: ({ cluster, params, caller }) => {
      const vm = cluster.vmOn(String(params.node), int(params, 'vmid'));
      caller.privileges.check(`/vms/${vm.vmid}`, 'VM.Audit');
      const running = vm.status === 'running';
      return {
        ...vmStatus(vm, cluster.now()),
        qmpstatus: vm.status,
        ha: { managed: 0 },
        ...(agentState(vm.config) === 'enabled' ? { agent: 1 } : {}),
        ...(running ? { 'running-machine': 'pc-i440fx-9.0+pve0', 'running-qemu': '9.0.2' } : {}),
      };
    },
  },
  {
    method: 'GET',
    path: '/nodes/{node}/qemu/{vmid}/rrddata',
    handle: ({ cluster, params, caller }) => {
      const vm = cluster.vmOn(String(params.node), int(params, 'vmid'));
      caller.privileges.check(`/vms/${vm.vmid}`, 'VM.Audit');
      return rrdData(vm, String(params.timeframe), cluster.now());
    },
  },
  {
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/status/start',
    startsTask: true,
    handle: (ctx) => {
      const { cluster, params } = ctx;
      const vm = cluster.vmOn(String(params.node), int(params, 'vmid'));
      ctx.caller.privileges.check(`/vms/${vm.vmid}`, 'VM.PowerMgmt');
      return cluster.runTask({
        node: vm.node,
        type: 'qmstart',
        id: String(vm.vmid),
        user: ctx.caller.userid,
        delayMs: cluster.options.startDelayMs,
        flock: vm.vmid,
        // vm_start: these start errors are reported by the task, not the HTTP call.
        begin: () => {
          cluster.checkLock(vm, params.skiplock);
          if (vm.config.template) throw new Error("you can't start a vm if it's a template");
          if (vm.status === 'running') throw new Error(`VM ${vm.vmid} already running`);
        },
        complete: () => cluster.bootGuest(vm),
        injectedError:
          ctx.fault === 'task_error' ? `can't lock file '/var/lock/qemu-server/lock-${vm.vmid}.conf' - got timeout` : undefined,
      }).upid;
    },
  },
  {
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/status/stop',
    startsTask: true,
    handle: (ctx) => {
      const { cluster, params } = ctx;
      const vm = cluster.vmOn(String(params.node), int(params, 'vmid'));
      ctx.caller.privileges.check(`/vms/${vm.vmid}`, 'VM.PowerMgmt');
      return cluster.runTask({
        node: vm.node,
        type: 'qmstop',
        id: String(vm.vmid),
        user: ctx.caller.userid,
        delayMs: vm.status === 'running' ? cluster.options.stopDelayMs : 0,
        flock: vm.vmid,
        begin: () => cluster.checkLock(vm, params.skiplock),
        // A hard stop of a stopped VM is OK (qemu-server's vm_stop).
        complete: () => cluster.haltGuest(vm),
        injectedError:
          ctx.fault === 'task_error' ? `can't lock file '/var/lock/qemu-server/lock-${vm.vmid}.conf' - got timeout` : undefined,
      }).upid;
    },
  },
  {
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/status/shutdown',
    startsTask: true,
    handle: (ctx) => {
      const { cluster, params } = ctx;
      const vm = cluster.vmOn(String(params.node), int(params, 'vmid'));
      ctx.caller.privileges.check(`/vms/${vm.vmid}`, 'VM.PowerMgmt');
      const limitMs = (params.timeout !== undefined ? Number(params.timeout) : 60) * 1000;
      const guestMs = vm.status === 'running' ? cluster.options.shutdownDelayMs : 0;
      const timedOut = guestMs > limitMs;
      return cluster.runTask({
        node: vm.node,
        type: 'qmshutdown',
        id: String(vm.vmid),
        user: ctx.caller.userid,
        delayMs: Math.min(guestMs, limitMs),
        flock: vm.vmid,
        begin: () => cluster.checkLock(vm, params.skiplock),
        complete: (log) => {
          if (timedOut) {
            // qs _do_vm_stop: after the timeout either kill (forceStop) or fail the task.
            if (params.forceStop !== 1) throw new Error('VM quit/powerdown failed - got timeout');
            log.push('VM still running - terminating now with SIGTERM');
          }
          cluster.haltGuest(vm);
        },
        injectedError:
          ctx.fault === 'task_error' ? `can't lock file '/var/lock/qemu-server/lock-${vm.vmid}.conf' - got timeout` : undefined,
      }).upid;
    },
  },
  {
    method: 'DELETE',
    path: '/nodes/{node}/qemu/{vmid}',
    startsTask: true,
    /**
     * qemu-server's destroy_vm: `$early_checks` run in the request (the config must exist, protection, running), and
     * again in the worker under the VM's flock. A second destroy of the same VM passes the first round, waits for the
     * first one's flock (≤ lockWaitMs, else `can't lock file`) and then finds the config gone: `Configuration file …
     * does not exist`.
     */
    handle: (ctx) => {
      const { cluster, params } = ctx;
      const node = String(params.node);
      const vmid = int(params, 'vmid');
      const earlyChecks = () => {
        const vm = cluster.vmOn(node, vmid);
        if (vm.config.protection) die(`can't remove VM ${vm.vmid} - protection mode enabled`);
        if (vm.status === 'running') die(`VM ${vm.vmid} is running - destroy failed`);
        return vm;
      };
      const vm = earlyChecks();
      ctx.caller.privileges.check(`/vms/${vmid}`, 'VM.Allocate');
      let setLock = false;
      return cluster.runTask({
        node,
        type: 'qmdestroy',
        id: String(vmid),
        user: ctx.caller.userid,
        delayMs: cluster.options.destroyDelayMs,
        flock: vmid,
        begin: () => {
          const current = cluster.vms.get(vmid);
          if (current !== vm) throw noSuchVm(node, vmid);
          earlyChecks();
          cluster.checkLock(vm, params.skiplock);
          // destroy_vm: the config stays (locked) until the task ends, so the vmid is not free before.
          vm.config.lock = 'destroyed';
          setLock = true;
        },
        complete: (log) => {
          const base = `base-${vm.vmid}-disk-`;
          const user = [...cluster.vms.values()].find(
            (o) => o !== vm && Object.values(o.config).some((v) => String(v).includes(`${base}`)),
          );
          const disk = firstDisk(vm);
          if (user && disk) throw new Error(`base volume '${disk[1]}' is still in use by linked cloned`);
          for (const [key, value] of Object.entries(vm.config)) {
            if (!DISK_KEY.test(key) || String(value).includes('media=cdrom')) continue;
            const volname = String(value).split(',')[0]?.split(':')[1]?.split('/').pop();
            if (volname) log.push(`  Logical volume "${volname}" successfully removed.`);
          }
          cluster.guests.close(vm.vmid);
          if (cluster.vms.get(vm.vmid) === vm) cluster.vms.delete(vm.vmid);
        },
        // Only this task's own lock is undone: a destroy that failed before locking leaves the config as it found it.
        onError: () => {
          if (setLock && vm.config.lock === 'destroyed') delete vm.config.lock;
        },
        injectedError:
          ctx.fault === 'task_error' ? `can't lock file '/var/lock/qemu-server/lock-${vm.vmid}.conf' - got timeout` : undefined,
      }).upid;
    },
  },
  {
    method: 'GET',
    path: '/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces',
    agent: true,
    handle: (ctx) => ({ result: guestInterfaces(agentVm(ctx, 'guest-network-get-interfaces'), ctx.cluster.now()) }),
  },
  {
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/agent/ping',
    agent: true,
    handle: (ctx) => {
      agentVm(ctx, 'guest-ping');
      return { result: {} };
    },
  },
  {
    method: 'GET',
    path: '/access/permissions',
    // pve-access-control API2/AccessControl.pm permissions: a token may read its own.
    handle: ({ caller, params }) => caller.privileges.dump(opt(params, 'path')),
  },
  {
    method: 'GET',
    path: '/storage/{storage}',
    handle: ({ caller, params }) => {
      const storage = String(params.storage);
      caller.privileges.check(`/storage/${storage}`, 'Datastore.Audit');
      if (!STORAGES.includes(storage)) die(`storage '${storage}' does not exist`);
      return storageConfig(storage);
    },
  },
  {
    method: 'GET',
    path: '/nodes/{node}/tasks',
    handle: ({ cluster, params }) => {
      const source = opt(params, 'source') ?? 'archive';
      const vmid = opt(params, 'vmid');
      const type = opt(params, 'typefilter');
      const userfilter = opt(params, 'userfilter')?.toLowerCase();
      const matches = [...cluster.tasks.values()]
        .filter((t) => t.node === params.node)
        .filter((t) => (source === 'all' ? true : source === 'active' ? t.status === 'running' : t.status === 'stopped'))
        .filter((t) => vmid === undefined || t.id === vmid)
        .filter((t) => type === undefined || t.type === type)
        .filter((t) => userfilter === undefined || t.user.toLowerCase().includes(userfilter))
        .filter((t) => !params.errors || (t.status === 'stopped' && t.exitstatus !== 'OK'))
        .filter((t) => params.since === undefined || t.starttime >= Number(params.since))
        .filter((t) => params.until === undefined || t.starttime <= Number(params.until))
        .reverse();
      const start = params.start !== undefined ? Number(params.start) : 0;
      const limit = params.limit ? Number(params.limit) : 50;
      const page = matches.slice(start, start + limit).map((t) => ({
        upid: t.upid,
        node: t.node,
        pid: t.pid,
        pstart: t.pstart,
        starttime: t.starttime,
        type: t.type,
        id: t.id,
        ...Cluster.splitUser(t.user),
        ...(t.status === 'stopped' ? { endtime: t.endtime, status: t.exitstatus } : {}),
      }));
      return new Listing(page, matches.length);
    },
  },
  {
    method: 'GET',
    path: '/nodes/{node}/tasks/{upid}/status',
    handle: (ctx) => taskStatus(findTask(ctx)),
  },
  {
    method: 'GET',
    path: '/nodes/{node}/tasks/{upid}/log',
    handle: (ctx) => {
      const task = findTask(ctx);
      // pve-manager's Tasks.pm read_task_log: `limit || 50`, lines numbered from 1, "no content" for an empty log.
      const start = ctx.params.start !== undefined ? Number(ctx.params.start) : 0;
      const limit = ctx.params.limit ? Number(ctx.params.limit) : 50;
      if (task.log.length === 0) return new Listing([{ n: 1, t: 'no content' }], 1);
      const lines = task.log.slice(start, start + limit).map((t, i) => ({ n: start + i + 1, t }));
      return new Listing(lines, task.log.length);
    },
  },
  ...SNAPSHOT_ROUTES,
  ...DISK_ROUTES,
];
