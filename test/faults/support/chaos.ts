/**
 * Kills the bridge with SIGKILL at seeded random moments and starts a new process, as
 * a crash and a supervisor restart would: nothing in the bridge gets to clean up or say
 * goodbye, so the edge only learns of it from the dropped socket.
 */
import type { Stack } from '../../../scripts/lib/stack';

export interface Kill {
  phase: string;
  /** ms since the phase started. */
  atMs: number;
  /** What was in progress at that moment (from the caller's last poll). */
  during: string;
  /** ms from the kill until the new bridge was connected again. */
  downMs: number;
}

export interface ChaosPlan {
  phase: string;
  kills: number;
  /** Each kill comes this long (uniform) after the phase started or the bridge came back. */
  delayMs: [number, number];
  /** How long the bridge stays dead before it is started again. */
  outageMs: [number, number];
  /** Describes the work in progress, for the report. */
  during: () => string;
  /** False once the phase's work has settled: no point killing an idle bridge. */
  busy: () => boolean;
}

export class BridgeChaos {
  readonly kills: Kill[] = [];
  private current: Promise<void> = Promise.resolve();
  private abort = new AbortController();

  constructor(
    private readonly stack: Stack,
    private readonly random: () => number,
  ) {}

  /** Starts killing in the background; `stop` ends it. */
  start(plan: ChaosPlan): void {
    this.abort = new AbortController();
    const signal = this.abort.signal;
    const started = Date.now();
    this.current = (async () => {
      for (let i = 0; i < plan.kills; i++) {
        if (!(await pause(this.between(plan.delayMs), signal)) || !plan.busy()) return;
        const killedAt = Date.now();
        const during = plan.during();
        await this.stack.bridge.stop('SIGKILL');
        // The outage is not cut short by stop(): the bridge must come back either way.
        await pause(this.between(plan.outageMs));
        const bridge = await this.stack.startBridge();
        await this.stack.waitForBridge(true, 60_000).catch((err: unknown) => {
          const edge = this.stack.edge.output().slice(-4000);
          throw new Error(`${String(err)}; the new bridge said:\n${bridge.output().slice(-3000)}\nthe edge said:\n${edge}`);
        });
        this.kills.push({ phase: plan.phase, atMs: killedAt - started, during, downMs: Date.now() - killedAt });
      }
    })();
    // A failed restart surfaces from stop(); until then it must not count as unhandled.
    this.current.catch(() => undefined);
  }

  /** Stops scheduling kills and waits until any restart in progress is connected. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.current;
  }

  private between([min, max]: [number, number]): number {
    return Math.round(min + this.random() * (max - min));
  }
}

/** Resolves true after `ms`, or false at once when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
