/**
 * The simulated cluster: VM configs (with their `lock:` key), power state, guest agent phases and tasks with real UPIDs
 * (pve-common's UPID.pm). Every mutation that PVE runs in a forked worker runs here as a task that takes a configurable
 * time; 0 ms finishes before the HTTP reply.
 */
import { createHash } from 'node:crypto';
import type { SimTls } from '../shared/http-server';
import type { FaultConfig } from './faults';
import { Flocks, lockTimeout } from './flock';
import { type DesktopProtocol, GuestDesktops } from './guest-desktop';
import type { ApiToken } from './http';
import { PveError } from './http';
import { siteVmConfig } from './site-vms';
import type { SimSnapshot } from './snapshots';
import { StatusCache, type VmStats } from './status-cache';

export type ConfigValue = string | number;
export type VmConfig = Record<string, ConfigValue>;

export interface SimTemplate {
  vmid: number;
  node: string;
  name: string;
  /** Replaces the default template config (name/template are still set from the fields above). */
  config?: VmConfig;
  /** What the template's guests serve once booted (default: a VNC server and xrdp). */
  desktop?: DesktopProtocol[];
}

export interface ProxmoxSimOptions {
  host: string;
  /** 0 = a random free port. */
  port: number;
  nodes: string[];
  tokens: ApiToken[];
  templates: SimTemplate[];
  cloneDelayMs: number;
  /** POST …/config (the async variant; PUT is synchronous). */
  configDelayMs: number;
  startDelayMs: number;
  shutdownDelayMs: number;
  stopDelayMs: number;
  destroyDelayMs: number;
  /** A snapshot of the disks (LVM-thin: a thin snapshot per disk). */
  snapshotDelayMs: number;
  /** Added to a snapshot with RAM per GiB of the VM's memory (the state is written out). */
  vmstateDelayMsPerGiB: number;
  rollbackDelayMs: number;
  delsnapshotDelayMs: number;
  /** After the start task: the guest agent answers "not running" until the guest has booted. */
  bootDelayMs: number;
  /** After boot: interfaces without (then with only link-local) addresses until DHCP is done. */
  ipDelayMs: number;
  /** pve-http-server: real servers delay every 401 by ~3 s. */
  authFailureDelayMs: number;
  /** First two octets of guest IPv4s: `<prefix>.x.y`, one unique address per VM. */
  ipPrefix: string;
  /** Offset of the first guest address, to keep several simulators apart. */
  ipSeed: number;
  faults: FaultConfig | null;
  /** The simulator's clock (ms epoch) for task times and guest boot phases; task delays always run on real timers. */
  now: () => number;
  /** HTTPS with this certificate, as pveproxy serves it (plain HTTP stays possible on a loopback address). */
  tls?: SimTls;
  /** pvestatd's update interval: how stale /cluster/resources' name, status and template may be (0 = live). */
  statusCacheMs: number;
  /** How long a call waits for a VM's config flock before `can't lock file … got timeout` (PVE: 10 s). */
  lockWaitMs: number;
  /** After the guest reports its address: until its VNC server / xrdp accepts connections. */
  desktopDelayMs: number;
  /** Other teams' VMs on the first node, stopped, made at start and on reset (site-vms.ts); 0 = templates only. */
  siteVms: number;
}

export type TaskType =
  | 'qmclone'
  | 'qmconfig'
  | 'qmstart'
  | 'qmstop'
  | 'qmshutdown'
  | 'qmdestroy'
  | 'qmsnapshot'
  | 'qmrollback'
  | 'qmdelsnapshot'
  | 'qmmove';

export interface SimTask {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: TaskType;
  id: string;
  /** `user@realm` or `user@realm!token`, as in the UPID. */
  user: string;
  status: 'running' | 'stopped';
  exitstatus?: string;
  endtime?: number;
  log: string[];
  delayMs: number;
}

export interface SimVm {
  vmid: number;
  node: string;
  config: VmConfig;
  status: 'running' | 'stopped';
  /** ms epoch when QEMU started; the agent answers from agentAt, addresses from ipAt. */
  startedAt?: number;
  agentAt?: number;
  ipAt?: number;
  /** The desktop service (VNC/RDP) listens from here on. */
  desktopAt?: number;
  ipv4: string;
  /** What the guest serves, inherited from its template. */
  desktop: DesktopProtocol[];
  /** Its snapshots by name, oldest first (snapshots.ts). */
  snapshots?: Map<string, SimSnapshot>;
}

export interface SimStats {
  requests: number;
  /** API requests per endpoint, e.g. `{"GET /nodes/{node}/qemu": 3}`: what a caller's work costs the cluster. */
  requestsByRoute: Record<string, number>;
  tasks: { total: number; byType: Record<string, number> };
  /** Sum of the configured delays of all tasks started (parallel tasks add up). */
  taskDelayMs: number;
  /** Wall-clock time during which at least one task was waiting out its delay. */
  taskDelayWallMs: number;
}

/** A task body: `begin` runs at fork time, `complete` after the delay; either may throw to fail the task. */
export interface TaskSpec {
  node: string;
  type: TaskType;
  id: string;
  user: string;
  delayMs: number;
  begin?: (log: string[]) => void;
  complete: (log: string[]) => void;
  /** Cleanup when the task fails (e.g. a failed clone removes its config). */
  onError?: (message: string) => void;
  /** Fault injection: fail with this text after the delay instead of completing. */
  injectedError?: string;
  /** The VM whose config flock the worker holds from before `begin` to the end (waiting up to lockWaitMs for it). */
  flock?: number;
  /** Halfway through the delay (a clone writes its config after the first disk). */
  midway?: () => void;
}

const UPID_RE =
  /^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$/;

export function isUpid(upid: string): boolean {
  return UPID_RE.test(upid);
}

function hex(n: number, width: number): string {
  return n.toString(16).toUpperCase().padStart(width, '0');
}

/** pve-guest-common's AbstractConfig.pm load_config: the text every call on a missing (or elsewhere-hosted) VM gets. */
export function noSuchVm(node: string, vmid: number): PveError {
  return new PveError(500, `Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`);
}

export function defaultTemplateConfig(t: SimTemplate): VmConfig {
  return {
    agent: '1',
    boot: 'order=scsi0;net0',
    cores: 2,
    cpu: 'x86-64-v2-AES',
    memory: '4096',
    meta: 'creation-qemu=9.0.2,ctime=1721873091',
    net0: 'virtio=BC:24:11:5E:90:00,bridge=vmbr0,firewall=1',
    numa: 0,
    ostype: 'l26',
    // The cloud-init drive that carries ciuser/cipassword into the guest (a template without one ignores them).
    ide2: `local-lvm:vm-${t.vmid}-cloudinit,media=cdrom`,
    scsi0: `local-lvm:base-${t.vmid}-disk-0,size=32G`,
    scsihw: 'virtio-scsi-single',
    smbios1: 'uuid=6f1c3d2e-8a4b-4c5d-9e6f-0a1b2c3d4e5f',
    sockets: 1,
    tags: 'template',
    vmgenid: '0c9e3a7b-1d2f-4e5a-8b6c-7d8e9f0a1b2c',
  };
}

export class Cluster {
  readonly vms = new Map<number, SimVm>();
  readonly tasks = new Map<string, SimTask>();
  stats: SimStats = Cluster.emptyStats();
  private readonly timers = new Set<NodeJS.Timeout>();
  private pid = 0x1a2b3;
  private macCounter = 0;
  private ipCounter = 0;
  private siteVmCount = 0;
  private activeDelays = 0;
  private delayWallSince = 0;

  private readonly bootTime: number;
  readonly flocks = new Flocks();
  readonly guests = new GuestDesktops();
  readonly statusCache: StatusCache;

  constructor(readonly options: ProxmoxSimOptions) {
    this.bootTime = options.now();
    this.statusCache = new StatusCache(options.statusCacheMs, () => this.collectStats());
    this.reset();
    this.statusCache.start();
  }

  /** What pvestatd would broadcast for every VM now. */
  private collectStats(): Map<number, VmStats> {
    return new Map([...this.vms.values()].map((vm) => [vm.vmid, this.liveStats(vm)]));
  }

  liveStats(vm: SimVm): VmStats {
    const c = vm.config;
    const running = vm.status === 'running';
    const memMiB = Number(/^(?:current=)?(\d+)/.exec(String(c.memory ?? '512'))?.[1] ?? 512);
    return {
      name: c.name !== undefined ? String(c.name) : `VM ${vm.vmid}`,
      status: vm.status,
      template: c.template ? 1 : 0,
      uptime: running && vm.startedAt ? Math.floor((this.now() - vm.startedAt) / 1000) : 0,
      maxcpu: Number(c.cores ?? 1) * Number(c.sockets ?? 1),
      cpu: running ? 0.012 : 0,
      maxmem: memMiB * 1024 ** 2,
      mem: running ? Math.floor((memMiB * 1024 ** 2) / 3) : 0,
      maxdisk: 32 * 1024 ** 3,
      disk: 0,
      netin: running ? 184_320 : 0,
      netout: running ? 20_480 : 0,
      diskread: running ? 512 * 1024 ** 2 : 0,
      diskwrite: running ? 64 * 1024 ** 2 : 0,
    };
  }

  /** A sync API call that changes a VM's config: under its flock, waiting for a worker that holds it. */
  async withFlock<T>(vmid: number, fn: () => T | Promise<T>): Promise<T> {
    const release = await this.flocks.acquire(vmid, this.options.lockWaitMs);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** The guest is up: its agent answers after bootDelayMs, its address after ipDelayMs more, its desktop later still. */
  bootGuest(vm: SimVm): void {
    const now = this.now();
    const { bootDelayMs, ipDelayMs, desktopDelayMs } = this.options;
    vm.status = 'running';
    vm.startedAt = now;
    vm.agentAt = now + bootDelayMs;
    vm.ipAt = vm.agentAt + ipDelayMs;
    vm.desktopAt = vm.ipAt + desktopDelayMs;
    // The listener runs on the real clock whatever the simulator's clock says.
    this.guests.openAt(vm.vmid, vm.ipv4, vm.desktop, Date.now() + bootDelayMs + ipDelayMs + desktopDelayMs);
  }

  /** A rollback to a snapshot with RAM: the guest carries on where it was, already booted and on the network. */
  resumeGuest(vm: SimVm): void {
    const now = this.now();
    vm.status = 'running';
    vm.startedAt = vm.agentAt = vm.ipAt = vm.desktopAt = now;
    this.guests.openAt(vm.vmid, vm.ipv4, vm.desktop, Date.now());
  }

  haltGuest(vm: SimVm): void {
    vm.status = 'stopped';
    vm.startedAt = vm.agentAt = vm.ipAt = vm.desktopAt = undefined;
    this.guests.close(vm.vmid);
  }

  now(): number {
    return this.options.now();
  }

  private static emptyStats(): SimStats {
    return { requests: 0, requestsByRoute: {}, tasks: { total: 0, byType: {} }, taskDelayMs: 0, taskDelayWallMs: 0 };
  }

  /** Back to the templates only; pending task timers are dropped. */
  reset(): void {
    this.dispose();
    this.flocks.clear();
    this.vms.clear();
    this.tasks.clear();
    this.stats = Cluster.emptyStats();
    this.activeDelays = 0;
    this.macCounter = 0;
    this.ipCounter = 0;
    this.siteVmCount = 0;
    for (const t of this.options.templates) {
      const config = { ...(t.config ?? defaultTemplateConfig(t)), name: t.name, template: 1 };
      this.vms.set(t.vmid, {
        vmid: t.vmid,
        node: t.node,
        config,
        status: 'stopped',
        ipv4: this.nextIpv4(),
        desktop: t.desktop ?? ['vnc', 'rdp'],
      });
    }
    this.addSiteVms(this.options.siteVms);
  }

  /** `count` more stopped VMs of other teams on the first node, at the lowest free vmids from 100 (site-vms.ts). */
  addSiteVms(count: number): void {
    const node = this.options.nodes[0];
    if (!node) return;
    let vmid = 100;
    for (let made = 0; made < count; made++) {
      while (this.vms.has(vmid)) vmid++;
      const config = siteVmConfig(vmid, this.siteVmCount++, this.nextMac());
      this.vms.set(vmid, { vmid, node, config, status: 'stopped', ipv4: this.nextIpv4(), desktop: [] });
    }
    this.statusCache.refresh();
  }

  /** The counters, with the delay interval still in progress counted up to now. */
  statsNow(): SimStats {
    const ongoing = this.activeDelays > 0 ? Date.now() - this.delayWallSince : 0;
    const { tasks } = this.stats;
    return {
      ...this.stats,
      requestsByRoute: { ...this.stats.requestsByRoute },
      tasks: { total: tasks.total, byType: { ...tasks.byType } },
      taskDelayWallMs: this.stats.taskDelayWallMs + ongoing,
    };
  }

  dispose(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.guests.closeAll();
  }

  /** Stops the background work (pvestatd, guests); the simulator is going away. */
  shutdown(): void {
    this.dispose();
    this.statusCache.stop();
  }

  hasNode(node: string): boolean {
    return this.options.nodes.includes(node);
  }

  /** pve-guest-common's load_config: a VM is addressed via the node that owns it. */
  vmOn(node: string, vmid: number): SimVm {
    const vm = this.vms.get(vmid);
    if (!vm || vm.node !== node) throw noSuchVm(node, vmid);
    return vm;
  }

  /** Proxmox's OUI (datacenter.cfg mac_prefix default BC:24:11); upper case as written to configs. */
  nextMac(): string {
    this.macCounter += 1;
    const n = (0x3a5c00 + this.macCounter * 7919) & 0xffffff;
    return `BC:24:11:${hex((n >> 16) & 0xff, 2)}:${hex((n >> 8) & 0xff, 2)}:${hex(n & 0xff, 2)}`;
  }

  nextIpv4(): string {
    const host = this.options.ipSeed + this.ipCounter + 10;
    this.ipCounter += 1;
    return `${this.options.ipPrefix}.${Math.floor(host / 254) % 256}.${(host % 254) + 1}`;
  }

  digest(config: VmConfig): string {
    const text = Object.keys(config)
      .sort()
      .map((k) => `${k}: ${config[k]}`)
      .join('\n');
    return createHash('sha1').update(text).digest('hex');
  }

  /** pve-common's UPID.pm: UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>: with upper-case hex. */
  runTask(spec: TaskSpec): SimTask {
    this.pid += 1;
    const now = this.now();
    const starttime = Math.floor(now / 1000);
    const pstart = 0xc0ffee + Math.max(0, Math.floor((now - this.bootTime) / 10));
    const upid = `UPID:${spec.node}:${hex(this.pid, 8)}:${hex(pstart, 8)}:${hex(starttime, 8)}:${spec.type}:${spec.id}:${spec.user}:`;
    const task: SimTask = {
      upid,
      node: spec.node,
      pid: this.pid,
      pstart,
      starttime,
      type: spec.type,
      id: spec.id,
      user: spec.user,
      status: 'running',
      log: [],
      delayMs: Math.max(0, spec.delayMs),
    };
    this.tasks.set(upid, task);
    this.stats.tasks.total += 1;
    this.stats.tasks.byType[spec.type] = (this.stats.tasks.byType[spec.type] ?? 0) + 1;

    let release: (() => void) | null = null;
    const finish = (error?: unknown) => {
      release?.();
      release = null;
      if (error === undefined) {
        task.log.push('TASK OK');
        task.exitstatus = 'OK';
      } else {
        // The exit status is the die text without its newline (pve-common's RESTEnvironment.pm / UPID.pm read_status).
        const message = (error instanceof Error ? error.message : String(error)).replace(/\n+$/, '');
        task.log.push(`TASK ERROR: ${message}`);
        task.exitstatus = message;
        spec.onError?.(message);
      }
      task.status = 'stopped';
      task.endtime = Math.floor(this.now() / 1000);
    };
    const later = (ms: number, fn: () => void) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        fn();
      }, ms);
      this.timers.add(timer);
    };

    const run = () => {
      try {
        if (spec.injectedError) throw new Error(spec.injectedError);
        spec.complete(task.log);
        finish();
      } catch (e) {
        finish(e);
      }
    };
    const afterLock = () => {
      try {
        spec.begin?.(task.log);
      } catch (e) {
        finish(e);
        return;
      }
      if (task.delayMs === 0) {
        spec.midway?.();
        run();
        return;
      }
      this.stats.taskDelayMs += task.delayMs;
      if (this.activeDelays++ === 0) this.delayWallSince = Date.now();
      if (spec.midway) later(task.delayMs / 2, () => task.status === 'running' && spec.midway?.());
      later(task.delayMs, () => {
        if (--this.activeDelays === 0) this.stats.taskDelayWallMs += Date.now() - this.delayWallSince;
        run();
      });
    };

    if (spec.flock === undefined) {
      afterLock();
      return task;
    }
    // A free flock is taken at once, so an instant task still ends before the HTTP reply.
    release = this.flocks.tryAcquire(spec.flock);
    if (release) {
      afterLock();
      return task;
    }
    task.log.push(`trying to acquire lock...`);
    this.flocks.acquire(spec.flock, this.options.lockWaitMs).then(
      (r) => {
        release = r;
        task.log.push(' OK');
        afterLock();
      },
      () => finish(lockTimeout(Number(spec.flock))),
    );
    return task;
  }

  /** Fails with `VM is locked (<lock>)` (pve-guest-common's AbstractConfig.pm check_lock) unless skiplock. */
  checkLock(vm: SimVm, skiplock?: unknown): void {
    const lock = vm.config.lock;
    if (lock !== undefined && !skiplock) throw new PveError(500, `VM is locked (${lock})`);
  }

  /** The task's `user` split into user and tokenid, as read_task_status returns it (pve-manager's Tasks.pm). */
  static splitUser(user: string): { user: string; tokenid?: string } {
    const bang = user.indexOf('!');
    return bang < 0 ? { user } : { user: user.slice(0, bang), tokenid: user.slice(bang + 1) };
  }
}
