/**
 * What one desktop's Durable Object keeps (SessionState), what it must do after a change
 * (OutboxEffect), and what it tells its viewers (LiveMessage). The shapes are stored and
 * sent as JSON: a field added later must be optional, so objects written by an earlier
 * release still read.
 */
import type { z } from 'zod';
import type { LaunchSpec } from '../lib/launch';
import type { IndexEntry } from '../lib/owner-index';
import type { AcceptedFrameSchema, CommandKind, CompleteFrame, FailFrame, ProgressFrame } from '../schemas/bridge-protocol';
import type { Desktop } from '../schemas/desktop';
import type { DesktopEvent as WebhookEvent } from '../schemas/events';
import type { AuditRecord, JobMessage } from '../schemas/jobs';
import type { WarningKind } from './timers';

export interface SessionState {
  desktop: Desktop;
  /** Bumped on every persisted change; the Postgres row only accepts higher versions. */
  revision: number;
  /** Sequence number of the last transition. */
  seq: number;
  /** When the current status was entered (ms), for the watchdog. */
  statusSince: number;
  /**
   * `teardown`: a delete that removes what an abandoned create built, leaving the desktop FAILED. `snapshot`: the
   * snapshot a snapshot command works on; `since`: when it was sent (ms), so a side command that never ends
   * (src/desktop/transitions.ts SIDE_COMMANDS) does not block the next one for ever.
   */
  activeCommand: { id: string; kind: CommandKind; teardown?: boolean; snapshot?: string; since?: number } | null;
  /** When it last became RUNNING (ms), while RUNNING: the session limit counts from here. */
  runningSince: number | null;
  /** The deadline each warning was sent for (./timers.ts). */
  warned: Partial<Record<WarningKind, number>>;
  /** The usage interval open while RUNNING. */
  openUsageId: string | null;
  /** How to build this desktop, from its template (commands carry it to the bridge). */
  launch: LaunchSpec;
  /** When expiry last tried to delete the desktop (ms): a failed try is repeated an hour later, not at once. */
  expiryTriedAt?: number | null;
  /**
   * The warm pool this desktop is a member of, until someone claims it (src/desktop/pool-plan.ts): while it is
   * set, nobody uses the desktop, so it has no idle clock or session limit and no usage is billed.
   */
  pool?: string | null;
}

export type OutboxEffect =
  /** The desktop's new status for its owners' list indexes; reads wait for it. */
  | { kind: 'index'; names: string[]; entry: IndexEntry }
  | { kind: 'job'; message: JobMessage }
  | { kind: 'cancel'; siteId: string; commandId: string; reason: string }
  /** Frees the desktop's slot in an account's quota (its user's, or the service's that made it). */
  | { kind: 'release'; userId: string; desktopId: string }
  /** A desktop event for webhook subscribers. */
  | { kind: 'event'; event: WebhookEvent }
  /** The session no longer runs: its GPU slots at the site are free again. */
  | { kind: 'gpu_release'; siteId: string; desktopId: string; runId?: string | null }
  /** A snapshot is gone, or was never taken: it no longer counts against its owner's snapshot quota. */
  | { kind: 'snapshot_release'; userId: string; desktopId: string; name: string }
  /** An audit record of something the desktop did by itself (a row Postgres refused). */
  | { kind: 'audit'; record: AuditRecord };

/** What the live stream sends: one schema for the object, the UI and the SDK (src/schemas/live.ts). */
export type { LiveMessage } from '../schemas/live';

/** A usage interval (running time, billed per hour) opened or closed by a transition. */
export type UsageChange =
  | { kind: 'open'; id: string; plan: string; at: number }
  | { kind: 'close'; id: string; at: number; reason: string };

export type AcceptedFrame = z.infer<typeof AcceptedFrameSchema>;
export type BridgeReport = AcceptedFrame | ProgressFrame | CompleteFrame | FailFrame;
export type ReconcileOutcome = 'unknown' | 'unsettled' | 'in_sync' | 'vm_missing' | 'vm_stopped_externally';

/** The few fields a status poll needs (owner fields for the access check): the hottest read, kept small. */
export type DesktopStatusView = Pick<
  Desktop,
  'id' | 'userId' | 'siteId' | 'createdBy' | 'status' | 'statusMessage' | 'errorMessage' | 'updatedAt'
>;
