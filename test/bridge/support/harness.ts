/**
 * Builders shared by the bridge tests: specs, commands, task dependencies with
 * millisecond timings, and a task context that records progress.
 */
import type { Command, CommandKind, DesktopFacts, DesktopSpec, Step } from '../../../src/schemas/bridge-protocol';
import type { TaskContext, TaskDeps, TaskSettings, TaskTiming } from '../../../on-prem-bridge/src/tasks/context';
import { memoryLedger, type VmLedger } from '../../../on-prem-bridge/src/vm-ledger';
import { type LogFields, type Logger, createLogger } from '../../../on-prem-bridge/src/logger';
import { FakeGuacamole } from './fake-guacamole';
import { FakeProxmox } from './fake-proxmox';
import { setTimeout as sleep } from 'node:timers/promises';

export const BRIDGE_SECRET = 'test-bridge-secret-0123456789abcdef0123';

export const FAST_TIMING: TaskTiming = {
  retry: { baseMs: 1, capMs: 4 },
  pollMs: 1,
  apiTimeoutMs: 500,
  cloneTimeoutMs: 5_000,
  powerTimeoutMs: 1_000,
  shutdownGraceMs: 200,
  cleanupTimeoutMs: 5_000,
};

export const SETTINGS: TaskSettings = {
  node: 'pve1',
  templateVmid: 9000,
  templates: { ubuntu: 9000 },
  logins: {},
  defaultLogin: 'cloud-init',
  vncPassword: null,
  guestNetworks: [],
  vmidRange: { min: 20000, max: 29999 },
  linkedClone: true,
  shutdownTimeoutSeconds: 1,
  ipWaitSeconds: 2,
  desktopWaitSeconds: 2,
  bridgeSecret: BRIDGE_SECRET,
};

/** The site and deployment the tests' bridges act for. */
export const OWNER = { siteId: 'test', deploymentId: 'dep0test' };

export interface Infra {
  proxmox: FakeProxmox;
  guacamole: FakeGuacamole;
  /** Plays the bridge's state folder: shared by every bridge of a test, as the disk is across restarts. */
  ledger: VmLedger;
}

export function makeInfra(): Infra {
  return { proxmox: new FakeProxmox(), guacamole: new FakeGuacamole(), ledger: memoryLedger() };
}

export function makeDeps(
  infra: Partial<TaskDeps> & Pick<TaskDeps, 'proxmox' | 'guacamole'>,
  settings: Partial<TaskSettings> = {},
): TaskDeps {
  return {
    timing: FAST_TIMING,
    ledger: memoryLedger(),
    owner: () => OWNER,
    // The fake guests' desktops answer as soon as they have an address.
    probeDesktop: async () => ({ ready: true }),
    ...infra,
    settings: { ...SETTINGS, ...settings },
  };
}

let sequence = 0;
/** A fresh desktop id per call, valid per DesktopIdSchema. */
export function desktopId(): string {
  sequence++;
  return `desk${sequence.toString().padStart(6, '0')}`;
}

export function makeSpec(id: string, overrides: Partial<DesktopSpec> = {}): DesktopSpec {
  return {
    desktopId: id,
    userId: 'user-1',
    name: 'My desktop',
    plan: 'STANDARD',
    cpuCores: 4,
    memoryMb: 4096,
    protocol: 'vnc',
    ...overrides,
  };
}

export function makeCommand(kind: CommandKind, id: string, commandId = `cmd-${kind}-${id}`, spec: Partial<DesktopSpec> = {}): Command {
  return { id: commandId, desktopId: id, kind, spec: makeSpec(id, spec), issuedAt: new Date().toISOString() };
}

export interface RecordedProgress {
  step: Step;
  message: string;
  facts?: DesktopFacts;
}

export function recordingContext(signal: AbortSignal = new AbortController().signal): {
  ctx: TaskContext;
  progress: RecordedProgress[];
  logs: LogFields[];
} {
  const progress: RecordedProgress[] = [];
  const logs: LogFields[] = [];
  const log = memoryLogger(logs);
  return { ctx: { signal, progress: (step, message, facts) => progress.push({ step, message, facts }), log }, progress, logs };
}

export function memoryLogger(into: LogFields[] = []): Logger {
  return createLogger({ level: 'debug', write: (line) => into.push(JSON.parse(line) as LogFields) });
}

/** Consecutive duplicates removed: the order of steps reached. */
export function stepsOf(progress: Array<{ step: Step }>): Step[] {
  return progress.map((p) => p.step).filter((step, i, all) => i === 0 || all[i - 1] !== step);
}

/** Polls `check` every millisecond until it holds (for state inside the fakes). */
export async function until(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(1);
  }
}

/** The error `promise` rejects with; fails the test if it resolves. */
export async function failureOf(promise: Promise<unknown>): Promise<Error> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if ('value' in outcome) throw new Error(`expected a failure, got ${JSON.stringify(outcome.value)}`);
  if (!(outcome.error instanceof Error)) throw new Error(`expected an Error, got ${String(outcome.error)}`);
  return outcome.error;
}
