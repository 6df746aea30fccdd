/**
 * What a task is and what it gets. Tasks follow graphile-worker's shape
 * `(payload, { signal, progress, logger })`: they are awaited to the end, report steps
 * as they reach them, and must be safe to run again from the top at any moment, since
 * a redelivered or resumed command starts over and observes what is already done.
 */
import type { DesktopFacts, DesktopSpec, Step } from '../../../src/schemas/bridge-protocol';
import type { GuacamoleDriver, ProxmoxDriver } from '../drivers/types';
import type { SelkiesSettings } from './selkies';
import type { Logger } from '../logger';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../retry';
import type { Sleep } from '../sleep';

export interface TaskContext {
  /** Aborted when the edge cancels the command; its reason is a CancelledError. */
  signal: AbortSignal;
  /** Sends a `progress` frame (which also extends the command's lease). */
  progress(step: Step, message: string, facts?: DesktopFacts): void;
  log: Logger;
}

/** Resolves to the facts the `complete` frame carries; throws to `fail`. */
export type Task = (spec: DesktopSpec, ctx: TaskContext) => Promise<DesktopFacts>;

/** The site's choices, taken from the bridge configuration. */
export interface TaskSettings {
  node: string;
  templateVmid: number;
  templates: Record<string, number>;
  vmidRange: { min: number; max: number };
  linkedClone: boolean;
  shutdownTimeoutSeconds: number;
  ipWaitSeconds: number;
  bridgeSecret: string;
}

/** Deadlines and intervals; tests shrink them to milliseconds. */
export interface TaskTiming {
  retry: RetryPolicy;
  /** Interval for polling Proxmox tasks, locks, power state and the guest agent. */
  pollMs: number;
  /** Deadline of an ordinary API step, retries included. */
  apiTimeoutMs: number;
  /** Deadline of a clone (full clones copy whole disks), including waiting out a clone lock. */
  cloneTimeoutMs: number;
  /** Deadline of a start/stop/destroy, task included. */
  powerTimeoutMs: number;
  /** Extra time beyond SHUTDOWN_TIMEOUT_SECONDS before we stop waiting for the shutdown task. */
  shutdownGraceMs: number;
  /** Deadline of the clean-up after a failed or cancelled create. */
  cleanupTimeoutMs: number;
}

export const DEFAULT_TIMING: TaskTiming = {
  retry: DEFAULT_RETRY_POLICY,
  pollMs: 2_000,
  apiTimeoutMs: 2 * 60_000,
  cloneTimeoutMs: 30 * 60_000,
  powerTimeoutMs: 5 * 60_000,
  shutdownGraceMs: 30_000,
  cleanupTimeoutMs: 10 * 60_000,
};

/**
 * A clone has no name until the copy ends (its config is only `lock: clone`), so an
 * unnamed clone this process did not start was started by an earlier process and may
 * be a desktop's own; tasks wait for those (findDesktopVmSettled).
 */
export interface CloneRegistry {
  /** VMIDs this process is cloning into right now. */
  inFlight: Set<number>;
  /** Unnamed clones of earlier processes still locked after the clone deadline: left to an operator. */
  stuck: Set<number>;
}

export const newCloneRegistry = (): CloneRegistry => ({ inFlight: new Set(), stuck: new Set() });

export interface TaskDeps {
  proxmox: ProxmoxDriver;
  guacamole: GuacamoleDriver;
  /** Selkies desktops on the site's Kubernetes; absent when the site runs VMs only. */
  selkies?: SelkiesSettings;
  settings: TaskSettings;
  timing: TaskTiming;
  /** One per process: what it knows about unnamed clones. */
  clones: CloneRegistry;
  sleep?: Sleep;
  random?: () => number;
  now?: () => number;
}
