/**
 * The desktop state machine as data: every allowed (from, event) → to is one row.
 * Nothing else in the code base decides whether a status change is allowed; ./decide.ts
 * asks this table, and adds what a transition does besides changing the status.
 */
import type { CommandKind, Step } from '../schemas/bridge-protocol';
import type { DesktopStatus } from '../schemas/desktop';

/**
 * Things a person or a system asks of a desktop (`restore`: back to one of its snapshots; `rebuild`: a new VM from
 * its template, keeping its data disk).
 */
export const USER_ACTIONS = ['create', 'start', 'stop', 'delete', 'restore', 'rebuild'] as const;
export type UserAction = (typeof USER_ACTIONS)[number];

/** What the bridge and the edge's own timers report. */
export type SystemEvent =
  | 'provisioning'
  | 'vm_starting'
  | 'waiting_for_ip'
  | 'configuring'
  | 'create_completed'
  | 'start_completed'
  | 'stop_completed'
  | 'delete_completed'
  | 'restore_completed'
  | 'rebuild_completed'
  | 'command_failed'
  | 'watchdog_expired'
  | 'command_undeliverable'
  /** Reconciliation found no VM for a settled desktop. */
  | 'vm_missing'
  /** Reconciliation found the VM of a RUNNING desktop powered off outside the control plane. */
  | 'vm_stopped_externally'
  /** No activity for the idle timeout. */
  | 'idle_timeout'
  /** Running for maxSessionMinutes. */
  | 'session_limit_reached'
  /** expiresAt passed: the desktop is deleted. */
  | 'expired'
  /** A ready member of a warm pool is taken by a user: its status stays, its owner changes. */
  | 'claimed'
  /**
   * A running Selkies member is taken by a user: its pod (a throwaway home) is replaced by one that mounts the
   * claimer's home, on the same node, so it starts again.
   */
  | 'claimed_rehome';

export type DesktopEvent = UserAction | SystemEvent;

export interface TransitionRow {
  from: DesktopStatus | null;
  event: DesktopEvent;
  to: DesktopStatus;
}

const CREATING: DesktopStatus[] = ['PENDING', 'PROVISIONING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING'];
const IN_PROGRESS: DesktopStatus[] = [...CREATING, 'STOPPING'];
const NOT_DELETED: DesktopStatus[] = [...IN_PROGRESS, 'RUNNING', 'STOPPED', 'FAILED'];

const rows = (from: (DesktopStatus | null)[], event: DesktopEvent, to: DesktopStatus): TransitionRow[] =>
  from.map((f) => ({ from: f, event, to }));

/** PRD 3.1 (create progression), 3.3 (lifecycle operations), 12.2 (statuses). */
export const TRANSITIONS: readonly TransitionRow[] = [
  // create: PENDING → PROVISIONING → STARTING → WAITING_FOR_IP → CONFIGURING → RUNNING
  ...rows([null], 'create', 'PENDING'),
  ...rows(['PENDING'], 'provisioning', 'PROVISIONING'),
  ...rows(['PENDING', 'PROVISIONING'], 'vm_starting', 'STARTING'),
  ...rows(['STARTING'], 'waiting_for_ip', 'WAITING_FOR_IP'),
  ...rows(['WAITING_FOR_IP'], 'configuring', 'CONFIGURING'),
  // A resumed command may find later steps already done; completion is accepted from
  // any creating status so the desktop still converges.
  ...rows(CREATING, 'create_completed', 'RUNNING'),
  // start: STOPPED → STARTING → WAITING_FOR_IP → CONFIGURING → RUNNING
  ...rows(['STOPPED'], 'start', 'STARTING'),
  ...rows(['STARTING', 'WAITING_FOR_IP', 'CONFIGURING'], 'start_completed', 'RUNNING'),
  // restore: RUNNING or STOPPED → STARTING (Proxmox rolls the VM back, then it is brought online as after a start)
  // → WAITING_FOR_IP → CONFIGURING → RUNNING. STARTING, not a status of its own: the PRD's statuses are what
  // clients handle, and a restore is a start from another disk; the transition's event and reason say `restore`.
  ...rows(['RUNNING', 'STOPPED'], 'restore', 'STARTING'),
  ...rows(['STARTING', 'WAITING_FOR_IP', 'CONFIGURING'], 'restore_completed', 'RUNNING'),
  // rebuild: RUNNING or STOPPED → PROVISIONING (a new VM is cloned from the template, the old one's data disk moved
  // onto it, the old one destroyed) → STARTING → WAITING_FOR_IP → CONFIGURING → RUNNING, the statuses of a create
  // from its second step, so a client waiting for RUNNING needs nothing new. Completion is accepted from every one
  // of them: a resumed rebuild may find later steps done. A FAILED desktop may be rebuilt too: its way back with its
  // data disk, when its VM still exists (the bridge says so, and the desktop stays FAILED, when it does not).
  ...rows(['RUNNING', 'STOPPED', 'FAILED'], 'rebuild', 'PROVISIONING'),
  ...rows(['PROVISIONING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING'], 'rebuild_completed', 'RUNNING'),
  // stop: RUNNING → STOPPING → STOPPED
  ...rows(['RUNNING'], 'stop', 'STOPPING'),
  ...rows(['STOPPING'], 'stop_completed', 'STOPPED'),
  // delete: any → STOPPING (tearing down) → DELETED once the VM and connection are gone
  ...rows(NOT_DELETED, 'delete', 'STOPPING'),
  ...rows(['STOPPING'], 'delete_completed', 'DELETED'),
  // failures end every in-progress step in FAILED, with the reason recorded
  ...rows(IN_PROGRESS, 'command_failed', 'FAILED'),
  ...rows(IN_PROGRESS, 'watchdog_expired', 'FAILED'),
  ...rows(IN_PROGRESS, 'command_undeliverable', 'FAILED'),
  // reconciliation: what the site really has wins over what the edge believed
  ...rows(['RUNNING', 'STOPPED'], 'vm_missing', 'FAILED'),
  ...rows(['RUNNING'], 'vm_stopped_externally', 'STOPPED'),
  // the desktop's own clocks: idle stop, session limit, expiry
  ...rows(['RUNNING'], 'idle_timeout', 'STOPPING'),
  ...rows(['RUNNING'], 'session_limit_reached', 'STOPPING'),
  ...rows(NOT_DELETED, 'expired', 'STOPPING'),
  // a warm pool's ready member becomes a user's desktop as it is (a stopped one is then started)
  ...rows(['RUNNING'], 'claimed', 'RUNNING'),
  ...rows(['STOPPED'], 'claimed', 'STOPPED'),
  // a running Selkies member: its pod is replaced by the claimer's (their home mounted), then start_completed
  ...rows(['RUNNING'], 'claimed_rehome', 'STARTING'),
];

const index = new Map<string, DesktopStatus>(TRANSITIONS.map((r) => [`${r.from ?? '∅'}|${r.event}`, r.to]));

/** The status `event` leads to from `from`, or null when the table has no such row. */
export function nextStatus(from: DesktopStatus | null, event: DesktopEvent): DesktopStatus | null {
  return index.get(`${from ?? '∅'}|${event}`) ?? null;
}

/** Which user actions are possible from `status` (for error messages and docs). */
export function allowedActions(status: DesktopStatus | null): UserAction[] {
  return USER_ACTIONS.filter((a) => nextStatus(status, a) !== null);
}

/** Statuses in which a watchdog runs because the desktop waits on work in progress. */
export function isInProgress(status: DesktopStatus): boolean {
  return IN_PROGRESS.includes(status);
}

/** The command a user action sends to the bridge. */
export const ACTION_COMMAND: Record<UserAction, CommandKind> = {
  create: 'create',
  start: 'start',
  stop: 'stop',
  delete: 'delete',
  restore: 'restore',
  rebuild: 'rebuild',
};

/**
 * Commands that leave the status as it is (taking and deleting a snapshot): sent while the desktop is settled, they
 * are its active command until the bridge answers, and end without a transition.
 */
export const SIDE_COMMANDS = ['snapshot', 'delete_snapshot'] as const satisfies readonly CommandKind[];
export type SideCommand = (typeof SIDE_COMMANDS)[number];
export const isSideCommand = (kind: CommandKind): kind is SideCommand => (SIDE_COMMANDS as readonly CommandKind[]).includes(kind);

/** Where snapshots may be taken, deleted or restored: a settled desktop whose VM exists. */
export const SNAPSHOT_STATUSES: readonly DesktopStatus[] = ['RUNNING', 'STOPPED'];

/** Bridge progress steps that move the status forward (PRD 3.1); other steps only update the message. */
export const STEP_EVENT: Partial<Record<Step, SystemEvent>> = {
  clone: 'provisioning',
  start_vm: 'vm_starting',
  wait_ip: 'waiting_for_ip',
  connection: 'configuring',
};

export const COMPLETION_EVENT: Record<Exclude<CommandKind, SideCommand>, SystemEvent> = {
  create: 'create_completed',
  start: 'start_completed',
  stop: 'stop_completed',
  delete: 'delete_completed',
  restore: 'restore_completed',
  rebuild: 'rebuild_completed',
};
