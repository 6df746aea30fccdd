/**
 * The desktops a fault run drives, with their last known status, and the waiting that
 * goes with them: until every one has left the in-progress statuses, or a deadline.
 */
import type { DesktopStatus } from '../../../src/schemas/desktop';
import { type Action, type EdgeClient, IN_PROGRESS } from './edge-client';
import type { Intent, Phase, TrackedDesktop } from './invariants';
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_MS = 250;

export class Fleet {
  readonly desktops: TrackedDesktop[] = [];
  private next = 0;

  /**
   * `everyDesktop` collects the ids of every fleet of a run, so a judgement of one fleet
   * can leave the others' desktops out instead of calling them orphans.
   */
  constructor(
    private readonly edge: EdgeClient,
    private readonly prefix: string,
    private readonly everyDesktop: Set<string> = new Set(),
  ) {}

  /** Desktops of the other fleets of the run. */
  others(): Set<string> {
    const mine = new Set(this.desktops.map((d) => d.id));
    return new Set([...this.everyDesktop].filter((id) => !mine.has(id)));
  }

  /** Creates `count` desktops at once, each for a user of its own. */
  async create(count: number): Promise<TrackedDesktop[]> {
    // Numbers are taken before the first await, so concurrent calls get users of their own.
    const start = this.next;
    this.next += count;
    const made = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const user = `${this.prefix}-${start + i}`;
        const d = await this.edge.create(user, `Fault run desktop ${start + i}`);
        const tracked: TrackedDesktop = { id: d.id, user, intent: 'RUNNING', status: d.status, errorMessage: null, askedAt: Date.now() };
        return tracked;
      }),
    );
    this.desktops.push(...made);
    for (const d of made) this.everyDesktop.add(d.id);
    return made;
  }

  /** Asks for `action` on each desktop at once; a refusal (409) leaves its intent as it was. */
  async act(targets: TrackedDesktop[], action: Action): Promise<void> {
    const intent: Intent = action === 'stop' ? 'STOPPED' : action === 'start' ? 'RUNNING' : 'DELETED';
    await Promise.all(
      targets.map(async (d) => {
        const res = await this.edge.act(d.user, d.id, action);
        if (res.status !== 202) throw new Error(`${action} of ${d.id} (${d.status}) answered ${res.status}: ${res.message}`);
        d.intent = intent;
        d.askedAt = Date.now();
        d.settledAt = undefined;
        d.status = 'STOPPING'; // both stop and delete answer STOPPING; start answers STARTING
        if (action === 'start') d.status = 'STARTING';
      }),
    );
  }

  /** Re-reads every status from its Durable Object. */
  async refresh(targets: TrackedDesktop[] = this.desktops): Promise<void> {
    await Promise.all(
      targets.map(async (d) => {
        const view = await this.edge.status(d.user, d.id);
        d.status = view.status;
        d.errorMessage = view.errorMessage;
        if (!IN_PROGRESS.has(d.status)) d.settledAt ??= Date.now();
      }),
    );
  }

  /** Polls until none of `targets` is in progress or the deadline passes; marks new failures with `phase`. */
  async settle(targets: TrackedDesktop[], phase: Phase, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const open = targets.filter((d) => IN_PROGRESS.has(d.status));
      if (open.length === 0 || Date.now() > deadline) break;
      await this.refresh(open);
      if (open.every((d) => !IN_PROGRESS.has(d.status))) break;
      await sleep(POLL_MS);
    }
    for (const d of targets) {
      if (d.status !== 'FAILED' || d.failedIn !== undefined) continue;
      d.failedIn = phase;
      d.failure = d.errorMessage;
    }
  }

  inProgress(targets: TrackedDesktop[] = this.desktops): TrackedDesktop[] {
    return targets.filter((d) => IN_PROGRESS.has(d.status));
  }

  /** The desktop of `targets` that took longest from the user's ask to a settled status. */
  static slowest(targets: TrackedDesktop[]): { desktop: TrackedDesktop; ms: number } | undefined {
    let best: { desktop: TrackedDesktop; ms: number } | undefined;
    for (const d of targets) {
      if (d.askedAt === undefined || d.settledAt === undefined) continue;
      const ms = d.settledAt - d.askedAt;
      if (!best || ms > best.ms) best = { desktop: d, ms };
    }
    return best;
  }

  /** "3 PROVISIONING, 1 STARTING" */
  static census(targets: TrackedDesktop[]): string {
    const counts = new Map<DesktopStatus, number>();
    for (const d of targets) counts.set(d.status, (counts.get(d.status) ?? 0) + 1);
    return [...counts].map(([s, n]) => `${n} ${s}`).join(', ') || 'nothing';
  }
}
