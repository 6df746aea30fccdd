/**
 * The wire protocol between the edge (SiteHub Durable Object) and the on-prem bridge,
 * spoken as JSON text frames over the WebSocket the bridge dials out to
 * `GET /api/v1/sites/{siteId}/bridge` (Authorization: Bearer <site key>).
 *
 * Work is leased (Coder provisioners, graphile-worker): the hub sends a command, the
 * bridge answers `accepted`, then `progress` and `heartbeat` frames extend the lease,
 * and the command ends in `complete` or `fail`. A lease that lapses is handed out again;
 * every command is idempotent and keyed by desktop id and command id, so a redelivery
 * resumes the work instead of repeating it.
 */
import { withoutControls } from './text';
import { z } from './zod';

/**
 * Text a bridge reports, which may quote what a desktop's own user wrote (a pod's
 * termination message): kept, without the control characters Postgres cannot store.
 */
const ReportedText = (max?: number) => (max === undefined ? z.string() : z.string().max(max)).transform(withoutControls);
import { BackendSchema, DesktopIdSchema, GpuSlotsSchema, PlanSchema, ProtocolSchema } from './desktop';
import { SnapshotNameSchema } from './snapshot';

export const PROTOCOL_VERSION = 1;

/** A request id as the edge's middleware accepts it (hono/request-id: word characters, `-`, `=`; at most 64). */
export const RequestIdSchema = z
  .string()
  .max(64)
  .regex(/^[\w\-=]+$/);

/**
 * `snapshot`, `restore` and `delete_snapshot` work on the snapshot named in the spec (`spec.snapshot`); a restore
 * rolls the VM back and brings the desktop online again, the other two leave its power state as it is. `rebuild`
 * makes the desktop a new VM from its template, keeping the old VM's data disk where the template has one
 * (on-prem-bridge/src/tasks/rebuild-desktop.ts).
 */
export const CommandKindSchema = z.enum(['create', 'start', 'stop', 'delete', 'snapshot', 'restore', 'delete_snapshot', 'rebuild']);
export type CommandKind = z.infer<typeof CommandKindSchema>;

/** The GPU (and its Kubernetes node) a Selkies session's slots are booked on. */
export const GpuPlacementSchema = z.object({ gpuId: z.string(), node: z.string() });

/** Short-lived TURN credentials (coturn shared-secret scheme): the username carries their expiry. */
export const TurnCredentialsSchema = z.object({
  username: z.string(),
  credential: z.string(),
  /** When coturn stops accepting them (ISO 8601; the same second as the username's prefix). */
  expiresAt: z.string(),
});

/** The TURN server a Selkies pod relays through, with the credentials the edge minted for it. */
export const PodTurnSchema = z.object({ host: z.string(), port: z.number().int(), ...TurnCredentialsSchema.shape });
export type PodTurn = z.infer<typeof PodTurnSchema>;

/** Everything the bridge needs to build or find a desktop; no secrets travel here. */
export const DesktopSpecSchema = z.object({
  desktopId: DesktopIdSchema,
  userId: z.string(),
  /**
   * Whose user `userId` is: `users` (the platform's own) or `service:<sub>` (a service's
   * namespace). The bridge keys a user's home volume by both. Absent from older edges: `users`.
   */
  tenant: z.string().optional(),
  name: z.string(),
  plan: PlanSchema,
  cpuCores: z.number().int().positive(),
  memoryMb: z.number().int().positive(),
  protocol: ProtocolSchema,
  /** A template name the bridge resolves from its own configuration; default when absent. */
  template: z.string().optional(),
  /** proxmox when absent (commands of older edges). */
  backend: BackendSchema.optional(),
  /** Selkies: the pinned desktop image, the GPU slots booked for the session and where, the home volume size. */
  image: z.string().optional(),
  gpuSlots: GpuSlotsSchema.optional(),
  gpu: GpuPlacementSchema.optional(),
  storageGb: z.number().int().positive().optional(),
  /** Selkies: TURN credentials the edge minted for the pod (coturn shared-secret scheme); the pod relays through them. */
  turn: PodTurnSchema.optional(),
  /**
   * Selkies: the desktop is a warm pool's unclaimed member, nobody's yet: its pod gets a throwaway home (emptyDir)
   * instead of a user's volume. A claim's start, without it, replaces the pod with one that mounts the claimer's home.
   */
  scratchHome: z.boolean().optional(),
  /**
   * Selkies: the node the pod should run on when no GPU booking names one: a claimed pool member's, whose kubelet
   * has the image already (a pod cannot take a volume once it runs, so the claimer's pod is a new one).
   */
  node: z.string().min(1).max(253).optional(),
  /** The snapshot a snapshot, restore or snapshot-delete task works on (on-prem-bridge/src/tasks/snapshot-desktop.ts). */
  snapshot: z
    .object({ name: SnapshotNameSchema, withRam: z.boolean().default(false), description: z.string().max(200).optional() })
    .optional(),
  /** A create that forks: the new desktop is a linked clone of this desktop's VM at this snapshot. */
  forkOf: z.object({ desktopId: DesktopIdSchema, snapshot: SnapshotNameSchema }).optional(),
});
export type DesktopSpec = z.infer<typeof DesktopSpecSchema>;

export const CommandSchema = z.object({
  id: z.string().min(1),
  desktopId: DesktopIdSchema,
  kind: CommandKindSchema,
  spec: DesktopSpecSchema,
  issuedAt: z.string(),
  /**
   * The HTTP request that set the command off (its X-Request-Id), for logs end to end; the
   * bridge echoes it on the command's progress, complete and fail frames. Absent for
   * commands the edge issues on its own (clocks, teardown) and from older edges.
   */
  requestId: RequestIdSchema.optional(),
});
export type Command = z.infer<typeof CommandSchema>;

/**
 * Steps a command reports as it passes them, in order. The edge maps them onto the
 * PRD statuses (3.1): clone → PROVISIONING, start_vm → STARTING, wait_ip →
 * WAITING_FOR_IP, connection → CONFIGURING. A resumed command reports the steps it
 * finds already done as well, so the edge sees the same progression either way.
 */
export const StepSchema = z.enum([
  'allocate',
  'clone',
  'configure_vm',
  'start_vm',
  'wait_ip',
  'connection',
  'shutdown',
  'destroy',
  /** A rebuild moving the old VM's data disk onto the new one. */
  'data_disk',
]);
export type Step = z.infer<typeof StepSchema>;

/** Facts about the desktop's infrastructure that a step learned. */
export const DesktopFactsSchema = z.object({
  /** Proxmox VMIDs are 100 to 999999999 (and must fit Postgres' integer). */
  vmId: z.number().int().min(0).max(999_999_999).optional(),
  node: ReportedText().optional(),
  ipAddress: ReportedText().optional(),
  connectionId: ReportedText().optional(),
  /** Selkies: the session's own URL (one hostname per session). */
  sessionUrl: ReportedText().optional(),
});
export type DesktopFacts = z.infer<typeof DesktopFactsSchema>;

// ---- edge → bridge ----

export const HelloFrameSchema = z.object({
  type: z.literal('hello'),
  siteId: z.string(),
  protocolVersion: z.number().int(),
  /** How long a command's lease lasts without a heartbeat. */
  leaseMs: z.number().int().positive(),
  heartbeatMs: z.number().int().positive(),
  /**
   * This control-plane deployment's id at the site (kept by its SiteHub): the bridge marks what it makes with it
   * and the site id, and reconciliation acts only on objects carrying both. Absent from older edges.
   */
  deploymentId: z
    .string()
    .regex(/^[a-z0-9]{6,32}$/)
    .optional(),
});
export const CommandFrameSchema = z.object({ type: z.literal('command'), command: CommandSchema });
export const CancelFrameSchema = z.object({ type: z.literal('cancel'), commandId: z.string(), reason: z.string() });
/** A synchronous request that needs the bridge's credentials (e.g. a Guacamole login). */
export const OpenSessionRequestSchema = z.object({
  op: z.literal('open_session'),
  desktopId: DesktopIdSchema,
  connectionId: z.string(),
});
/** What the site really has (reconciliation): the VMs and connections this control plane made. */
export const InventoryRequestSchema = z.object({ op: z.literal('inventory') });
/** A Selkies session's address and its per-session Basic credentials (derived by the bridge, which keeps the secret). */
export const SessionCredentialsRequestSchema = z.object({ op: z.literal('session_credentials'), desktopId: DesktopIdSchema });
/** A desktop's recent CPU, memory, network and disk use (Proxmox status/current and rrddata); the edge names its VM. */
export const DesktopMetricsRequestSchema = z.object({
  op: z.literal('desktop_metrics'),
  desktopId: DesktopIdSchema,
  vmId: z.number().int().min(100).max(999_999_999),
  node: z.string().min(1).max(64),
});
/**
 * A guest's way into the owner's live Guacamole session (a share link redeemed): the bridge makes the connection's
 * sharing profiles if missing (view: `read-only`; control) and asks Guacamole for a share key on the owner's active
 * connection. Guacamole shares only a live session, so with the owner not connected it is refused.
 */
export const ShareModeSchema = z.enum(['view', 'control']);
export type ShareMode = z.infer<typeof ShareModeSchema>;
/** A share link's id; it names the link's own sharing profile in Guacamole. */
const ShareLinkIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
export const ShareSessionRequestSchema = z.object({
  op: z.literal('share_session'),
  desktopId: DesktopIdSchema,
  connectionId: z.string(),
  mode: ShareModeSchema,
  /** The link redeemed: its guests join under a sharing profile of its own, so revoking it can find them. */
  linkId: ShareLinkIdSchema.optional(),
});
export type ShareSessionRequest = z.infer<typeof ShareSessionRequestSchema>;
/**
 * A share link was revoked: the bridge deletes the link's sharing profile (so no key minted under it joins again) and
 * ends the live Guacamole connections of the guests who joined under it; the response's `ended` counts them.
 */
export const EndSharedSessionsRequestSchema = z.object({
  op: z.literal('end_shared_sessions'),
  desktopId: DesktopIdSchema,
  connectionId: z.string(),
  linkId: ShareLinkIdSchema,
});
export type EndSharedSessionsRequest = z.infer<typeof EndSharedSessionsRequestSchema>;
/** A desktop's snapshots as Proxmox lists them, and whether its disks' storage can take snapshots at all. */
export const DesktopSnapshotsRequestSchema = z.object({ op: z.literal('desktop_snapshots'), desktopId: DesktopIdSchema });
export const RequestFrameSchema = z.object({
  type: z.literal('request'),
  requestId: z.string(),
  request: z.discriminatedUnion('op', [
    OpenSessionRequestSchema,
    InventoryRequestSchema,
    SessionCredentialsRequestSchema,
    DesktopMetricsRequestSchema,
    ShareSessionRequestSchema,
    EndSharedSessionsRequestSchema,
    DesktopSnapshotsRequestSchema,
  ]),
});
export const EdgeToBridgeSchema = z.discriminatedUnion('type', [
  HelloFrameSchema,
  CommandFrameSchema,
  CancelFrameSchema,
  RequestFrameSchema,
]);
export type EdgeToBridge = z.infer<typeof EdgeToBridgeSchema>;
export type OpenSessionRequest = z.infer<typeof OpenSessionRequestSchema>;
export type SiteRequest = z.infer<typeof RequestFrameSchema>['request'];

// ---- bridge → edge ----

export const ReadyFrameSchema = z.object({
  type: z.literal('ready'),
  protocolVersion: z.number().int(),
  bridgeVersion: z.string(),
  /** Commands this bridge process is running now (after a reconnect, not a restart). */
  running: z.array(z.string()),
});
export const AcceptedFrameSchema = z.object({ type: z.literal('accepted'), commandId: z.string(), desktopId: DesktopIdSchema });
export const ProgressFrameSchema = z.object({
  type: z.literal('progress'),
  commandId: z.string(),
  desktopId: DesktopIdSchema,
  step: StepSchema,
  message: ReportedText(500),
  facts: DesktopFactsSchema.optional(),
  /** The command's request id, echoed (see CommandSchema). */
  requestId: RequestIdSchema.optional(),
});
export const HeartbeatFrameSchema = z.object({ type: z.literal('heartbeat'), running: z.array(z.string()) });
export const CompleteFrameSchema = z.object({
  type: z.literal('complete'),
  commandId: z.string(),
  desktopId: DesktopIdSchema,
  facts: DesktopFactsSchema,
  /** The command's request id, echoed (see CommandSchema). */
  requestId: RequestIdSchema.optional(),
});
export const FailFrameSchema = z.object({
  type: z.literal('fail'),
  commandId: z.string(),
  desktopId: DesktopIdSchema,
  /** A sentence a person understands, e.g. "Proxmox refused the clone: VM is locked (clone)". */
  message: ReportedText(1000),
  /** The command's request id, echoed (see CommandSchema). */
  requestId: RequestIdSchema.optional(),
});
export const InventorySchema = z.object({
  /** When the bridge read it (ISO); the edge only judges desktops that were settled before this. */
  takenAt: z.string(),
  /** VMs named desk-<id> or tagged cdaas (live names and power states). */
  vms: z.array(
    z.object({
      vmid: z.number().int(),
      node: z.string(),
      name: z.string(),
      status: z.string(),
      lock: z.string().optional(),
      desktopId: DesktopIdSchema.nullable(),
      /** Tagged with this site and this deployment: the only VMs reconciliation may remove. */
      owned: z.boolean().optional(),
    }),
  ),
  /** Guacamole connections named desk-<id>. */
  connections: z.array(
    z.object({
      identifier: z.string(),
      name: z.string(),
      desktopId: DesktopIdSchema.nullable(),
      /** Its desktop user carries this site's and deployment's mark. */
      owned: z.boolean().optional(),
    }),
  ),
  /** Selkies sessions (pod, service, route) labelled for this site and deployment; absent from VM-only bridges. */
  sessions: z
    .array(
      z.object({
        desktopId: DesktopIdSchema,
        /** Pod phase, or null when only the service/route/secret is left. */
        phase: z.string().nullable(),
        node: z.string().nullable(),
        gpuSlots: z.number().int().nonnegative(),
      }),
    )
    .optional(),
});
export type Inventory = z.infer<typeof InventorySchema>;

/** One row of a desktop's recent use: null where the backend has no value (before the VM's run, a stopped VM). */
export const MetricPointSchema = z.object({
  /** ISO time at the start of the row's interval. */
  time: z.string(),
  /** Share of the desktop's CPUs in use, 0 to 1. */
  cpu: z.number().nullable(),
  memoryBytes: z.number().nullable(),
  memoryMaxBytes: z.number().nullable(),
  netInBytesPerSecond: z.number().nullable(),
  netOutBytesPerSecond: z.number().nullable(),
  diskReadBytesPerSecond: z.number().nullable(),
  diskWriteBytesPerSecond: z.number().nullable(),
});
export type MetricPoint = z.infer<typeof MetricPointSchema>;

export const DesktopMetricsSchema = z
  .object({
    desktopId: z.string(),
    /** proxmox: read from the VM; none: nothing to read, and `reason` says why. */
    source: z.enum(['proxmox', 'none']),
    reason: z.string().nullable(),
    /** When the bridge read them (ISO). */
    takenAt: z.string(),
    /** GET status/current: the VM now (counters of net and disk are totals since the VM started). */
    current: z
      .object({
        status: z.string(),
        cpu: z.number(),
        cpus: z.number(),
        memoryBytes: z.number(),
        memoryMaxBytes: z.number(),
        uptimeSeconds: z.number(),
        netInBytes: z.number(),
        netOutBytes: z.number(),
        diskReadBytes: z.number(),
        diskWriteBytes: z.number(),
      })
      .nullable(),
    /** GET rrddata?timeframe=hour&cf=AVERAGE: the last 70 minutes, one row a minute, oldest first. */
    series: z.array(MetricPointSchema).max(1000),
  })
  .openapi('DesktopMetrics');
export type DesktopMetrics = z.infer<typeof DesktopMetricsSchema>;

/**
 * One snapshot of a desktop's VM (qemu-server's GET /nodes/{node}/qemu/{vmid}/snapshot, without its `current`
 * entry). Proxmox lists no size: on thin storage a snapshot shares its blocks with the disk it was taken of.
 */
export const DesktopSnapshotSchema = z
  .object({
    name: z.string(),
    description: z.string(),
    /** When it was taken (ISO; Proxmox's `snaptime`), null when Proxmox has no time for it. */
    takenAt: z.string().nullable(),
    /** Taken with the guest's RAM (Proxmox's `vmstate`): a restore resumes the guest where it was. */
    withRam: z.boolean(),
    /** The snapshot it was taken on top of, if any. */
    parent: z.string().nullable(),
  })
  .openapi('DesktopSnapshot');
export type DesktopSnapshot = z.infer<typeof DesktopSnapshotSchema>;

export const DesktopSnapshotListSchema = z.object({
  snapshots: z.array(DesktopSnapshotSchema).max(1000),
  /** Null when the desktop's disks can take snapshots; else why not (plain LVM, raw files on a directory). */
  unsupported: z.string().nullable(),
});
export type DesktopSnapshotList = z.infer<typeof DesktopSnapshotListSchema>;

export const ResponseFrameSchema = z.object({
  type: z.literal('response'),
  requestId: z.string(),
  ok: z.boolean(),
  /** open_session: the Guacamole client URL carrying a session only for that connection. */
  url: z.string().optional(),
  /** inventory: what the site has. */
  inventory: InventorySchema.optional(),
  /** session_credentials: the Basic credentials of the session's web client (with `url`). */
  username: z.string().optional(),
  password: z.string().optional(),
  /** desktop_metrics: the desktop's recent use. */
  metrics: DesktopMetricsSchema.optional(),
  /** desktop_snapshots: the VM's snapshots and whether its storage can take them. */
  snapshots: DesktopSnapshotListSchema.optional(),
  error: z.string().optional(),
  /** end_shared_sessions: how many guests' connections were ended. */
  ended: z.number().int().nonnegative().optional(),
  /** share_session: why it was refused when that is not a fault of the site (the owner has no live session). */
  refusal: z.enum(['owner_not_connected', 'vm_missing']).optional(),
});
/**
 * Who is looking at which desktop right now (Guacamole active connections, Selkies
 * clients), sent periodically: each desktop with viewers counts as in use, so its idle
 * clock restarts.
 */
export const ActivityFrameSchema = z.object({
  type: z.literal('activity'),
  desktops: z.array(z.object({ desktopId: DesktopIdSchema, viewers: z.number().int().positive() })).max(10_000),
});
/**
 * The site's GPUs as its Kubernetes reports them (device-plugin time-slicing: each GPU
 * offers `slots` replicas), sent on connect and whenever they change; the edge books
 * sessions' slots against it.
 */
export const CapacityFrameSchema = z.object({
  type: z.literal('capacity'),
  gpus: z
    .array(
      z.object({
        id: z.string().min(1).max(200),
        node: z.string().min(1).max(253),
        model: z.string().max(200),
        slots: z.number().int().positive().max(64),
      }),
    )
    .max(10_000),
});
export const BridgeToEdgeSchema = z.discriminatedUnion('type', [
  ActivityFrameSchema,
  CapacityFrameSchema,
  ReadyFrameSchema,
  AcceptedFrameSchema,
  ProgressFrameSchema,
  HeartbeatFrameSchema,
  CompleteFrameSchema,
  FailFrameSchema,
  ResponseFrameSchema,
]);
export type BridgeToEdge = z.infer<typeof BridgeToEdgeSchema>;
export type ProgressFrame = z.infer<typeof ProgressFrameSchema>;
export type CompleteFrame = z.infer<typeof CompleteFrameSchema>;
export type FailFrame = z.infer<typeof FailFrameSchema>;
