/**
 * Postgres holds what must be queried across desktops. The DesktopSession Durable
 * Object stays the source of truth for one desktop; its rows here are a write-through
 * copy that only moves forward (`version` = the DO's transition sequence number).
 */
import { bigserial, index, integer, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

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
  },
  (t) => [
    index('desktops_user_status_idx').on(t.userId, t.status),
    index('desktops_status_idx').on(t.status, t.updatedAt),
    index('desktops_created_by_idx').on(t.createdBy),
  ],
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
