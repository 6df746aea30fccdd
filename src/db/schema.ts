/**
 * Postgres holds what must be queried across desktops. The DesktopSession Durable
 * Object stays the source of truth for one desktop; its rows here are a write-through
 * copy that only moves forward (`version` = the DO's transition sequence number).
 */
import type { AuditRole } from '../schemas/jobs';
import type { DesktopScheduleSetting, SnapshotSchedule } from '../schemas/snapshot';
import { bigserial, doublePrecision, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'string' });

export const desktops = pgTable(
  'desktops',
  {
    id: text('id').primaryKey(),
    userId: text('user_id').notNull(),
    name: text('name').notNull(),
    plan: text('plan').notNull(),
    cpuCores: integer('cpu_cores').notNull(),
    memoryMb: integer('memory_mb').notNull(),
    protocol: text('protocol').notNull(),
    status: text('status').notNull(),
    statusMessage: text('status_message'),
    errorMessage: text('error_message'),
    siteId: text('site_id').notNull(),
    vmId: integer('vm_id'),
    node: text('node'),
    ipAddress: text('ip_address'),
    connectionId: text('connection_id'),
    createdBy: text('created_by').notNull(),
    version: integer('version').notNull().default(0),
    createdAt: ts('created_at').notNull(),
    updatedAt: ts('updated_at').notNull(),
    lastAccessedAt: ts('last_accessed_at'),
    expiresAt: ts('expires_at'),
    deletedAt: ts('deleted_at'),
    idleTimeoutMinutes: doublePrecision('idle_timeout_minutes').notNull().default(60),
    maxSessionMinutes: integer('max_session_minutes'),
    lastActivityAt: ts('last_activity_at'),
    lastActivitySource: text('last_activity_source'),
    lastActivityReason: text('last_activity_reason'),
    idleStopAt: ts('idle_stop_at'),
    sessionEndsAt: ts('session_ends_at'),
    stopReason: text('stop_reason'),
    templateId: text('template_id'),
    backend: text('backend').notNull().default('proxmox'),
    gpuSlots: integer('gpu_slots').notNull().default(0),
    sessionUrl: text('session_url'),
    /** The warm pool it was claimed from, ready (issue 13). */
    claimedFromPool: text('claimed_from_pool'),
    /** The desktop's next clock (watchdog, idle stop, session end, expiry, warnings): the cron safety net's index. */
    nextDueAt: ts('next_due_at'),
    /**
     * When the scheduled-snapshot cron next looks at this desktop; null: never (no schedule, or DELETED). Not part of
     * the write-through: a new row starts due, so the cron finds out once whether its template has a schedule.
     */
    snapshotDueAt: ts('snapshot_due_at').defaultNow(),
    /** When the cron last asked for a scheduled snapshot of it. */
    snapshotRunAt: ts('snapshot_run_at'),
  },
  (t) => [
    index('desktops_user_status_idx').on(t.userId, t.status),
    index('desktops_status_idx').on(t.status, t.updatedAt),
    index('desktops_created_by_idx').on(t.createdBy),
    index('desktops_site_status_idx').on(t.siteId, t.status),
    index('desktops_next_due_idx').on(t.nextDueAt),
    index('desktops_idle_stop_idx').on(t.idleStopAt),
    index('desktops_snapshot_due_idx').on(t.snapshotDueAt),
  ],
);

/** Running time per desktop (pay-per-hour billing): one row per RUNNING interval. */
export const usageIntervals = pgTable(
  'usage_intervals',
  {
    id: text('id').primaryKey(),
    desktopId: text('desktop_id').notNull(),
    userId: text('user_id').notNull(),
    plan: text('plan').notNull(),
    startedAt: ts('started_at').notNull(),
    stoppedAt: ts('stopped_at'),
    stopReason: text('stop_reason'),
  },
  (t) => [index('usage_user_started_idx').on(t.userId, t.startedAt)],
);

export const desktopEvents = pgTable(
  'desktop_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    desktopId: text('desktop_id').notNull(),
    seq: integer('seq').notNull(),
    fromStatus: text('from_status'),
    toStatus: text('to_status').notNull(),
    event: text('event').notNull(),
    actor: text('actor').notNull(),
    reason: text('reason').notNull(),
    at: ts('at').notNull(),
  },
  // The outbox may deliver a transition twice; (desktop, seq) makes the replay a no-op.
  (t) => [uniqueIndex('desktop_events_desktop_seq_idx').on(t.desktopId, t.seq)],
);

/** Per-user quota; a user without a row gets the default limit. */
export const users = pgTable('users', {
  id: text('id').primaryKey(),
  maxDesktops: integer('max_desktops'),
  createdAt: ts('created_at').notNull(),
  updatedAt: ts('updated_at').notNull(),
});

/** On-prem sites; the bridge authenticates with a key whose SHA-256 is kept here. */
export const sites = pgTable('sites', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  keyHash: text('key_hash').notNull(),
  createdAt: ts('created_at').notNull(),
  lastConnectedAt: ts('last_connected_at'),
  lastDisconnectedAt: ts('last_disconnected_at'),
});

export type DesktopRow = typeof desktops.$inferSelect;

/** Webhook subscriptions. The secret signs deliveries; it is shown once, at creation. */
export const webhooks = pgTable(
  'webhooks',
  {
    id: text('id').primaryKey(),
    /** Who subscribed: `user:<sub>` gets its own desktops, `service:<sub>` those it created, `admin:<sub>` all. */
    ownerRole: text('owner_role').notNull(),
    ownerSub: text('owner_sub').notNull(),
    url: text('url').notNull(),
    /** JSON array of event types. */
    eventTypes: text('event_types').notNull(),
    secret: text('secret').notNull(),
    description: text('description'),
    createdAt: ts('created_at').notNull(),
    deletedAt: ts('deleted_at'),
    /**
     * An admin's subscription (all desktops) is delivered until then: its owner renews it by
     * using the API as an admin, and loses it by using it without the role (demoted).
     */
    adminUntil: ts('admin_until'),
  },
  (t) => [index('webhooks_owner_idx').on(t.ownerRole, t.ownerSub)],
);

/** Every delivery attempt, readable by the subscriber. */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    webhookId: text('webhook_id').notNull(),
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    attempt: integer('attempt').notNull(),
    /** delivered | failed (will retry) | refused (a target that is not public; never sent) | dead (gave up) */
    outcome: text('outcome').notNull(),
    httpStatus: integer('http_status'),
    /** The reason class (DeliveryReason) of an attempt that did not deliver; not the remote's own words. */
    error: text('error'),
    durationMs: integer('duration_ms'),
    at: ts('at').notNull(),
  },
  (t) => [index('webhook_deliveries_webhook_idx').on(t.webhookId, t.at)],
);

/** Every lifecycle and admin action: who, as what, did what to what, from where, with what outcome. */
export const auditLog = pgTable(
  'audit_log',
  {
    id: text('id').primaryKey(),
    at: ts('at').notNull(),
    actor: text('actor').notNull(),
    role: text('role').notNull().$type<AuditRole>(),
    action: text('action').notNull(),
    target: text('target'),
    sourceIp: text('source_ip'),
    requestId: text('request_id'),
    outcome: text('outcome').notNull(),
    details: text('details'),
  },
  (t) => [index('audit_at_idx').on(t.at), index('audit_actor_idx').on(t.actor, t.at), index('audit_target_idx').on(t.target, t.at)],
);

/** What users may launch: a VM template on Proxmox, or a Selkies desktop (GPU or not) on Kubernetes. */
export const templates = pgTable('templates', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  os: text('os').notNull(),
  description: text('description'),
  /** proxmox | selkies */
  backend: text('backend').notNull(),
  /** vnc | rdp (proxmox, through Guacamole) | webrtc (selkies) */
  protocol: text('protocol').notNull(),
  defaultPlan: text('default_plan').notNull(),
  /** GPU slots (time-slicing replicas of one GPU) a session takes: 0 (no GPU), 1, 2, 4 or 8. */
  gpuSlots: integer('gpu_slots').notNull().default(0),
  idleTimeoutMinutes: doublePrecision('idle_timeout_minutes').notNull(),
  maxSessionMinutes: integer('max_session_minutes'),
  /** Size of the user's persistent home volume (selkies). */
  storageGb: integer('storage_gb'),
  /** The pinned container image (selkies). */
  image: text('image'),
  /** The bridge's name for the VM template to clone (proxmox; PROXMOX_TEMPLATES), default when null. */
  vmTemplate: text('vm_template'),
  createdAt: ts('created_at').notNull(),
  updatedAt: ts('updated_at').notNull(),
  retiredAt: ts('retired_at'),
  /** Scheduled snapshots of its desktops (proxmox), unless a desktop has its own setting. */
  snapshotSchedule: jsonb('snapshot_schedule').$type<SnapshotSchedule>(),
});

/** A desktop's own scheduled-snapshot setting (a schedule, or off), kept apart so it can be set before the desktop's row is written through. */
export const desktopSnapshotSchedules = pgTable('desktop_snapshot_schedules', {
  desktopId: text('desktop_id').primaryKey(),
  setting: jsonb('setting').notNull().$type<DesktopScheduleSetting>(),
  updatedAt: ts('updated_at').notNull(),
  updatedBy: text('updated_by').notNull(),
});
