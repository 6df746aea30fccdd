/**
 * pvestatd's view of the guests (pve-manager PVE/Service/pvestatd.pm, `$updatetime = 10`):
 * every interval it broadcasts each VM's name, status, template flag, uptime and sizes, and
 * `GET /cluster/resources` reads those from the RRD cache (API2Tools `extract_vm_stats`).
 * Only `lock` and `tags` are read from the configs live (Cluster.pm
 * `get_guest_config_properties`). So a VM cloned a moment ago is listed with
 * `status: "unknown"` and no name, a renamed one under its old name, and a started one as
 * stopped, for up to one interval. `GET /nodes/{node}/qemu` reads the configs and is live.
 */
export interface VmStats {
  name: string;
  status: 'running' | 'stopped';
  template: number;
  uptime: number;
  maxcpu: number;
  cpu: number;
  maxmem: number;
  mem: number;
  maxdisk: number;
  disk: number;
  netin: number;
  netout: number;
  diskread: number;
  diskwrite: number;
}

export class StatusCache {
  private snapshot = new Map<number, VmStats>();
  private timer: NodeJS.Timeout | undefined;

  /** `intervalMs` 0 = no cache: every read is live (the simulator's old behaviour, for unit tests). */
  constructor(
    readonly intervalMs: number,
    private readonly collect: () => Map<number, VmStats>,
  ) {}

  get live(): boolean {
    return this.intervalMs <= 0;
  }

  start(): void {
    if (this.live) return;
    this.refresh();
    this.timer = setInterval(() => this.refresh(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  refresh(): void {
    this.snapshot = this.collect();
  }

  /** What the RRD holds for the VM (live when there is no cache), or undefined before its first broadcast. */
  stats(vmid: number, live: () => VmStats): VmStats | undefined {
    return this.live ? live() : this.snapshot.get(vmid);
  }
}
