/**
 * What the bridge's tasks need from the infrastructure drivers. The drivers are thin
 * typed clients (no business logic); the tasks in ../tasks compose them. Each method
 * is safe to call again after a crash: reads observe reality, writes either succeed or
 * throw an InfraError whose `retryable` says whether trying again can help.
 */

/** An error from Proxmox, Guacamole or Kubernetes, classified once in the driver. */
export class InfraError extends Error {
  constructor(
    message: string,
    readonly system: 'proxmox' | 'guacamole' | 'kubernetes',
    /** HTTP status (or 0 for a network failure / time-out). */
    readonly status: number,
    /** True for transient failures (5xx proxy time-outs, locks, network): retry with backoff. */
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'InfraError';
  }
}

export interface VmSummary {
  vmid: number;
  node: string;
  name: string;
  /** 'running' | 'stopped' | 'paused' … as Proxmox reports it */
  status: string;
  tags: string[];
  /** The config lock if any ('clone', 'create', …). */
  lock?: string;
  template: boolean;
}

export interface ProxmoxDriver {
  /** Every VM of the cluster (GET /cluster/resources?type=vm). */
  listVms(): Promise<VmSummary[]>;
  /** The VM whose name is `name`, or null. */
  findVmByName(name: string): Promise<VmSummary | null>;
  /**
   * A VMID in [min, max] that is free now and not handed out by this process in the
   * last `quarantineMs` (ids of VMs being destroyed stay taken until the destroy ends).
   * Concurrent calls in one process never return the same id.
   */
  allocateVmid(range: { min: number; max: number }): Promise<number>;
  /** POST /nodes/{node}/qemu/{template}/clone; resolves to the task UPID. */
  cloneVm(opts: { node: string; templateVmid: number; newid: number; name: string; full: boolean; description?: string }): Promise<string>;
  /** Polls the task until it stops; throws InfraError (retryable per exitstatus text) unless OK/WARNINGS. */
  waitForTask(upid: string, opts?: { signal?: AbortSignal; pollMs?: number }): Promise<void>;
  /** PUT /nodes/{node}/qemu/{vmid}/config (synchronous). Values as Proxmox expects (strings/numbers). */
  configureVm(node: string, vmid: number, config: Record<string, string | number>): Promise<void>;
  /** GET config (pending values applied), e.g. to read `lock`, `tags`, `net0`. */
  getVmConfig(node: string, vmid: number): Promise<Record<string, string | number>>;
  /** GET status/current → 'running' | 'stopped' | … */
  getVmStatus(node: string, vmid: number): Promise<{ status: string; lock?: string }>;
  startVm(node: string, vmid: number): Promise<string>;
  /** ACPI/agent shutdown with a timeout (seconds); the task fails on time-out unless forceStop. */
  shutdownVm(node: string, vmid: number, timeoutSeconds: number): Promise<string>;
  stopVm(node: string, vmid: number): Promise<string>;
  destroyVm(node: string, vmid: number): Promise<string>;
  /**
   * The guest's IPv4 on the NIC whose MAC matches net0 (lo, link-local ignored), or
   * null while the agent is not running yet or reports no address.
   */
  getGuestIpv4(node: string, vmid: number): Promise<string | null>;
}

export interface GuacConnection {
  identifier: string;
  name: string;
  protocol: string;
  activeConnections?: number;
}

export interface GuacamoleDriver {
  /** The connection named `name` in ROOT, or null. */
  findConnectionByName(name: string): Promise<GuacConnection | null>;
  /** All connections (map from GET …/connections turned into a list). */
  listConnections(): Promise<GuacConnection[]>;
  /** POST …/connections; resolves to the identifier Guacamole assigned. */
  createConnection(opts: { name: string; protocol: string; parameters: Record<string, string> }): Promise<string>;
  /** PUT …/connections/{id} with the full object (PUT replaces everything). */
  updateConnection(identifier: string, opts: { name: string; protocol: string; parameters: Record<string, string> }): Promise<void>;
  /** DELETE …/connections/{id}; a missing connection is not an error. */
  deleteConnection(identifier: string): Promise<void>;
  /** Creates the user if missing, (re)sets its password otherwise. */
  ensureUser(username: string, password: string): Promise<void>;
  /** A missing user is not an error. */
  deleteUser(username: string): Promise<void>;
  /** PATCH …/users/{u}/permissions add /connectionPermissions/{id} READ. */
  grantConnectionRead(username: string, identifier: string): Promise<void>;
  /** POST /api/tokens as that user; the token it returns is scoped to what the user may see. */
  loginAs(username: string, password: string): Promise<{ authToken: string; dataSource: string }>;
  /** `<publicBase>/#/client/<base64url(id\0c\0dataSource)>?token=<token>` (contracts §7). */
  clientUrl(identifier: string, dataSource: string, authToken: string): string;
}
