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
  /** Every VM of the cluster, live (GET /nodes/{node}/qemu per node). */
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
  cloneVm(opts: {
    node: string;
    templateVmid: number;
    newid: number;
    name: string;
    full: boolean;
    description?: string;
    /** Clone this snapshot of the source (a linked clone of a snapshot needs LVM-thin, ZFS or Ceph). */
    snapname?: string;
  }): Promise<string>;
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
  /** GET status/current and GET rrddata (timeframe=hour, cf=AVERAGE), as Proxmox answers them. */
  getVmUsage(node: string, vmid: number): Promise<{ current: Record<string, unknown>; rrd: Record<string, unknown>[] }>;
}

/** One snapshot of a VM, as GET /nodes/{node}/qemu/{vmid}/snapshot lists it (without its `current` entry). */
export interface VmSnapshot {
  name: string;
  /** Seconds since the epoch. */
  snaptime: number;
  description: string;
  /** The snapshot it was taken on top of. */
  parent?: string;
  /** Taken with the guest's RAM: a rollback resumes the running guest. */
  withRam: boolean;
}

/** Snapshots of a VM (qemu-server's snapshot endpoints); each change is a task whose UPID is returned. */
export interface ProxmoxSnapshots {
  listSnapshots(node: string, vmid: number): Promise<VmSnapshot[]>;
  /** `withRam` saves the RAM state of a running VM (ignored by Proxmox for a stopped one). */
  snapshotVm(node: string, vmid: number, snap: { name: string; withRam: boolean; description?: string }): Promise<string>;
  /** Stops a running VM and brings its disks (and RAM, when saved) back; `start` boots a disk-only one after. */
  rollbackVm(node: string, vmid: number, name: string, opts?: { start?: boolean }): Promise<string>;
  deleteSnapshot(node: string, vmid: number, name: string): Promise<string>;
}

/** Disks between VMs (qemu-server's move_vm_disk with `target-vmid`, PVE 7.2+); the `qmmove` task's UPID is returned. */
export interface ProxmoxDisks {
  /** Reassigns the stopped VM's `disk` to `targetVmid` (same node) as `targetDisk`, which must be free there. */
  moveDiskToVm(node: string, vmid: number, disk: string, target: { vmid: number; disk: string }): Promise<string>;
}

/** What `npm run bridge -- doctor` asks Proxmox besides the driver's work. */
export interface ProxmoxProbe {
  version(): Promise<{ version: string; release: string }>;
  /** GET /access/permissions[?path]: path → the token's privileges there. */
  permissions(path?: string): Promise<Record<string, string[]>>;
  /** GET /storage/{storage}: its type (lvmthin, zfspool, rbd, dir, lvm, …). */
  storageType(storage: string): Promise<string>;
}

export interface GuacConnection {
  identifier: string;
  name: string;
  protocol: string;
  activeConnections?: number;
}

export interface GuacSharingProfile {
  identifier: string;
  name: string;
  primaryConnectionIdentifier: string;
}

export interface GuacActiveConnection {
  identifier: string;
  connectionIdentifier: string;
  /** Null where the caller may not see it; `""` for someone who joined through a share key. */
  username: string | null;
  startDate: number;
}

/** A row of a connection's history (APIConnectionRecord): one per tunnel, the sharer's and each joiner's. */
export interface GuacConnectionRecord {
  /** The tunnel's identifier under …/activeConnections while it lasts (ActiveConnectionRecord#getUUID). */
  uuid: string | null;
  username: string | null;
  /** The profile a joiner came in under; null for the sharer, and once the profile is deleted (ON DELETE SET NULL). */
  sharingProfileIdentifier: string | null;
  /** A copy of the profile's name, kept after the profile is deleted. */
  sharingProfileName: string | null;
  startDate: number;
  /** Null while the tunnel lasts (and for one the web app lost in a crash). Its `active` is always false (JDBC). */
  endDate: number | null;
}

export interface GuacamoleDriver {
  /** The connection named `name` in ROOT, or null. Lists every connection (the API has no look-up by name). */
  findConnectionByName(name: string): Promise<GuacConnection | null>;
  /** GET …/connections/{id}: that one connection with its parent, or null when there is none. */
  getConnection(identifier: string): Promise<(GuacConnection & { parentIdentifier: string }) | null>;
  /** All connections (map from GET …/connections turned into a list). */
  listConnections(): Promise<GuacConnection[]>;
  /** POST …/connections; resolves to the identifier Guacamole assigned (a name already taken: that connection, updated). */
  createConnection(opts: { name: string; protocol: string; parameters: Record<string, string> }): Promise<string>;
  /** PUT …/connections/{id} with the full object (PUT replaces everything). */
  updateConnection(identifier: string, opts: { name: string; protocol: string; parameters: Record<string, string> }): Promise<void>;
  /** DELETE …/connections/{id}; a missing connection is not an error. */
  deleteConnection(identifier: string): Promise<void>;
  /**
   * Creates the user with this password and attributes if missing; an existing user keeps its password (a site's
   * password policy may refuse setting it again) and gets the attributes added where they differ. `expectNew`
   * creates before looking: one request for a new user, one more for an existing one.
   */
  ensureUser(
    username: string,
    password: string,
    attributes: Record<string, string>,
    opts?: { expectNew?: boolean },
  ): Promise<'created' | 'exists'>;
  /** PUT the user's password (subject to the site's password policy); for a user whose password is not ours. */
  setUserPassword(username: string, password: string): Promise<void>;
  /** Every user with its (set) attributes: one request. */
  listUsers(): Promise<Array<{ username: string; attributes: Record<string, string> }>>;
  /** A missing user is not an error. */
  deleteUser(username: string): Promise<void>;
  /** PATCH …/users/{u}/permissions add /connectionPermissions/{id} READ. */
  grantConnectionRead(username: string, identifier: string): Promise<void>;
  /** POST /api/tokens as that user; the token it returns is scoped to what the user may see. */
  loginAs(username: string, password: string): Promise<{ authToken: string; dataSource: string }>;
  /** For `doctor`: an admin call authenticated by the `Guacamole-Token` header (1.4+), and the admin's system permissions. */
  probe(): Promise<{ headerAccepted: boolean; systemPermissions: string[] }>;
  /**
   * `<publicBase>/#/client/<base64url(id\0c\0dataSource)>?token=<token>` (guacamole-client's ClientIdentifier.js and
   * relocateParameters.js).
   */
  clientUrl(identifier: string, dataSource: string, authToken: string): string;
  /** GET …/sharingProfiles: every sharing profile (a child of one connection), without parameters. */
  listSharingProfiles(): Promise<GuacSharingProfile[]>;
  /** POST …/sharingProfiles; resolves to the identifier Guacamole assigned. */
  createSharingProfile(opts: { name: string; primaryConnectionIdentifier: string; parameters: Record<string, string> }): Promise<string>;
  /** GET …/activeConnections: who is connected to what right now (user names visible to an admin). */
  listActiveConnections(): Promise<GuacActiveConnection[]>;
  /**
   * GET …/activeConnections/{id}/sharingCredentials/{profile}: a share key for that live connection under that
   * profile. It works only while the connection lasts (ConnectionSharingService).
   */
  sharingCredentials(activeConnectionIdentifier: string, sharingProfileIdentifier: string): Promise<string>;
  /** `<publicBase>/#/?key=<shareKey>`, the link the web client itself makes (UserCredentials.getLink). */
  shareUrl(shareKey: string): string;
  /** DELETE …/sharingProfiles/{id}; one already gone is fine. */
  deleteSharingProfile(identifier: string): Promise<void>;
  /** GET …/connections/{id}/history: its newest 1000 rows, newest first. */
  connectionHistory(connectionIdentifier: string): Promise<GuacConnectionRecord[]>;
  /** PATCH …/activeConnections with a `remove` per identifier: closes those live tunnels (those already gone are skipped). */
  killActiveConnections(identifiers: string[]): Promise<void>;
}

/** A GPU node as the NVIDIA device plugin and GPU feature discovery describe it. */
export interface GpuNode {
  node: string;
  /** Physical GPUs (label nvidia.com/gpu.count; else allocatable ÷ slotsPerGpu). */
  gpus: number;
  /** Time-slicing replicas per GPU (label nvidia.com/gpu.replicas; 1 without sharing). */
  slotsPerGpu: number;
  /** Allocatable `nvidia.com/gpu` (= gpus × slotsPerGpu with time-slicing). */
  allocatableSlots: number;
  /** Label nvidia.com/gpu.product, e.g. `NVIDIA-RTX-A4000`; 'unknown' without GFD. */
  model: string;
  /** Node condition Ready=True. */
  ready: boolean;
}

/** A container env var: a literal, or a key of a Secret in the driver's namespace (never the secret value itself). */
export type SelkiesEnvVar = { name: string; value: string } | { name: string; secretKeyRef: { name: string; key: string } };

export interface SelkiesPodSpec {
  name: string;
  /** Should carry `app.kubernetes.io/instance: <desktop>`; the driver adds `app.kubernetes.io/managed-by: cdaas`. */
  labels: Record<string, string>;
  /** Pin a frozen tag: `latest` moves, and Selkies' unreleased main speaks another protocol. */
  image: string;
  env: SelkiesEnvVar[];
  /** `nvidia.com/gpu` to request; 0 = no GPU (then no runtime class and no GPU limit). */
  gpuSlots: number;
  /** CPU limit in cores. */
  cpu: number;
  memoryMi: number;
  /** Defaults to the limit (`cpu`). */
  cpuRequest?: number;
  /** Defaults to the limit (`memoryMi`). */
  memoryRequestMi?: number;
  /** The user's home claim, mounted at /home/ubuntu; null: a throwaway emptyDir home (a warm pool's unclaimed member). */
  pvcName: string | null;
  /** Only schedule onto this node (nodeSelector kubernetes.io/hostname), e.g. where the claim's local volume lives. */
  nodeName?: string;
}

export interface SelkiesPodState {
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  /** Condition Ready=True: the readiness probe on tcp 8080 passed. */
  ready: boolean;
  node: string | null;
  /** Deleted and waiting out its grace period (metadata.deletionTimestamp). */
  deleting: boolean;
  /** The claim mounted as its home, or null when its home is an emptyDir (a pool member's) or it has none. */
  homeClaim: string | null;
  /** PodScheduled=False message, e.g. `0/2 nodes are available: 2 Insufficient nvidia.com/gpu. …` (the scheduler's). */
  schedulingMessage: string | null;
  /** Why the desktop container is not running, e.g. ErrImagePull, CreateContainerConfigError, CrashLoopBackOff, or the pod's failure reason. */
  containerReason: string | null;
  /** The text that goes with it (for CrashLoopBackOff the last start error). */
  containerMessage: string | null;
}

export interface SelkiesPvcState {
  /** `Pending` until the first pod using it is scheduled (local-path, WaitForFirstConsumer: not an error). */
  phase: 'Pending' | 'Bound' | 'Lost';
  /** The node its local volume lives on, once bound (local-path volumes are node-local). */
  node: string | null;
  deleting: boolean;
  /** Requested size, e.g. `20Gi`. */
  storage: string;
}

/**
 * GET https://<host>/health through the ingress with Basic credentials: `ready` = 200; `unauthorized` = the desktop
 * answered 401 (up, other password); `no-backend` = the ingress has no ready pod for the host (404/5xx); `unreachable`
 * = no answer at all (network, TLS, time-out).
 */
export type RouteCheck = 'ready' | 'unauthorized' | 'no-backend' | 'unreachable';

/** `created`, or `exists` when an object of that name was already there (left as it is). */
export type EnsureOutcome = 'created' | 'exists';

/**
 * Selkies desktops on K3s: one Pod, Secret, Service and Ingress/IngressRoute per session and one PVC per user, all in
 * the driver's namespace. Creates are idempotent (an existing object is `exists`), deletes of missing objects succeed,
 * reads of missing objects return null.
 */
export interface SelkiesDriver {
  /** Nodes with allocatable `nvidia.com/gpu`. */
  listGpuNodes(): Promise<GpuNode[]>;
  /**
   * Creates the Opaque Secret, or replaces its data/labels when they differ. A running pod keeps the env it
   * started with; only a new pod sees new values.
   */
  ensureSecret(name: string, data: Record<string, string>, labels: Record<string, string>): Promise<'created' | 'updated' | 'unchanged'>;
  /** ReadWriteOnce claim on the default class (local-path); an existing claim is not resized. */
  ensurePvc(name: string, storageGi: number, labels: Record<string, string>): Promise<EnsureOutcome>;
  /** Throws a retryable InfraError while a pod of that name is still terminating. */
  ensurePod(spec: SelkiesPodSpec): Promise<EnsureOutcome>;
  /** ClusterIP Service on port 8080 → the pods matching `selector`. */
  ensureService(name: string, selector: Record<string, string>, labels?: Record<string, string>): Promise<EnsureOutcome>;
  /** Ingress (or Traefik IngressRoute) routing `host` at `/` to the service's port 8080 (one host per session). */
  ensureRoute(name: string, host: string, serviceName: string, labels?: Record<string, string>): Promise<EnsureOutcome>;
  getPod(name: string): Promise<SelkiesPodState | null>;
  getPvc(name: string): Promise<SelkiesPvcState | null>;
  /** Starts graceful deletion; the pod lingers until its grace period ends (poll getPod until null). */
  deletePod(name: string, opts?: { gracePeriodSeconds?: number }): Promise<void>;
  deleteService(name: string): Promise<void>;
  deleteRoute(name: string): Promise<void>;
  deleteSecret(name: string): Promise<void>;
  /** Deletes the claim and, with local-path's reclaimPolicy Delete, the user's data. */
  deletePvc(name: string): Promise<void>;
  /**
   * The cluster-wide egress rules of the namespace's desktop pods (NetworkPolicy `cdaas-desktops`): DNS, the
   * ingress controller in, and anything outside `blockedCidrs` (the cluster's pod and service networks, link-local).
   */
  ensureNetworkPolicy(blockedCidrs: string[]): Promise<EnsureOutcome>;
  /** Sessions (by pod, service, route or secret) carrying these labels: desktop id, pod phase, node, GPU slots. */
  listSessions(
    labels: Record<string, string>,
  ): Promise<Array<{ desktopId: string; phase: string | null; node: string | null; gpuSlots: number }>>;
  /** The kubelet's events about a pod, oldest first (reason and message, e.g. `Pulling` / `Pulling image "…"`). */
  podEvents(name: string): Promise<Array<{ reason: string; message: string; type: string; at: string }>>;
  /** For `doctor`: the API server's version and whether this token may do each of `checks` (SelfSubjectAccessReview). */
  probe(checks: Array<{ verb: string; resource: string; group?: string; namespaced: boolean }>): Promise<{
    gitVersion: string;
    denied: string[];
  }>;
  /** `<name>.<routeDomain>` */
  routeHost(name: string): string;
  checkRoute(host: string, user: string, password: string): Promise<RouteCheck>;
}
