/**
 * The desktop's rules as a table: for a desktop in a given state and something that happens
 * to it, what it becomes, what it must do (the outbox effects), what its viewers are told,
 * and which usage interval opens or closes. Pure: no Workers runtime, no storage, no clock.
 */
import { describe, expect, it } from 'vitest';
import { type DecideRules, type Decision, type DesktopInput, decide } from '../../src/desktop/decide';
import type { OutboxEffect, SessionState } from '../../src/desktop/session-state';
import { DEFAULT_LAUNCH } from '../../src/lib/launch';
import { type NewDesktopInput, newDesktop } from '../../src/lib/new-desktop';
import type { Desktop, DesktopStatus } from '../../src/schemas/desktop';

const NOW = Date.parse('2026-12-04T12:00:00Z');
const MIN = 60_000;

function rules(): DecideRules {
  let n = 0;
  return {
    timers: { watchdogSeconds: () => 600, warningLeadMs: 5 * MIN },
    newId: (prefix) => `${prefix}${++n}`,
  };
}

const desktop = (overrides: Partial<NewDesktopInput> = {}): Desktop =>
  newDesktop(
    {
      id: 'dk1',
      userId: 'alice',
      name: 'Studio',
      plan: 'BASIC',
      protocol: 'vnc',
      siteId: 'site-a',
      createdBy: 'user:alice',
      idleTimeoutMinutes: 30,
      ...overrides,
    },
    new Date(NOW - 60 * MIN),
  );

/** An unclaimed member of pool p1, and what a claim by bob sets. */
const POOL_MEMBER: Partial<Desktop> = { userId: 'pool:p1', createdBy: 'system:pool:p1', lastActivityAt: null };
const CLAIMER = {
  userId: 'bob',
  createdBy: 'user:bob',
  name: 'Bob’s desk',
  idleTimeoutMinutes: 45,
  maxSessionMinutes: null,
  expiresAt: null,
};

/** A desktop that has been in `status` for ten minutes, running `command` if one is given. */
function stateIn(
  status: DesktopStatus,
  opts: { command?: SessionState['activeCommand']; desktop?: Partial<Desktop>; state?: Partial<SessionState> } = {},
): SessionState {
  const running = status === 'RUNNING';
  return {
    desktop: {
      ...desktop(),
      status,
      vmId: 100,
      connectionId: running ? '7' : null,
      lastActivityAt: running ? new Date(NOW - 10 * MIN).toISOString() : null,
      ...opts.desktop,
    },
    revision: 5,
    seq: 5,
    statusSince: NOW - 10 * MIN,
    activeCommand: opts.command ?? null,
    runningSince: running ? NOW - 10 * MIN : null,
    warned: {},
    openUsageId: running ? 'u0' : null,
    launch: { ...DEFAULT_LAUNCH, runId: 'rn0' },
    ...opts.state,
  };
}

/** An effect in a few words, so a row of the table reads as what happens. */
function summary(e: OutboxEffect): string {
  switch (e.kind) {
    case 'index':
      return `index ${e.entry.status} → ${e.names.join(', ')}`;
    case 'job':
      return `job ${e.message.command.kind}`;
    case 'cancel':
      return `cancel ${e.commandId}`;
    case 'release':
      return `release ${e.userId}`;
    case 'gpu_release':
      return `gpu_release ${e.runId}`;
    case 'event':
      return `event ${e.event.type}`;
    case 'audit':
      return `audit ${e.record.action}`;
    case 'snapshot_release':
      return `snapshot_release ${e.name}`;
  }
}

interface Row {
  name: string;
  state: SessionState | null;
  input: DesktopInput;
  now?: number;
  status?: DesktopStatus;
  effects?: string[];
  live?: string[];
  usage?: string[];
  refused?: string;
  check?: (d: Decision) => void;
}

/** A running Selkies member of pool p1 (GPU booked on k3s-gpu-1 for its run rn0), and the claimer's fresh TURN. */
const GPU_PLACEMENT = { gpuId: 'k3s-gpu-1/gpu0', node: 'k3s-gpu-1' };
const MEMBER_TURN = { host: 'turn.lan', port: 3478, username: '1:desk-dk1', credential: 'old', expiresAt: '2026-12-05T11:00:00Z' };
const CLAIM_TURN = { ...MEMBER_TURN, username: '2:desk-dk1', credential: 'new', expiresAt: '2026-12-05T12:00:00Z' };
const SELKIES_MEMBER: Partial<Desktop> = {
  ...POOL_MEMBER,
  backend: 'selkies',
  protocol: 'webrtc',
  gpuSlots: 1,
  vmId: null,
  connectionId: null,
  node: 'k3s-gpu-1',
  sessionUrl: 'https://desk-dk1.desk.example/',
};
const SELKIES_LAUNCH = { ...DEFAULT_LAUNCH, runId: 'rn0', image: 'ghcr.io/selkies-project/nvidia-egl-desktop:24.04-1', gpu: GPU_PLACEMENT };
const jobOf = (d: Decision) => d.effects.flatMap((e) => (e.kind === 'job' ? [e.message.command] : []))[0];

const createCmd = { id: 'c-create', kind: 'create' as const };
const report = (frame: Record<string, unknown>, siteId = 'site-a'): DesktopInput =>
  ({ kind: 'bridge', siteId, frame: { commandId: 'c-create', desktopId: 'dk1', ...frame } }) as DesktopInput;

const TABLE: Row[] = [
  // ---- requests ----
  {
    name: 'create: PENDING, its create command, its index entries and a status event',
    state: null,
    input: { kind: 'create', desktop: desktop(), actor: 'user:alice', launch: { ...DEFAULT_LAUNCH, runId: 'rn1' } },
    status: 'PENDING',
    effects: ['index PENDING → user:alice', 'job create', 'event desktop.status_changed'],
    live: ['transition null → PENDING'],
    check: (d) => expect(d.next?.activeCommand).toEqual({ id: 'c1', kind: 'create' }),
  },
  {
    name: 'create of a desktop that exists: nothing new (a retried create)',
    state: stateIn('PENDING', { command: createCmd }),
    input: { kind: 'create', desktop: desktop(), actor: 'user:alice', launch: DEFAULT_LAUNCH },
    effects: [],
  },
  {
    name: 'create with an id another desktop holds: refused',
    state: stateIn('PENDING'),
    input: { kind: 'create', desktop: desktop({ id: 'dk2' }), actor: 'user:alice', launch: DEFAULT_LAUNCH },
    refused: 'CONFLICT',
  },
  {
    name: 'stop a RUNNING desktop: STOPPING, its stop command, the usage interval closes',
    state: stateIn('RUNNING'),
    input: { kind: 'act', action: 'stop', actor: 'user:alice' },
    status: 'STOPPING',
    effects: ['index STOPPING → user:alice', 'job stop', 'event desktop.status_changed'],
    usage: ['close u0'],
    check: (d) => expect(d.next?.desktop.stopReason).toBe('stopped by user:alice'),
  },
  {
    name: 'stop a STOPPED desktop: refused, naming what is possible',
    state: stateIn('STOPPED'),
    input: { kind: 'act', action: 'stop', actor: 'user:alice' },
    refused: 'INVALID_STATE',
    check: (d) => expect(d.refused?.message).toBe('Cannot stop desktop dk1: it is STOPPED; possible now: start, delete, rebuild'),
  },
  {
    name: 'start a STOPPED desktop: a new run with the run id it was prepared with',
    state: stateIn('STOPPED'),
    input: { kind: 'act', action: 'start', actor: 'user:alice', launch: { runId: 'rn9' } },
    status: 'STARTING',
    effects: ['index STARTING → user:alice', 'job start', 'event desktop.status_changed'],
    check: (d) => expect(d.next?.launch.runId).toBe('rn9'),
  },
  {
    name: 'start a GPU desktop without a booking for the run: refused, never sent with the last run’s',
    state: stateIn('STOPPED', {
      desktop: { gpuSlots: 2, backend: 'selkies' },
      state: { launch: { ...DEFAULT_LAUNCH, runId: 'rn0', gpu: { gpuId: 'g0', node: 'n' } } },
    }),
    input: { kind: 'act', action: 'start', actor: 'user:alice', launch: { runId: 'rn9' } },
    refused: 'INVALID_STATE',
  },
  {
    name: 'delete while the deletion runs: nothing new (DELETE is idempotent)',
    state: stateIn('STOPPING', { command: { id: 'c-del', kind: 'delete' } }),
    input: { kind: 'act', action: 'delete', actor: 'user:alice' },
    effects: [],
  },
  {
    name: 'delete during a create: the create is cancelled and the delete sent',
    state: stateIn('PROVISIONING', { command: createCmd }),
    input: { kind: 'act', action: 'delete', actor: 'user:alice' },
    status: 'STOPPING',
    effects: ['index STOPPING → user:alice', 'cancel c-create', 'job delete', 'event desktop.status_changed'],
  },
  // ---- snapshots ----
  {
    name: 'take a snapshot of a RUNNING desktop: its command goes out, the status stays',
    state: stateIn('RUNNING'),
    input: { kind: 'snapshot', op: 'take', snapshot: { name: 'before-upgrade', withRam: true }, actor: 'user:alice' },
    status: 'RUNNING',
    effects: ['job snapshot'],
    live: ['progress snapshot'],
    check: (d) => {
      expect(d.transition).toBeNull();
      expect(d.next?.activeCommand).toEqual({ id: 'c1', kind: 'snapshot', snapshot: 'before-upgrade', since: NOW });
      const job = d.effects.find((e) => e.kind === 'job');
      expect(job?.kind === 'job' && job.message.command.spec.snapshot).toEqual({ name: 'before-upgrade', withRam: true });
    },
  },
  {
    name: 'take a snapshot while the desktop is starting: refused',
    state: stateIn('STARTING', { command: { id: 'c-start', kind: 'start' } }),
    input: { kind: 'snapshot', op: 'take', snapshot: { name: 's1', withRam: false }, actor: 'user:alice' },
    refused: 'INVALID_STATE',
  },
  {
    name: 'a second snapshot command while one runs: refused, and so is a stop',
    state: stateIn('RUNNING', { command: { id: 'c-snap', kind: 'snapshot', snapshot: 's1', since: NOW - MIN } }),
    input: { kind: 'snapshot', op: 'delete', snapshot: { name: 's0', withRam: false }, actor: 'user:alice' },
    refused: 'CONFLICT',
    check: (d) => {
      expect(d.refused?.message).toContain('s1');
      const s = stateIn('RUNNING', { command: { id: 'c-snap', kind: 'snapshot', snapshot: 's1', since: NOW - MIN } });
      expect(decide(s, { kind: 'act', action: 'stop', actor: 'user:alice' }, NOW, rules()).refused?.code).toBe('CONFLICT');
    },
  },
  {
    name: 'a snapshot command that never ended no longer blocks: the next one supersedes it',
    state: stateIn('STOPPED', { command: { id: 'c-snap', kind: 'snapshot', snapshot: 's1', since: NOW - 20 * MIN } }),
    input: { kind: 'snapshot', op: 'delete', snapshot: { name: 's1', withRam: false }, actor: 'user:alice' },
    status: 'STOPPED',
    effects: ['cancel c-snap', 'job delete_snapshot'],
  },
  {
    name: 'the bridge took the snapshot: the command ends, a snapshot_created event, no transition',
    state: stateIn('RUNNING', { command: { id: 'c-create', kind: 'snapshot', snapshot: 's1', since: NOW - MIN } }),
    input: report({ type: 'complete', facts: {} }),
    status: 'RUNNING',
    effects: ['event desktop.snapshot_created'],
    live: ['progress snapshot'],
    check: (d) => expect(d.next?.activeCommand).toBeNull(),
  },
  {
    name: 'the snapshot failed (plain LVM): the quota slot is given back, a snapshot_failed event with the reason',
    state: stateIn('RUNNING', { command: { id: 'c-create', kind: 'snapshot', snapshot: 's1', since: NOW - MIN } }),
    input: report({ type: 'fail', message: 'storage that cannot take snapshots' }),
    status: 'RUNNING',
    effects: ['snapshot_release s1', 'event desktop.snapshot_failed'],
    check: (d) => {
      expect(d.next?.desktop.statusMessage).toBe('The snapshot s1 could not be taken: storage that cannot take snapshots');
      expect(d.next?.activeCommand).toBeNull();
    },
  },
  {
    name: 'a snapshot deleted: the quota slot is given back',
    state: stateIn('STOPPED', { command: { id: 'c-create', kind: 'delete_snapshot', snapshot: 's1', since: NOW - MIN } }),
    input: report({ type: 'complete', facts: {} }),
    status: 'STOPPED',
    effects: ['snapshot_release s1', 'event desktop.snapshot_deleted'],
  },
  {
    name: 'a snapshot command the queue could not deliver: it ends, the desktop stays as it was',
    state: stateIn('RUNNING', { command: { id: 'c-snap', kind: 'snapshot', snapshot: 's1', since: NOW - MIN } }),
    input: { kind: 'undeliverable', commandId: 'c-snap', attempts: 9 },
    status: 'RUNNING',
    effects: ['snapshot_release s1', 'event desktop.snapshot_failed'],
  },
  {
    name: 'restore a RUNNING desktop: STARTING, its restore command naming the snapshot, the usage interval closes',
    state: stateIn('RUNNING'),
    input: { kind: 'act', action: 'restore', actor: 'user:alice', snapshot: 's1' },
    status: 'STARTING',
    effects: ['index STARTING → user:alice', 'job restore', 'event desktop.status_changed'],
    usage: ['close u0'],
    check: (d) => {
      expect(d.transition?.event).toBe('restore');
      const job = d.effects.find((e) => e.kind === 'job');
      expect(job?.kind === 'job' && job.message.command.spec.snapshot?.name).toBe('s1');
    },
  },
  {
    name: 'restore a STOPPED desktop: a new run, like a start, with the run id it was prepared with',
    state: stateIn('STOPPED'),
    input: { kind: 'act', action: 'restore', actor: 'user:alice', snapshot: 's1', launch: { runId: 'rn9' } },
    status: 'STARTING',
    effects: ['index STARTING → user:alice', 'job restore', 'event desktop.status_changed'],
    check: (d) => expect(d.next?.launch.runId).toBe('rn9'),
  },
  {
    name: 'restore while STOPPING: refused in that status',
    state: stateIn('STOPPING', { command: { id: 'c-stop', kind: 'stop' } }),
    input: { kind: 'act', action: 'restore', actor: 'user:alice', snapshot: 's1' },
    refused: 'INVALID_STATE',
  },
  {
    name: 'a restore that completes: RUNNING again, and a snapshot_restored event',
    state: stateIn('CONFIGURING', { command: { id: 'c-create', kind: 'restore', snapshot: 's1' } }),
    input: report({ type: 'complete', facts: { ipAddress: '10.0.0.9' } }),
    status: 'RUNNING',
    effects: ['index RUNNING → user:alice', 'event desktop.status_changed', 'event desktop.running', 'event desktop.snapshot_restored'],
    live: ['transition CONFIGURING → RUNNING'],
    usage: ['open u1'],
  },
  {
    name: 'rebuild a RUNNING desktop: PROVISIONING, a rebuild command, the usage interval closes',
    state: stateIn('RUNNING'),
    input: { kind: 'act', action: 'rebuild', actor: 'user:alice' },
    status: 'PROVISIONING',
    effects: ['index PROVISIONING → user:alice', 'job rebuild', 'event desktop.status_changed'],
    usage: ['close u0'],
    check: (d) => {
      expect(d.transition?.event).toBe('rebuild');
      expect(d.next?.activeCommand?.kind).toBe('rebuild');
    },
  },
  {
    name: 'rebuild a STOPPED desktop: a new run, like a start, with the run id it was prepared with',
    state: stateIn('STOPPED'),
    input: { kind: 'act', action: 'rebuild', actor: 'user:alice', launch: { runId: 'rn9' } },
    status: 'PROVISIONING',
    effects: ['index PROVISIONING → user:alice', 'job rebuild', 'event desktop.status_changed'],
    check: (d) => expect(d.next?.launch.runId).toBe('rn9'),
  },
  {
    name: 'rebuild a FAILED desktop: its way back, a new run, the error cleared',
    state: stateIn('FAILED', { desktop: { errorMessage: 'Proxmox refused the clone' } }),
    input: { kind: 'act', action: 'rebuild', actor: 'user:alice', launch: { runId: 'rn7' } },
    status: 'PROVISIONING',
    effects: ['index PROVISIONING → user:alice', 'job rebuild', 'event desktop.status_changed'],
    check: (d) => {
      expect(d.next?.launch.runId).toBe('rn7');
      expect(d.next?.desktop.errorMessage).toBeNull();
    },
  },
  {
    name: 'rebuild while STARTING: refused in that status',
    state: stateIn('STARTING', { command: { id: 'c-start', kind: 'start' } }),
    input: { kind: 'act', action: 'rebuild', actor: 'user:alice' },
    refused: 'INVALID_STATE',
  },
  {
    name: 'rebuild a WebRTC desktop: refused, there is no template VM',
    state: stateIn('RUNNING', { desktop: { backend: 'selkies' } }),
    input: { kind: 'act', action: 'rebuild', actor: 'user:alice' },
    refused: 'INVALID_STATE',
    check: (d) => expect(d.refused?.message).toMatch(/WebRTC \(Selkies\) desktop.*cannot be rebuilt/),
  },
  {
    name: 'rebuild while a snapshot is being taken: refused until it is done',
    state: stateIn('RUNNING', { command: { id: 'c-snap', kind: 'snapshot', snapshot: 's1', since: NOW - MIN } }),
    input: { kind: 'act', action: 'rebuild', actor: 'user:alice' },
    refused: 'CONFLICT',
  },
  {
    name: 'a rebuild starting its new VM: STARTING, and the desktop learns the new VMID',
    state: stateIn('PROVISIONING', { command: { id: 'c-create', kind: 'rebuild' } }),
    input: report({ type: 'progress', step: 'start_vm', message: 'starting VM 131 on pve1', facts: { vmId: 131, node: 'pve1' } }),
    status: 'STARTING',
    effects: ['index STARTING → user:alice', 'event desktop.status_changed'],
    live: ['transition PROVISIONING → STARTING', 'progress start_vm'],
    check: (d) => expect(d.next?.desktop.vmId).toBe(131),
  },
  {
    name: 'a rebuild moving the data disk: only the message changes',
    state: stateIn('PROVISIONING', { command: { id: 'c-create', kind: 'rebuild' } }),
    input: report({ type: 'progress', step: 'data_disk', message: 'moving scsi1 of VM 100 onto VM 131' }),
    status: 'PROVISIONING',
    effects: [],
    live: ['progress data_disk'],
  },
  {
    name: 'a rebuild that completes: RUNNING on the new VM, and a rebuilt event',
    state: stateIn('CONFIGURING', { command: { id: 'c-create', kind: 'rebuild' } }),
    input: report({ type: 'complete', facts: { vmId: 131, ipAddress: '10.0.0.9' } }),
    status: 'RUNNING',
    effects: ['index RUNNING → user:alice', 'event desktop.status_changed', 'event desktop.running', 'event desktop.rebuilt'],
    live: ['transition CONFIGURING → RUNNING'],
    usage: ['open u1'],
    check: (d) => {
      expect(d.next?.desktop.vmId).toBe(131);
      expect(d.next?.desktop.statusMessage).toBe('Desktop rebuilt from its template and ready');
    },
  },
  {
    name: 'a rebuild that fails: FAILED with the bridge’s reason',
    state: stateIn('PROVISIONING', { command: { id: 'c-create', kind: 'rebuild' } }),
    input: report({ type: 'fail', message: 'Storage does not support moving of this disk to another VM' }),
    status: 'FAILED',
    effects: ['index FAILED → user:alice', 'event desktop.status_changed', 'event desktop.failed'],
  },
  {
    name: 'a keepalive on a RUNNING desktop: activity, told to viewers, no transition',
    state: stateIn('RUNNING'),
    input: { kind: 'activity', source: 'keepalive', reason: 'still here' },
    status: 'RUNNING',
    effects: [],
    live: ['activity keepalive'],
    check: (d) => {
      expect(d.transition).toBeNull();
      expect(d.next?.desktop.lastActivityAt).toBe(new Date(NOW).toISOString());
      expect(d.next?.desktop.idleStopAt).toBe(new Date(NOW + 30 * MIN).toISOString());
    },
  },
  {
    name: 'a keepalive on a STOPPED desktop: refused',
    state: stateIn('STOPPED'),
    input: { kind: 'activity', source: 'keepalive', reason: null },
    refused: 'INVALID_STATE',
  },
  {
    name: 'viewers reported by another site: ignored',
    state: stateIn('RUNNING'),
    input: { kind: 'activity', source: 'viewer', reason: '1 viewer connected', siteId: 'site-b' },
    refused: 'IGNORED',
  },
  {
    name: 'a connect link for a RUNNING desktop: accessed, counts as activity',
    state: stateIn('RUNNING'),
    input: { kind: 'connect', via: 'guacamole' },
    live: ['activity connect'],
    check: (d) => expect(d.next?.desktop.lastAccessedAt).toBe(new Date(NOW).toISOString()),
  },
  {
    name: 'a Selkies connect for a desktop without a session: refused',
    state: stateIn('RUNNING'),
    input: { kind: 'connect', via: 'selkies' },
    refused: 'INVALID_STATE',
  },

  // ---- the bridge's reports ----
  {
    name: 'the clone step: PROVISIONING, with the VM id it reports',
    state: stateIn('PENDING', { command: createCmd, desktop: { vmId: null } }),
    input: report({ type: 'progress', step: 'clone', message: 'cloning', facts: { vmId: 123 } }),
    status: 'PROVISIONING',
    effects: ['index PROVISIONING → user:alice', 'event desktop.status_changed'],
    live: ['transition PENDING → PROVISIONING', 'progress clone'],
    check: (d) => expect(d.next?.desktop.vmId).toBe(123),
  },
  {
    name: 'a step that moves nothing: the message only',
    state: stateIn('PROVISIONING', { command: createCmd }),
    input: report({ type: 'progress', step: 'clone', message: 'still cloning' }),
    status: 'PROVISIONING',
    effects: [],
    live: ['progress clone'],
  },
  {
    name: 'create completed: RUNNING, the usage interval and idle clock start',
    state: stateIn('CONFIGURING', { command: createCmd }),
    input: report({ type: 'complete', facts: { ipAddress: '10.0.0.5', connectionId: '9' } }),
    status: 'RUNNING',
    effects: ['index RUNNING → user:alice', 'event desktop.status_changed', 'event desktop.running'],
    usage: ['open u1'],
    check: (d) => {
      expect(d.next?.activeCommand).toBeNull();
      expect(d.next?.desktop).toMatchObject({ connectionId: '9', lastActivitySource: 'started', statusMessage: 'Desktop ready' });
    },
  },
  {
    name: 'delete completed: DELETED, the user’s and the creating service’s quota slots freed, the GPU run released',
    state: stateIn('STOPPING', {
      command: { id: 'c-create', kind: 'delete' },
      desktop: { createdBy: 'service:stream-app', userId: 'stream-app:42', gpuSlots: 2, backend: 'selkies' },
    }),
    input: report({ type: 'complete' }),
    status: 'DELETED',
    effects: [
      'index DELETED → user:stream-app:42, service:stream-app',
      'release stream-app:42',
      'release service stream-app',
      'gpu_release rn0',
      'event desktop.status_changed',
      'event desktop.deleted',
    ],
  },
  {
    name: 'a failed create: FAILED with the bridge’s reason, nothing to cancel',
    state: stateIn('PROVISIONING', { command: createCmd }),
    input: report({ type: 'fail', message: 'storage full' }),
    status: 'FAILED',
    effects: ['index FAILED → user:alice', 'event desktop.status_changed', 'event desktop.failed'],
    check: (d) => expect(d.next?.desktop.errorMessage).toBe('storage full'),
  },
  {
    name: 'a report from another site: ignored',
    state: stateIn('PROVISIONING', { command: createCmd }),
    input: report({ type: 'complete' }, 'site-b'),
    refused: 'IGNORED',
  },
  {
    name: 'a report of a superseded command: ignored',
    state: stateIn('STOPPING', { command: { id: 'c-del', kind: 'delete' } }),
    input: report({ type: 'complete' }),
    refused: 'IGNORED',
  },
  {
    name: 'the clean-up after a failed create completes: still FAILED, its facts cleared',
    state: stateIn('FAILED', { command: { id: 'c-create', kind: 'delete', teardown: true } }),
    input: report({ type: 'complete' }),
    status: 'FAILED',
    effects: [],
    check: (d) => expect(d.next).toMatchObject({ activeCommand: null, desktop: { vmId: null, connectionId: null } }),
  },
  {
    name: 'a command the queue could not deliver: FAILED, saying the bridge is offline',
    state: stateIn('PENDING', { command: createCmd }),
    input: { kind: 'undeliverable', commandId: 'c-create', attempts: 5 },
    status: 'FAILED',
    effects: ['index FAILED → user:alice', 'cancel c-create', 'job delete', 'event desktop.status_changed', 'event desktop.failed'],
    check: (d) => expect(d.next?.activeCommand).toMatchObject({ kind: 'delete', teardown: true }),
  },

  // ---- reconciliation ----
  {
    name: 'reconciliation finds no VM for a RUNNING desktop: FAILED, the usage interval closes',
    state: stateIn('RUNNING'),
    input: { kind: 'reconcile', siteId: 'site-a', takenAt: new Date(NOW).toISOString(), vm: null },
    status: 'FAILED',
    effects: ['index FAILED → user:alice', 'event desktop.status_changed', 'event desktop.failed'],
    usage: ['close u0'],
  },
  {
    name: 'reconciliation finds the VM powered off: STOPPED',
    state: stateIn('RUNNING'),
    input: { kind: 'reconcile', siteId: 'site-a', takenAt: new Date(NOW).toISOString(), vm: { status: 'stopped' } },
    status: 'STOPPED',
    effects: ['index STOPPED → user:alice', 'event desktop.status_changed', 'event desktop.stopped'],
    usage: ['close u0'],
  },
  {
    name: 'reconciliation of a desktop that changed after the inventory was taken: not judged',
    state: stateIn('RUNNING'),
    input: { kind: 'reconcile', siteId: 'site-a', takenAt: new Date(NOW - 20 * MIN).toISOString(), vm: null },
    refused: 'INVALID_STATE',
  },

  // ---- clocks ----
  {
    name: 'nothing due: nothing happens',
    state: stateIn('RUNNING'),
    input: { kind: 'clock', bridgeOffline: false },
    effects: [],
    check: (d) => expect(d.next).toBeNull(),
  },
  {
    name: 'the idle warning: an event, told to viewers, remembered',
    state: stateIn('RUNNING'),
    input: { kind: 'clock', bridgeOffline: false },
    now: NOW + 16 * MIN,
    status: 'RUNNING',
    effects: ['event desktop.idle_warning'],
    live: ['warning idle'],
    check: (d) => expect(d.next?.warned.idle).toBe(NOW + 20 * MIN),
  },
  {
    name: 'idle for the whole timeout: STOPPING with a stop command and the reason',
    state: stateIn('RUNNING', { state: { warned: { idle: NOW + 20 * MIN } } }),
    input: { kind: 'clock', bridgeOffline: false },
    now: NOW + 21 * MIN,
    status: 'STOPPING',
    effects: ['index STOPPING → user:alice', 'job stop', 'event desktop.status_changed'],
    usage: ['close u0'],
    check: (d) => expect(d.next?.desktop.stopReason).toMatch(/^No activity for 30 minutes/),
  },
  {
    name: 'a step past its watchdog while the bridge is offline: FAILED, saying so, and the create torn down',
    state: stateIn('PROVISIONING', { command: createCmd }),
    input: { kind: 'clock', bridgeOffline: true },
    now: NOW + 11 * MIN,
    status: 'FAILED',
    effects: ['index FAILED → user:alice', 'cancel c-create', 'job delete', 'event desktop.status_changed', 'event desktop.failed'],
    check: (d) =>
      expect(d.next?.desktop.errorMessage).toBe(
        "Timed out after 600 s in PROVISIONING (cloning the template VM) while the bridge of site 'site-a' was offline",
      ),
  },
  {
    name: 'expiry: deleted, and the try remembered so a failure is retried an hour later',
    state: stateIn('STOPPED', { desktop: { expiresAt: new Date(NOW - MIN).toISOString() }, state: { warned: { expiry: NOW - MIN } } }),
    input: { kind: 'clock', bridgeOffline: false },
    status: 'STOPPING',
    effects: ['index STOPPING → user:alice', 'job delete', 'event desktop.status_changed'],
    check: (d) => expect(d.next?.expiryTriedAt).toBe(NOW),
  },
  {
    name: 'a GPU desktop that stops by itself releases the GPU of its run',
    state: stateIn('STOPPING', {
      command: { id: 'c-create', kind: 'stop' },
      desktop: { gpuSlots: 1, backend: 'selkies' },
      state: { launch: { ...DEFAULT_LAUNCH, runId: 'rn7' } },
    }),
    input: report({ type: 'complete' }),
    status: 'STOPPED',
    effects: ['index STOPPED → user:alice', 'gpu_release rn7', 'event desktop.status_changed', 'event desktop.stopped'],
  },

  // ---- warm pool members (issue 13) ----
  {
    name: 'a pool member that comes up RUNNING: listed nowhere, billed to nobody, no idle clock',
    state: stateIn('CONFIGURING', { command: createCmd, desktop: POOL_MEMBER, state: { pool: 'p1' } }),
    input: report({ type: 'complete', facts: { connectionId: '7' } }),
    status: 'RUNNING',
    effects: ['index RUNNING → ', 'event desktop.status_changed', 'event desktop.running'],
    check: (d) => {
      expect(d.next?.openUsageId).toBeNull();
      expect([d.next?.desktop.idleStopAt, d.next?.desktop.sessionEndsAt]).toEqual([null, null]);
    },
  },
  {
    name: 'claim a RUNNING member: the claimer’s desktop from now, its usage, idle clock and session start now',
    state: stateIn('RUNNING', { desktop: POOL_MEMBER, state: { pool: 'p1', openUsageId: null, runningSince: NOW - 60 * MIN } }),
    input: { kind: 'claim', poolId: 'p1', owner: CLAIMER, actor: 'user:bob' },
    status: 'RUNNING',
    effects: ['index RUNNING → user:bob', 'event desktop.status_changed', 'event desktop.running'],
    live: ['transition RUNNING → RUNNING'],
    usage: ['open u1'],
    check: (d) => {
      expect(d.next?.pool).toBeNull();
      expect(d.next?.desktop).toMatchObject({ ...CLAIMER, claimedFromPool: 'p1', lastActivitySource: 'started' });
      expect(d.next?.runningSince).toBe(NOW);
      expect(d.next?.desktop.idleStopAt).toBe(new Date(NOW + 45 * MIN).toISOString());
      expect(d.transition).toMatchObject({ event: 'claimed', actor: 'user:bob', reason: 'claimed from warm pool p1 for bob' });
    },
  },
  {
    name: 'claim a STOPPED member: the claimer’s, still STOPPED (the object starts it next); nothing billed yet',
    state: stateIn('STOPPED', { desktop: POOL_MEMBER, state: { pool: 'p1' } }),
    input: { kind: 'claim', poolId: 'p1', owner: CLAIMER, actor: 'user:bob' },
    status: 'STOPPED',
    effects: ['index STOPPED → user:bob', 'event desktop.status_changed', 'event desktop.stopped'],
  },
  {
    name: 'claim a desktop that is no longer the pool’s (claimed already): refused',
    state: stateIn('RUNNING', { desktop: { ...CLAIMER, claimedFromPool: 'p1' } }),
    input: { kind: 'claim', poolId: 'p1', owner: { ...CLAIMER, userId: 'carol' }, actor: 'user:carol' },
    refused: 'CONFLICT',
  },
  {
    name: 'a Selkies member is built with a throwaway home: its create names no user’s volume',
    state: null,
    input: {
      kind: 'create',
      desktop: desktop(SELKIES_MEMBER),
      actor: 'system:pool:p1',
      launch: { ...SELKIES_LAUNCH, turn: MEMBER_TURN },
      pool: 'p1',
    },
    status: 'PENDING',
    check: (d) => expect(jobOf(d)?.spec).toMatchObject({ userId: 'pool:p1', scratchHome: true, gpu: GPU_PLACEMENT }),
  },
  {
    name: 'claim a RUNNING Selkies member: the claimer’s, STARTING, its pod replaced by one with their home on the same node; GPU kept',
    state: stateIn('RUNNING', {
      desktop: SELKIES_MEMBER,
      state: { pool: 'p1', openUsageId: null, launch: { ...SELKIES_LAUNCH, turn: MEMBER_TURN } },
    }),
    input: { kind: 'claim', poolId: 'p1', owner: CLAIMER, actor: 'user:bob', turn: CLAIM_TURN },
    status: 'STARTING',
    // No gpu_release: the member's run, and its booking, go on as the claimer's. Nothing billed until it is RUNNING.
    effects: ['index STARTING → user:bob', 'job start', 'event desktop.status_changed'],
    live: ['transition RUNNING → STARTING'],
    check: (d) => {
      expect(d.next?.pool).toBeNull();
      expect(d.next?.desktop).toMatchObject({ ...CLAIMER, claimedFromPool: 'p1' });
      expect(d.transition).toMatchObject({ event: 'claimed_rehome', actor: 'user:bob' });
      expect(d.transition?.reason).toBe(
        'claimed from warm pool p1 for bob: its pod is replaced by one with their home on k3s-gpu-1, where its image is',
      );
      const spec = jobOf(d)?.spec;
      expect(spec).toMatchObject({ userId: 'bob', tenant: 'users', node: 'k3s-gpu-1', gpu: GPU_PLACEMENT, turn: CLAIM_TURN });
      expect(spec?.scratchHome).toBeUndefined();
      expect(d.next?.launch).toMatchObject({ runId: 'rn0', gpu: GPU_PLACEMENT, turn: CLAIM_TURN });
      expect(d.next?.activeCommand).toMatchObject({ kind: 'start' });
    },
  },
  {
    name: 'claim a RUNNING Selkies member without a GPU: the new pod goes to the node the member ran on',
    state: stateIn('RUNNING', {
      desktop: { ...SELKIES_MEMBER, gpuSlots: 0, node: 'k3s-cpu-2' },
      state: { pool: 'p1', openUsageId: null, launch: { ...SELKIES_LAUNCH, gpu: null, turn: MEMBER_TURN } },
    }),
    input: { kind: 'claim', poolId: 'p1', owner: CLAIMER, actor: 'user:bob', turn: CLAIM_TURN },
    status: 'STARTING',
    check: (d) => expect(jobOf(d)?.spec).toMatchObject({ userId: 'bob', node: 'k3s-cpu-2', gpuSlots: 0 }),
  },
  {
    name: 'the re-homed Selkies desktop comes up: RUNNING, billed to its claimer from now, idle clock theirs',
    state: stateIn('CONFIGURING', {
      command: { id: 'c-start', kind: 'start' },
      desktop: { ...SELKIES_MEMBER, ...CLAIMER, claimedFromPool: 'p1' },
      state: { launch: { ...SELKIES_LAUNCH, turn: CLAIM_TURN } },
    }),
    input: report({ commandId: 'c-start', type: 'complete', facts: { sessionUrl: 'https://desk-dk1.desk.example/' } }),
    status: 'RUNNING',
    usage: ['open u1'],
    check: (d) => {
      expect(d.next?.desktop.idleStopAt).toBe(new Date(NOW + 45 * MIN).toISOString());
      expect(d.effects.map(summary)).not.toContain('gpu_release rn0');
    },
  },
  {
    name: 'claim a member with work in progress: refused, never handed out half-ready',
    state: stateIn('STOPPING', { command: { id: 'c-stop', kind: 'stop' }, desktop: POOL_MEMBER, state: { pool: 'p1' } }),
    input: { kind: 'claim', poolId: 'p1', owner: CLAIMER, actor: 'user:bob' },
    refused: 'INVALID_STATE',
  },
];

describe('decide: what each thing that happens to a desktop does', () => {
  for (const row of TABLE) {
    it(row.name, () => {
      const d = decide(row.state, row.input, row.now ?? NOW, rules());
      if (row.refused) {
        expect(d.refused?.code).toBe(row.refused);
        expect(d.next).toBeNull();
        expect(d.effects).toEqual([]);
      } else expect(d.refused).toBeNull();
      if (row.status) expect(d.next?.desktop.status).toBe(row.status);
      if (row.effects) expect(d.effects.map(summary)).toEqual(row.effects);
      if (row.live) {
        const live = d.liveMessages.map((m) =>
          m.type === 'transition'
            ? `transition ${m.transition.from} → ${m.transition.to}`
            : m.type === 'progress'
              ? `progress ${m.step}`
              : m.type === 'warning'
                ? `warning ${m.warning}`
                : m.type === 'activity'
                  ? `activity ${m.source}`
                  : m.type,
        );
        expect(live).toEqual(row.live);
      }
      if (row.usage) expect(d.usage.map((u) => `${u.kind} ${u.id}`)).toEqual(row.usage);
      else if (!row.refused) expect(d.usage).toEqual([]);
      row.check?.(d);
    });
  }

  it('records every transition with its time, actor and reason, one seq after the last', () => {
    const d = decide(stateIn('RUNNING'), { kind: 'act', action: 'stop', actor: 'user:alice' }, NOW, rules());
    expect(d.transition).toEqual({
      seq: 6,
      at: new Date(NOW).toISOString(),
      from: 'RUNNING',
      to: 'STOPPING',
      event: 'stop',
      actor: 'user:alice',
      reason: 'stop requested',
    });
    expect(d.next?.revision).toBe(6);
  });

  it('never changes the state it was given', () => {
    const s = stateIn('RUNNING');
    const before = structuredClone(s);
    for (const input of TABLE.map((r) => r.input)) decide(s, input, NOW + 21 * MIN, rules());
    expect(s).toEqual(before);
  });
});
