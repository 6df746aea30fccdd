/**
 * The desktop domain as the PRD defines it (statuses 12.2, plans 5.1), shared by the
 * edge, the Durable Objects and the bridge. Zod is the single source of truth.
 */
import { z } from './zod';

export const DESKTOP_STATUSES = [
  'PENDING',
  'PROVISIONING',
  'STARTING',
  'WAITING_FOR_IP',
  'CONFIGURING',
  'RUNNING',
  'STOPPING',
  'STOPPED',
  'FAILED',
  'DELETED',
] as const;
export const DesktopStatusSchema = z.enum(DESKTOP_STATUSES);
export type DesktopStatus = z.infer<typeof DesktopStatusSchema>;

export const PLANS = {
  BASIC: { cpuCores: 2, memoryMb: 2048, description: 'Light productivity, browsing' },
  STANDARD: { cpuCores: 4, memoryMb: 4096, description: 'Development, office apps' },
  PREMIUM: { cpuCores: 8, memoryMb: 8192, description: 'Content creation, heavy workloads' },
} as const;
export const PlanSchema = z.enum(['BASIC', 'STANDARD', 'PREMIUM']);
export type Plan = z.infer<typeof PlanSchema>;

/**
 * How the browser reaches the desktop: VNC or RDP through Guacamole (Proxmox VMs; SPICE
 * is in no Guacamole release), or WebRTC straight from a Selkies pod.
 */
export const ProtocolSchema = z.enum(['vnc', 'rdp', 'webrtc']);
export type Protocol = z.infer<typeof ProtocolSchema>;

/** Where a desktop runs: a Proxmox VM, or a Selkies pod on the site's Kubernetes. */
export const BackendSchema = z.enum(['proxmox', 'selkies']);
export type Backend = z.infer<typeof BackendSchema>;

/** GPU slots a session takes on one GPU (time-slicing replicas): none, or a power of two up to a whole 8-slot GPU. */
export const GpuSlotsSchema = z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(4), z.literal(8)]);
export type GpuSlots = z.infer<typeof GpuSlotsSchema>;

/**
 * Desktop ids are opaque strings; we mint lowercase alphanumerics so the same id is a
 * valid Proxmox dns-name label, tag and Guacamole name without escaping.
 */
export const DesktopIdSchema = z.string().regex(/^[a-z0-9]{8,40}$/, 'not a desktop id');

/** What last showed that someone uses the desktop (idle stop counts from it). */
export const ActivitySourceSchema = z.enum(['started', 'connect', 'keepalive', 'viewer']);
export type ActivitySource = z.infer<typeof ActivitySourceSchema>;

/** Which clock a warning is about: idle stop, the session limit, or expiry (deletion). */
export const WarningKindSchema = z.enum(['idle', 'session_limit', 'expiry']);
export type WarningKind = z.infer<typeof WarningKindSchema>;

/** The user-visible desktop record (PRD 2.3 data model). */
export const DesktopSchema = z.object({
  id: z.string(),
  userId: z.string(),
  name: z.string(),
  plan: PlanSchema,
  cpuCores: z.number().int(),
  memoryMb: z.number().int(),
  protocol: ProtocolSchema,
  status: DesktopStatusSchema,
  statusMessage: z.string().nullable(),
  errorMessage: z.string().nullable(),
  siteId: z.string(),
  vmId: z.number().int().nullable(),
  node: z.string().nullable(),
  ipAddress: z.string().nullable(),
  connectionId: z.string().nullable(),
  createdBy: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  lastAccessedAt: z.string().nullable(),
  expiresAt: z.string().nullable(),
  deletedAt: z.string().nullable(),
  // Why it is still up, or why it stopped: the idle clock and the limits, spelled out.
  idleTimeoutMinutes: z.number(),
  maxSessionMinutes: z.number().int().nullable(),
  lastActivityAt: z.string().nullable(),
  lastActivitySource: ActivitySourceSchema.nullable(),
  lastActivityReason: z.string().nullable(),
  /** While RUNNING: when it stops unless there is activity first. */
  idleStopAt: z.string().nullable(),
  /** While RUNNING with a session limit: when the session ends. */
  sessionEndsAt: z.string().nullable(),
  /** Why it last stopped (who asked, idle, session limit, expiry, outside the control plane). */
  stopReason: z.string().nullable(),
  templateId: z.string().nullable(),
  backend: BackendSchema,
  gpuSlots: GpuSlotsSchema,
  /** Selkies: the session's own address (one hostname per session). */
  sessionUrl: z.string().nullable(),
  /**
   * The warm pool this desktop was taken from, ready, when it was created (issue 13); null for a desktop built
   * for its request. Absent on desktops made before pools existed.
   */
  claimedFromPool: z.string().nullish(),
});
export type Desktop = z.infer<typeof DesktopSchema>;

export const TransitionRecordSchema = z.object({
  seq: z.number().int(),
  at: z.string(),
  from: DesktopStatusSchema.nullable(),
  to: DesktopStatusSchema,
  event: z.string(),
  actor: z.string(),
  reason: z.string(),
});
export type TransitionRecord = z.infer<typeof TransitionRecordSchema>;
