/**
 * What a task is and what it gets. Tasks follow graphile-worker's shape
 * `(payload, { signal, progress, logger })`: they are awaited to the end, report steps
 * as they reach them, and must be safe to run again from the top at any moment, since
 * a redelivered or resumed command starts over and observes what is already done.
 */
import type { DesktopFacts, DesktopSpec, Step } from '../../../src/schemas/bridge-protocol';
import type { DesktopLogin } from '../config';
import type { Owner } from '../desktop-identity';
import type { probeDesktop } from '../drivers/desktop-port';
import type { GuacamoleDriver, ProxmoxDriver } from '../drivers/types';
import type { Ipv4Network } from '../guest-address';
import type { VmLedger } from '../vm-ledger';
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
  /** How each template (by vmid) sets its guests' login; others use defaultLogin. */
  logins: Record<number, DesktopLogin>;
  defaultLogin: DesktopLogin;
  /** The VNC password of `vnc-password` templates. */
  vncPassword: string | null;
  /** Where guest addresses must lie (empty: any routable unicast address). */
  guestNetworks: Ipv4Network[];
  vmidRange: { min: number; max: number };
  linkedClone: boolean;
  shutdownTimeoutSeconds: number;
  ipWaitSeconds: number;
  /** How long a started guest may take to answer on its VNC/RDP port. */
  desktopWaitSeconds: number;
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

export interface TaskDeps {
  proxmox: ProxmoxDriver;
  guacamole: GuacamoleDriver;
  /** Selkies desktops on the site's Kubernetes; absent when the site runs VMs only. */
  selkies?: SelkiesSettings;
  settings: TaskSettings;
  timing: TaskTiming;
  /** Each desktop's VMID, recorded before its clone is started (on disk: it outlives the process). */
  ledger: VmLedger;
  /** This site and deployment: the marks put on everything the bridge makes. */
  owner: () => Owner;
  /** Does the desktop greet on its port? (drivers/desktop-port.ts; tests pass their own guest.) */
  probeDesktop?: typeof probeDesktop;
  sleep?: Sleep;
  random?: () => number;
  now?: () => number;
}
