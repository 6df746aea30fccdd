/**
 * The convergence invariants, judged from what the simulators hold: every desktop ended
 * where its user asked, or FAILED with a reason a person can read; a live desktop has
 * exactly one VM (named desk-<id>, tagged cdaas) and one Guacamole connection pointing
 * at it; nothing named desk-* outlives its desktop; no name is used twice.
 */
import type { DesktopStatus } from '../../../src/schemas/desktop';
import { IN_PROGRESS } from './edge-client';
import type { InfraSnapshot } from './infra';

export type Intent = 'RUNNING' | 'STOPPED' | 'DELETED';
export type Phase = 'create' | 'stop' | 'start' | 'delete';

export interface TrackedDesktop {
  id: string;
  user: string;
  /** Where the user last asked it to be. */
  intent: Intent;
  status: DesktopStatus;
  errorMessage: string | null;
  /** The phase in which it became FAILED, if it did, and the errorMessage it had then. */
  failedIn?: Phase;
  failure?: string | null;
  /** When the user last asked for something, and when the desktop left the in-progress statuses after that (ms). */
  askedAt?: number;
  settledAt?: number;
}

export type Outcome = 'converged' | 'failed' | 'stuck' | 'diverged';

export interface Verdict {
  outcomes: Map<string, Outcome>;
  /** Desktop-level findings ("RUNNING but 2 VMs"), one line each. */
  problems: string[];
  orphanVms: string[];
  orphanConnections: string[];
  orphanUsers: string[];
  duplicates: string[];
  /** FAILED desktops whose errorMessage is empty or not meant for people. */
  unreadable: string[];
}

/** A FAILED desktop's message must be a sentence, not a stack trace, a raw body or a placeholder. */
export function isReadable(message: string | null): boolean {
  if (!message) return false;
  const text = message.trim();
  return (
    text.length >= 15 && /^[A-Z]/.test(text) && !/\n\s+at\s/.test(text) && !/\[object \w+\]|\bundefined\b|<html|^\{"|Error: \{/i.test(text)
  );
}

const DESK = /^desk-([a-z0-9]{8,40})$/;

/**
 * `others` are desktops of the run that this judgement is not about: their VMs and
 * connections are neither counted nor called orphans.
 */
export function judge(
  desktops: TrackedDesktop[],
  infra: InfraSnapshot,
  vmidRange: { min: number; max: number },
  others: ReadonlySet<string> = new Set(),
): Verdict {
  const verdict: Verdict = {
    outcomes: new Map(),
    problems: [],
    orphanVms: [],
    orphanConnections: [],
    orphanUsers: [],
    duplicates: [],
    unreadable: [],
  };
  const byId = new Map(desktops.map((d) => [d.id, d]));
  const vmsByName = groupBy(
    infra.vms.filter((v) => !v.template),
    (v) => v.name,
  );
  const connectionsByName = groupBy(infra.connections, (c) => c.name);

  for (const [name, vms] of vmsByName)
    if (DESK.test(name) && vms.length > 1) verdict.duplicates.push(`${vms.length} VMs named ${name}: ${vms.map((v) => v.vmid).join(', ')}`);
  for (const [name, cs] of connectionsByName)
    if (DESK.test(name) && cs.length > 1) verdict.duplicates.push(`${cs.length} connections named ${name}`);

  /** A desktop that may own infrastructure: not deleted, and not a create that failed (which must clean up after itself). */
  const mayOwn = (d: TrackedDesktop | undefined) =>
    d !== undefined && d.status !== 'DELETED' && !(d.status === 'FAILED' && d.failedIn === 'create');

  for (const d of desktops) {
    const name = `desk-${d.id}`;
    const vms = vmsByName.get(name) ?? [];
    const connections = connectionsByName.get(name) ?? [];
    const problem = (text: string) => verdict.problems.push(`${d.id} (${d.status}, wanted ${d.intent}): ${text}`);
    if (IN_PROGRESS.has(d.status)) {
      verdict.outcomes.set(d.id, 'stuck');
      continue;
    }
    if (d.status === 'FAILED') {
      verdict.outcomes.set(d.id, 'failed');
      if (!isReadable(d.errorMessage)) verdict.unreadable.push(`${d.id}: ${JSON.stringify(d.errorMessage)}`);
      if (vms.length > 1 || connections.length > 1) problem(`${vms.length} VMs and ${connections.length} connections`);
      continue;
    }
    if (d.status !== d.intent) {
      verdict.outcomes.set(d.id, 'diverged');
      problem('ended somewhere the user did not ask for');
      continue;
    }
    verdict.outcomes.set(d.id, 'converged');
    if (d.status === 'DELETED') continue; // anything left is counted as an orphan below
    if (vms.length !== 1) problem(`${vms.length} VMs named ${name}`);
    if (connections.length !== 1) problem(`${connections.length} connections named ${name}`);
    const [vm] = vms;
    const [connection] = connections;
    if (vm && !vm.tags.includes('cdaas')) problem(`VM ${vm.vmid} lacks the cdaas tag (tags: ${vm.tags.join(';') || 'none'})`);
    if (vm?.lock) problem(`VM ${vm.vmid} is still locked (${vm.lock})`);
    const wantPower = d.status === 'RUNNING' ? 'running' : 'stopped';
    if (vm && vm.status !== wantPower) problem(`VM ${vm.vmid} is ${vm.status}`);
    if (d.status === 'RUNNING' && vm && connection && connection.hostname !== vm.ipv4) {
      problem(`connection ${connection.identifier} points at ${connection.hostname}, the VM has ${vm.ipv4}`);
    }
  }

  for (const vm of infra.vms) {
    if (vm.template) continue;
    const id = DESK.exec(vm.name)?.[1];
    if (id !== undefined) {
      if (!others.has(id) && !mayOwn(byId.get(id))) verdict.orphanVms.push(`VM ${vm.vmid} ${vm.name} (${describe(byId.get(id))})`);
    } else if (vm.vmid >= vmidRange.min && vm.vmid <= vmidRange.max) {
      // The bridge's range holds only desktops; an unnamed VM there is a clone nobody finished or removed.
      verdict.orphanVms.push(`VM ${vm.vmid} '${vm.name}' (unnamed${vm.lock ? `, lock ${vm.lock}` : ''})`);
    } else if (vm.tags.includes('cdaas')) {
      verdict.orphanVms.push(`VM ${vm.vmid} '${vm.name}' (tagged cdaas)`);
    }
  }
  for (const c of infra.connections) {
    const id = DESK.exec(c.name)?.[1];
    if (id !== undefined && !others.has(id) && !mayOwn(byId.get(id)))
      verdict.orphanConnections.push(`connection ${c.identifier} ${c.name} (${describe(byId.get(id))})`);
  }
  for (const u of infra.users) {
    const id = DESK.exec(u)?.[1];
    if (id !== undefined && !others.has(id) && !mayOwn(byId.get(id))) verdict.orphanUsers.push(`user ${u} (${describe(byId.get(id))})`);
  }
  return verdict;
}

/** True when nothing is wrong at all (FAILED desktops are allowed, with a readable reason). */
export function isClean(v: Verdict): boolean {
  return (
    v.problems.length === 0 &&
    v.orphanVms.length === 0 &&
    v.orphanConnections.length === 0 &&
    v.orphanUsers.length === 0 &&
    v.duplicates.length === 0 &&
    v.unreadable.length === 0 &&
    ![...v.outcomes.values()].some((o) => o === 'stuck' || o === 'diverged')
  );
}

function describe(d: TrackedDesktop | undefined): string {
  if (!d) return 'no such desktop';
  return d.status === 'FAILED' ? `desktop FAILED in ${d.failedIn ?? '?'}` : `desktop ${d.status}`;
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    out.set(k, [...(out.get(k) ?? []), item]);
  }
  return out;
}
