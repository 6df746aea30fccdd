/**
 * An in-memory Proxmox cluster behind the ProxmoxDriver interface: a test double of the
 * infrastructure for the bridge's runtime tests (the HTTP-faithful simulator is tested
 * on its own). It keeps the behaviours the tasks must cope with: clones hold
 * `lock: clone` until their task ends, tasks finish asynchronously, locked or running
 * VMs refuse changes with Proxmox's texts, and any call can be made to fail.
 */
import { InfraError, type ProxmoxDriver, type VmSummary } from '../../../on-prem-bridge/src/drivers/types';

export interface FakeVm {
  vmid: number;
  node: string;
  name: string;
  status: 'running' | 'stopped' | 'paused';
  lock?: string;
  template: boolean;
  config: Record<string, string | number>;
  /** The guest answers ACPI shutdown requests. */
  acpi: boolean;
  /** getGuestIpv4 polls after start before the agent reports an address. */
  ipPollsLeft: number;
}

interface FakeTask {
  upid: string;
  type: string;
  finished: Promise<string>;
  finish: (exitstatus: string) => void;
}

type Method = keyof ProxmoxDriver;

export class FakeProxmox implements ProxmoxDriver {
  readonly vms = new Map<number, FakeVm>();
  readonly calls: Array<{ method: Method; args: unknown[] }> = [];
  /** Clone tasks stay running (VM locked) until `releaseClones()` while true. */
  holdClones = false;
  /** Polls of getGuestIpv4 that answer null after each start. */
  ipPolls = 2;
  private readonly tasks = new Map<string, FakeTask>();
  private readonly heldClones: Array<() => void> = [];
  private readonly faults: Array<{ method: Method; error: InfraError; times: number }> = [];
  private readonly taskFaults: Array<{ type: string; exitstatus: string; times: number }> = [];
  private nextPid = 1;

  constructor(readonly node = 'pve1') {
    this.vms.set(9000, {
      vmid: 9000,
      node,
      name: 'ubuntu-template',
      status: 'stopped',
      template: true,
      config: { name: 'ubuntu-template', template: 1 },
      acpi: true,
      ipPollsLeft: 0,
    });
  }

  /** The next `times` calls of `method` throw `error` before doing anything. */
  failNext(method: Method, error: InfraError, times = 1): void {
    this.faults.push({ method, error, times });
  }

  /** The next `times` tasks of `type` (qmclone, qmstart, …) end with `exitstatus`. */
  failNextTask(type: string, exitstatus: string, times = 1): void {
    this.taskFaults.push({ type, exitstatus, times });
  }

  releaseClones(): void {
    this.holdClones = false;
    for (const release of this.heldClones.splice(0)) release();
  }

  /** Desktop VMs (everything but templates). */
  desktopVms(): FakeVm[] {
    return [...this.vms.values()].filter((vm) => !vm.template);
  }

  callsOf(method: Method): unknown[][] {
    return this.calls.filter((c) => c.method === method).map((c) => c.args);
  }

  async listVms(): Promise<VmSummary[]> {
    this.enter('listVms', []);
    return [...this.vms.values()].map(summary);
  }

  async findVmByName(name: string): Promise<VmSummary | null> {
    this.enter('findVmByName', [name]);
    const vm = [...this.vms.values()].find((v) => v.name === name);
    return vm ? summary(vm) : null;
  }

  private readonly handedOut = new Set<number>();
  async allocateVmid(range: { min: number; max: number }): Promise<number> {
    this.enter('allocateVmid', [range]);
    for (let id = range.min; id <= range.max; id++) {
      if (!this.vms.has(id) && !this.handedOut.has(id)) {
        this.handedOut.add(id);
        return id;
      }
    }
    throw new InfraError('no free VMID in range', 'proxmox', 500, false);
  }

  async cloneVm(opts: {
    node: string;
    templateVmid: number;
    newid: number;
    name: string;
    full: boolean;
    description?: string;
  }): Promise<string> {
    this.enter('cloneVm', [opts]);
    const source = this.vms.get(opts.templateVmid);
    if (!source) throw notFound(opts.node, opts.templateVmid);
    if (this.vms.has(opts.newid))
      throw new InfraError(`unable to create VM ${opts.newid}: config file already exists\n`, 'proxmox', 500, false);
    // Like Proxmox, the new VM is only a temporary config holding the lock until the copy ends: no name yet
    // (qemu-server's clone_vm).
    const vm: FakeVm = {
      vmid: opts.newid,
      node: opts.node,
      name: '',
      status: 'stopped',
      lock: 'clone',
      template: false,
      config: { lock: 'clone', description: ' qmclone temporary file\n' },
      acpi: true,
      ipPollsLeft: this.ipPolls,
    };
    this.vms.set(vm.vmid, vm);
    return this.startTask('qmclone', source.vmid, (finish) => {
      const done = () => {
        const failure = this.takeTaskFault('qmclone');
        // A failed clone is removed again by Proxmox; a good one drops its lock.
        if (failure) this.vms.delete(vm.vmid);
        else {
          vm.lock = undefined;
          vm.name = opts.name;
          vm.config = { name: opts.name, description: opts.description ?? '' };
        }
        finish(failure ?? 'OK');
      };
      if (this.holdClones) this.heldClones.push(done);
      else setImmediate(done);
    });
  }

  async waitForTask(upid: string, opts?: { signal?: AbortSignal; pollMs?: number }): Promise<void> {
    this.enter('waitForTask', [upid]);
    const task = this.tasks.get(upid);
    if (!task) throw new InfraError('no such task', 'proxmox', 400, false);
    const signal = opts?.signal;
    const exitstatus = await new Promise<string>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      task.finished.then(resolve);
    });
    if (exitstatus === 'OK' || exitstatus.startsWith('WARNINGS')) return;
    throw new InfraError(exitstatus, 'proxmox', 500, /got timeout|locked/.test(exitstatus));
  }

  async configureVm(node: string, vmid: number, config: Record<string, string | number>): Promise<void> {
    this.enter('configureVm', [node, vmid, config]);
    const vm = this.vmOn(node, vmid);
    if (vm.lock) throw new InfraError(`VM is locked (${vm.lock})\n`, 'proxmox', 500, true);
    Object.assign(vm.config, config);
    if (typeof config.name === 'string') vm.name = config.name;
  }

  async getVmConfig(node: string, vmid: number): Promise<Record<string, string | number>> {
    this.enter('getVmConfig', [node, vmid]);
    return { ...this.vmOn(node, vmid).config };
  }

  async getVmStatus(node: string, vmid: number): Promise<{ status: string; lock?: string }> {
    this.enter('getVmStatus', [node, vmid]);
    const vm = this.vmOn(node, vmid);
    return { status: vm.status, ...(vm.lock ? { lock: vm.lock } : {}) };
  }

  /** Two rows a minute apart: enough for the bridge's metrics answer to be checked. */
  async getVmUsage(node: string, vmid: number): Promise<{ current: Record<string, unknown>; rrd: Record<string, unknown>[] }> {
    this.enter('getVmUsage', [node, vmid]);
    const vm = this.vmOn(node, vmid);
    const running = vm.status === 'running';
    const current = {
      name: vm.name,
      status: vm.status,
      cpu: running ? 0.25 : 0,
      cpus: 2,
      mem: running ? 1024 : 0,
      maxmem: 4096,
      uptime: running ? 60 : 0,
    };
    const rrd = [
      { time: 1_800_000_000 },
      { time: 1_800_000_060, cpu: 0.25, maxcpu: 2, mem: 1024, maxmem: 4096, netin: 10, netout: 5, diskread: 0, diskwrite: 7 },
    ];
    return { current, rrd };
  }

  async startVm(node: string, vmid: number): Promise<string> {
    this.enter('startVm', [node, vmid]);
    const vm = this.vmOn(node, vmid);
    return this.startTask('qmstart', vmid, (finish) =>
      setImmediate(() => {
        if (vm.lock) return finish(`VM is locked (${vm.lock})`);
        if (vm.status === 'running') return finish(`VM ${vmid} already running`);
        const failure = this.takeTaskFault('qmstart');
        if (failure) return finish(failure);
        vm.status = 'running';
        vm.ipPollsLeft = this.ipPolls;
        finish('OK');
      }),
    );
  }

  async shutdownVm(node: string, vmid: number, timeoutSeconds: number): Promise<string> {
    this.enter('shutdownVm', [node, vmid, timeoutSeconds]);
    const vm = this.vmOn(node, vmid);
    if (vm.status === 'paused') throw new InfraError('VM is paused - cannot shutdown\n', 'proxmox', 500, false);
    return this.startTask('qmshutdown', vmid, (finish) =>
      setImmediate(() => {
        const failure = this.takeTaskFault('qmshutdown');
        if (failure) return finish(failure);
        if (!vm.acpi) return finish('VM quit/powerdown failed - got timeout');
        vm.status = 'stopped';
        finish('OK');
      }),
    );
  }

  async stopVm(node: string, vmid: number): Promise<string> {
    this.enter('stopVm', [node, vmid]);
    const vm = this.vmOn(node, vmid);
    return this.startTask('qmstop', vmid, (finish) =>
      setImmediate(() => {
        vm.status = 'stopped';
        finish('OK');
      }),
    );
  }

  async destroyVm(node: string, vmid: number): Promise<string> {
    this.enter('destroyVm', [node, vmid]);
    const vm = this.vmOn(node, vmid);
    if (vm.status !== 'stopped') throw new InfraError(`VM ${vmid} is running - destroy failed\n`, 'proxmox', 500, false);
    return this.startTask('qmdestroy', vmid, (finish) =>
      setImmediate(() => {
        if (vm.lock) return finish(`VM is locked (${vm.lock})`);
        this.vms.delete(vmid);
        finish('OK');
      }),
    );
  }

  async getGuestIpv4(node: string, vmid: number): Promise<string | null> {
    this.enter('getGuestIpv4', [node, vmid]);
    const vm = this.vmOn(node, vmid);
    if (vm.status !== 'running') throw new InfraError(`VM ${vmid} is not running\n`, 'proxmox', 500, false);
    if (vm.ipPollsLeft > 0) {
      vm.ipPollsLeft--;
      return null;
    }
    return `10.0.${Math.floor(vmid / 250) % 250}.${(vmid % 250) + 1}`;
  }

  private enter(method: Method, args: unknown[]): void {
    this.calls.push({ method, args });
    const fault = this.faults.find((f) => f.method === method && f.times > 0);
    if (fault) {
      fault.times--;
      throw fault.error;
    }
  }

  private takeTaskFault(type: string): string | undefined {
    const fault = this.taskFaults.find((f) => f.type === type && f.times > 0);
    if (!fault) return undefined;
    fault.times--;
    return fault.exitstatus;
  }

  private startTask(type: string, id: number, run: (finish: (exitstatus: string) => void) => void): string {
    const pid = this.nextPid++;
    const upid = `UPID:${this.node}:${pid.toString(16).toUpperCase().padStart(8, '0')}:00C0FFEE:66A1B2C3:${type}:${id}:root@pam!dev:`;
    let finish: (exitstatus: string) => void = () => {};
    const finished = new Promise<string>((resolve) => (finish = resolve));
    this.tasks.set(upid, { upid, type, finished, finish });
    run(finish);
    return upid;
  }

  private vmOn(node: string, vmid: number): FakeVm {
    const vm = this.vms.get(vmid);
    if (!vm || vm.node !== node) throw notFound(node, vmid);
    return vm;
  }
}

function notFound(node: string, vmid: number): InfraError {
  return new InfraError(`Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist\n`, 'proxmox', 500, false);
}

function summary(vm: FakeVm): VmSummary {
  const tags = typeof vm.config.tags === 'string' ? vm.config.tags.split(/[;, ]/).filter(Boolean) : [];
  return {
    vmid: vm.vmid,
    node: vm.node,
    name: vm.name,
    status: vm.status,
    tags,
    template: vm.template,
    ...(vm.lock ? { lock: vm.lock } : {}),
  };
}
