/**
 * One fault run: desktops driven create → stop → start → delete, one lifecycle step at a
 * time for all of them, with the step's faults set in both simulators and the bridge
 * killed at random moments while the step is under way. Faults are attributed to the
 * step that was running when the simulators counted them; each step is judged from the
 * simulators once everything has settled.
 */
import type { Stack } from '../../../scripts/lib/stack';
import { mulberry32 } from '../../../simulators/shared/seeded-random';
import { BridgeChaos, type Kill } from './chaos';
import { type EdgeClient, timeline } from './edge-client';
import { Fleet } from './fleet';
import { GUACAMOLE_FAULT_KINDS, type Infra, PROXMOX_FAULT_KINDS, faultDelta } from './infra';
import { type Phase, type TrackedDesktop, type Verdict, isClean, judge } from './invariants';
import { add, crossTable, table } from './report';
import type { FaultScale } from './scale';
import { setTimeout as sleep } from 'node:timers/promises';

export const PHASES: Phase[] = ['create', 'stop', 'start', 'delete'];
/** The bridge's PROXMOX_VMID_RANGE default: an unnamed VM in it is a clone nobody finished. */
export const VMID_RANGE = { min: 20000, max: 29999 };
/** A step whose slowest desktop took longer than this gets that desktop's timeline printed. */
const SLOW_MS = 15_000;

export interface RunContext {
  stack: Stack;
  edge: EdgeClient;
  infra: Infra;
  scale: FaultScale;
  seed: number;
  everyDesktop: Set<string>;
}

interface StepResult {
  phase: Phase;
  label: string;
  group: TrackedDesktop[];
  verdict: Verdict;
  kills: number;
  tookMs: number;
  /** Taken when the step ended: later steps ask again and move the times on. */
  slowest?: { desktop: TrackedDesktop; ms: number };
  totals: boolean;
}

export interface RunResult {
  fleet: Fleet;
  steps: StepResult[];
  kills: Kill[];
  /** kind → step → count, and endpoint → step → count */
  faultsByKind: Map<string, Map<string, number>>;
  faultsByRoute: Map<string, Map<string, number>>;
  totalFaults: number;
  final: Verdict;
  /** Every finding of every step, prefixed with the step. */
  findings: string[];
  failed: TrackedDesktop[];
  tookMs: number;
  /** Timelines of the desktops that failed or were slow, fetched from the edge for the report. */
  notes: string[];
}

/**
 * Waits until the edge holds no command and Proxmox runs no task, then judges; a verdict
 * that is not clean is given the rest of `timeoutMs` to become so (a clean-up after a
 * cancel may still be finishing), and is returned as it is at the deadline.
 */
export async function judgeSettled(
  ctx: Pick<RunContext, 'edge' | 'infra'>,
  fleet: Fleet,
  desktops: TrackedDesktop[],
  timeoutMs = 20_000,
): Promise<Verdict> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await fleet.refresh(desktops);
    const [inFlight, snapshot] = await Promise.all([ctx.edge.commandsInFlight(), ctx.infra.snapshot()]);
    const verdict = judge(desktops, snapshot, VMID_RANGE, fleet.others());
    const quiet = inFlight === 0 && snapshot.activeTasks === 0;
    if ((quiet && isClean(verdict)) || Date.now() > deadline) return verdict;
    await sleep(300);
  }
}

export function findings(v: Verdict): string[] {
  const stuck = [...v.outcomes].filter(([, o]) => o === 'stuck').map(([id]) => `${id} stuck`);
  return [
    ...stuck,
    ...v.problems,
    ...v.orphanVms,
    ...v.orphanConnections,
    ...v.orphanUsers,
    ...v.duplicates,
    ...v.unreadable.map((u) => `unreadable reason: ${u}`),
  ];
}

export async function runLifecycle(ctx: RunContext): Promise<RunResult> {
  const { edge, infra, scale, seed } = ctx;
  // Separate sources, so the kill schedule and the impatient users' timing each replay from the seed.
  const random = mulberry32(seed);
  const chaos = new BridgeChaos(ctx.stack, mulberry32(seed + 1_000));
  const fleet = new Fleet(edge, `faults-${seed}`, ctx.everyDesktop);
  const faultsByKind = new Map<string, Map<string, number>>();
  const faultsByRoute = new Map<string, Map<string, number>>();
  const steps: StepResult[] = [];
  const allFindings: string[] = [];
  const started = Date.now();
  let final: Verdict | undefined;

  for (const [index, phase] of PHASES.entries()) {
    const phaseStarted = Date.now();
    const before = await infra.faultCounts();
    await infra.setFaults({
      proxmox: { rate: scale.proxmoxRate, kinds: PROXMOX_FAULT_KINDS, seed: seed + index },
      guacamole: { rate: scale.guacamoleRate, kinds: GUACAMOLE_FAULT_KINDS, seed: seed + 100 + index },
    });
    let targets: TrackedDesktop[];
    let impatient: TrackedDesktop[] = [];
    let impatience: Promise<unknown> = Promise.resolve();
    if (phase === 'create') {
      [targets, impatient] = await Promise.all([fleet.create(scale.desktops), fleet.create(scale.deletedWhileCreating)]);
      // Their users change their minds while the create is under way: a cancel, a clean-up and a delete race.
      impatience = Promise.all(
        impatient.map(async (d) => {
          await sleep(100 + random() * 1_400);
          await fleet.act([d], 'delete');
        }),
      );
    } else {
      const eligible = { stop: 'RUNNING', start: 'STOPPED', delete: null }[phase];
      targets = fleet.desktops.filter((d) => (eligible ? d.status === eligible : d.status !== 'DELETED'));
      await fleet.act(targets, phase);
    }
    const working = () => fleet.inProgress([...targets, ...impatient]);
    chaos.start({
      phase,
      kills: scale.killsPerPhase,
      delayMs: scale.killDelayMs,
      outageMs: scale.outageMs,
      during: () => Fleet.census(working()),
      busy: () => working().length > 0,
    });
    await impatience;
    await Promise.all([fleet.settle(targets, phase, scale.phaseTimeoutMs), fleet.settle(impatient, 'delete', scale.phaseTimeoutMs)]);
    await chaos.stop();
    await infra.clearFaults();
    const delta = faultDelta(before, await infra.faultCounts());
    for (const [kind, n] of Object.entries(delta.byKind)) add(faultsByKind, kind, phase, n);
    for (const [route, kinds] of Object.entries(delta.byRoute)) for (const n of Object.values(kinds)) add(faultsByRoute, route, phase, n);

    const verdict = await judgeSettled(ctx, fleet, fleet.desktops);
    final = verdict;
    const kills = chaos.kills.filter((k) => k.phase === phase).length;
    const tookMs = Date.now() - phaseStarted;
    steps.push({ phase, label: phase, group: targets, verdict, kills, tookMs, slowest: Fleet.slowest(targets), totals: true });
    if (impatient.length > 0) {
      const slowest = Fleet.slowest(impatient);
      steps.push({ phase: 'delete', label: '  deleted while creating', group: impatient, verdict, kills, tookMs, slowest, totals: false });
    }
    allFindings.push(...findings(verdict).map((f) => `[${phase}] ${f}`));
  }

  const failed = fleet.desktops.filter((d) => d.failedIn !== undefined);
  const notes: string[] = [];
  for (const d of failed) {
    notes.push(`  ${d.id} FAILED in ${d.failedIn}: ${d.failure}\n${timeline(await edge.events(d.user, d.id))}`);
  }
  for (const step of steps) {
    const slow = step.slowest;
    if (slow && slow.ms > SLOW_MS) {
      notes.push(
        `  slowest of ${step.label.trim()}: ${slow.desktop.id} took ${(slow.ms / 1000).toFixed(1)} s\n${timeline(await edge.events(slow.desktop.user, slow.desktop.id))}`,
      );
    }
  }
  const totalFaults = [...faultsByKind.values()].reduce((sum, m) => sum + [...m.values()].reduce((a, b) => a + b, 0), 0);
  return {
    fleet,
    steps,
    kills: chaos.kills,
    faultsByKind,
    faultsByRoute,
    totalFaults,
    final: final as Verdict,
    findings: allFindings,
    failed,
    tookMs: Date.now() - started,
    notes,
  };
}

export function formatReport(run: RunResult, ctx: Pick<RunContext, 'scale' | 'seed'>): string {
  const { scale, seed } = ctx;
  const count = (outcome: string) => [...run.final.outcomes.values()].filter((o) => o === outcome).length;
  const stepRows = run.steps.map((s) => {
    const outcome = (o: string) => s.group.filter((d) => s.verdict.outcomes.get(d.id) === o).length;
    return [
      s.label,
      s.group.length,
      outcome('converged'),
      s.group.filter((d) => d.failedIn === s.phase).length,
      outcome('stuck'),
      outcome('diverged'),
      s.totals ? s.verdict.orphanVms.length : '',
      s.totals ? s.verdict.orphanConnections.length + s.verdict.orphanUsers.length : '',
      s.totals ? s.verdict.duplicates.length : '',
      s.totals ? s.kills : '',
      `${((s.slowest?.ms ?? 0) / 1000).toFixed(1)} s`,
      s.totals ? `${(s.tookMs / 1000).toFixed(1)} s` : '',
    ];
  });
  return [
    '',
    `Fault run (${scale.name}, seed ${seed}): ${scale.desktops} desktops (+${scale.deletedWhileCreating} deleted while creating), ` +
      `fault rate Proxmox ${scale.proxmoxRate} / Guacamole ${scale.guacamoleRate}, ${run.kills.length} bridge SIGKILLs, ${(run.tookMs / 1000).toFixed(1)} s`,
    '',
    crossTable('Faults injected, by kind and lifecycle step (simulator counters)', 'kind', run.faultsByKind, PHASES),
    '',
    crossTable('Faults injected, by endpoint and lifecycle step', 'endpoint', run.faultsByRoute, PHASES),
    '',
    table(
      'Desktops per lifecycle step (judged from Proxmox and Guacamole once settled)',
      [
        'step',
        'asked',
        'converged',
        'FAILED',
        'stuck',
        'diverged',
        'orphan VMs',
        'orphan conns/users',
        'duplicates',
        'kills',
        'slowest',
        'took',
      ],
      stepRows,
    ),
    '',
    table(
      'Final',
      ['', 'count'],
      [
        ['desktops', run.fleet.desktops.length],
        ['converged (DELETED as asked)', count('converged')],
        ['FAILED (with a reason)', run.failed.length],
        ['stuck in progress', count('stuck')],
        ['VMs orphaned', run.final.orphanVms.length],
        ['connections orphaned', run.final.orphanConnections.length],
        ['Guacamole users orphaned', run.final.orphanUsers.length],
        ['duplicates', run.final.duplicates.length],
      ],
    ),
    '',
    'Bridge kills:',
    ...run.kills.map((k) => `  ${k.phase} +${k.atMs} ms, during ${k.during}; back after ${k.downMs} ms`),
    ...(run.notes.length ? ['Failed or slow desktops:', ...run.notes] : []),
    ...(run.findings.length ? ['Findings:', ...run.findings.map((f) => `  ${f}`)] : []),
  ].join('\n');
}
