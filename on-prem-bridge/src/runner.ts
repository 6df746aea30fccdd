/**
 * The leased command runner (graphile-worker / Coder provisioner style). The edge
 * leases a command to us; we answer `accepted`, report progress (which, with the
 * link's heartbeats, keeps the lease) and end in exactly one `complete` or `fail`.
 *
 * - Redelivery is normal: a command already held is only re-acknowledged, and one that
 *   finished recently gets its result again (the first copy may have been lost with
 *   the link). Anything older simply runs again: tasks observe before they act.
 * - Commands for one desktop run one at a time, in arrival order; at most
 *   `concurrency` run at once overall.
 * - The newest command of a desktop wins, as at the edge, where every new command
 *   supersedes the active one: a command issued before one this process has already seen
 *   for the same desktop is stale (a redelivery that lost a race) and fails without
 *   touching anything, and a newer command aborts an older one still running, as the
 *   edge's `cancel` would (which a restarted bridge never gets for work it resumed).
 * - Nothing here is persisted: after a crash the edge's lease lapses, the command is
 *   handed out again and the task resumes from what it finds.
 */
import type { BridgeToEdge, Command, CompleteFrame, DesktopFacts, FailFrame, Step } from '../../src/schemas/bridge-protocol';
import { CancelledError, TaskError, describeFailure } from './errors';
import type { Logger } from './logger';
import type { BridgeMetrics } from './metrics';
import type { TaskRegistry } from './tasks';

export interface RunnerOptions {
  tasks: TaskRegistry;
  send: (frame: BridgeToEdge) => void;
  log: Logger;
  concurrency: number;
  /** How many finished commands' results are kept for redeliveries. */
  recentResults?: number;
  /** Counts commands, their durations and backend errors (metrics.ts). */
  metrics?: BridgeMetrics;
}

export interface Runner {
  /** A `command` frame: acknowledge, then run it (or re-acknowledge / resend its result). */
  submit(command: Command): void;
  /** A `cancel` frame: drop the command if queued, abort it if running. */
  cancel(commandId: string, reason: string): void;
  /** Commands held now, queued or running: the leases `ready` and `heartbeat` renew. */
  activeCommandIds(): string[];
  /**
   * Stops taking commands and forgets queued ones (their leases lapse and the edge
   * hands them out again), then waits up to `timeoutMs` for running ones. Resolves to
   * the ids still running at the deadline.
   */
  drain(timeoutMs: number): Promise<string[]>;
  /** Resolves when nothing is queued or running. */
  idle(): Promise<void>;
}

interface Job {
  command: Command;
  controller: AbortController;
  state: 'queued' | 'running';
  done: boolean;
}

type Result = CompleteFrame | FailFrame;

const MAX_PROGRESS_MESSAGE = 500;
const MAX_FAIL_MESSAGE = 1000;

export function createRunner(options: RunnerOptions): Runner {
  const { tasks, send, concurrency } = options;
  const log = options.log.child({ component: 'runner' });
  const recentLimit = options.recentResults ?? 1000;

  const jobs = new Map<string, Job>();
  const queue: Job[] = [];
  const busyDesktops = new Set<string>();
  const recent = new Map<string, Result>();
  /** desktopId → issuedAt (ms) of the newest command seen for it; the least recent are forgotten past 10 000. */
  const newest = new Map<string, number>();
  let running = 0;
  let draining = false;
  let idleWaiters: Array<() => void> = [];

  const remember = (result: Result) => {
    recent.delete(result.commandId);
    recent.set(result.commandId, result);
    while (recent.size > recentLimit) {
      const oldest = recent.keys().next().value;
      if (oldest === undefined) break;
      recent.delete(oldest);
    }
  };

  const finish = (job: Job, result: Result) => {
    job.done = true;
    jobs.delete(job.command.id);
    remember(result);
    send(result);
    if (jobs.size === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  };

  const idle = () => {
    if (jobs.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => idleWaiters.push(resolve));
  };

  /** The newest issue time seen for the desktop, if newer than `command`'s. */
  const supersededBy = (command: Command): number | undefined => {
    const seen = newest.get(command.desktopId);
    const issued = Date.parse(command.issuedAt);
    return seen !== undefined && issued < seen ? seen : undefined;
  };

  const noteIssued = (command: Command) => {
    const issued = Date.parse(command.issuedAt);
    if (Number.isNaN(issued)) return;
    const seen = newest.get(command.desktopId);
    newest.delete(command.desktopId);
    newest.set(command.desktopId, seen === undefined ? issued : Math.max(seen, issued));
    while (newest.size > Math.max(recentLimit, 10_000)) {
      const oldest = newest.keys().next().value;
      if (oldest === undefined) break;
      newest.delete(oldest);
    }
  };

  const staleResult = (command: Command, newer: number): Result => ({
    type: 'fail',
    commandId: command.id,
    desktopId: command.desktopId,
    message: `Superseded: a newer command for desktop ${command.desktopId} (issued ${new Date(newer).toISOString()}) reached this bridge first; nothing was done`,
  });

  // Earliest queued job whose desktop is free: keeps per-desktop order without letting
  // one busy desktop hold back the others.
  const pump = () => {
    while (!draining && running < concurrency) {
      const index = queue.findIndex((job) => !busyDesktops.has(job.command.desktopId));
      if (index < 0) return;
      const [job] = queue.splice(index, 1);
      if (!job) continue;
      // Superseded while it waited behind another command of its desktop.
      const newer = supersededBy(job.command);
      if (newer !== undefined) {
        log.info('dropping a queued command superseded by a newer one', { commandId: job.command.id, desktopId: job.command.desktopId });
        finish(job, staleResult(job.command, newer));
        continue;
      }
      void run(job);
    }
  };

  const run = async (job: Job) => {
    const { command } = job;
    job.state = 'running';
    running++;
    busyDesktops.add(command.desktopId);
    // The request id of the HTTP request behind the command goes on every line and frame about it.
    const requestId = command.requestId;
    const jobLog = options.log.child({ commandId: command.id, desktopId: command.desktopId, kind: command.kind, requestId });
    const started = Date.now();
    jobLog.info('command started');
    options.metrics?.commandStarted(command.kind, command.desktopId);

    const progress = (step: Step, message: string, facts?: DesktopFacts) => {
      if (job.done) return;
      jobLog.info('progress', { step, message });
      send({
        type: 'progress',
        commandId: command.id,
        desktopId: command.desktopId,
        step,
        message: truncate(message, MAX_PROGRESS_MESSAGE),
        facts,
        ...(requestId ? { requestId } : {}),
      });
    };

    let result: Result;
    try {
      const facts = await tasks[command.kind](command.spec, { signal: job.controller.signal, progress, log: jobLog });
      result = { type: 'complete', commandId: command.id, desktopId: command.desktopId, facts, ...(requestId ? { requestId } : {}) };
      jobLog.info('command complete', { ms: Date.now() - started, facts });
      options.metrics?.commandFinished(command.kind, command.desktopId, 'complete', (Date.now() - started) / 1000);
    } catch (err) {
      const message = failMessage(err, job);
      result = {
        type: 'fail',
        commandId: command.id,
        desktopId: command.desktopId,
        message: truncate(message, MAX_FAIL_MESSAGE),
        ...(requestId ? { requestId } : {}),
      };
      jobLog.warn('command failed', { ms: Date.now() - started, message });
      options.metrics?.commandFinished(command.kind, command.desktopId, 'fail', (Date.now() - started) / 1000, err);
    }
    running--;
    busyDesktops.delete(command.desktopId);
    finish(job, result);
    pump();
  };

  return {
    submit(command) {
      const held = jobs.get(command.id);
      if (held) {
        // A redelivery of what we hold (the edge did not see our `accepted`, or its lease
        // timer raced our heartbeat): acknowledging again is all it needs.
        log.info('command redelivered while held; acknowledging again', { commandId: command.id, state: held.state });
        send({ type: 'accepted', commandId: command.id, desktopId: command.desktopId });
        return;
      }
      const result = recent.get(command.id);
      if (result) {
        log.info('command redelivered after it finished; resending its result', { commandId: command.id, result: result.type });
        send(result);
        return;
      }
      if (draining) {
        // No `accepted`: the lease lapses and the edge hands the command out again.
        log.info('shutting down; not taking the command', { commandId: command.id });
        return;
      }
      const job: Job = { command, controller: new AbortController(), state: 'queued', done: false };
      jobs.set(command.id, job);
      send({ type: 'accepted', commandId: command.id, desktopId: command.desktopId });
      const newer = supersededBy(command);
      if (newer !== undefined) {
        log.info('refusing a stale command: a newer one for its desktop came first', {
          commandId: command.id,
          desktopId: command.desktopId,
        });
        finish(job, staleResult(command, newer));
        return;
      }
      noteIssued(command);
      for (const other of jobs.values()) {
        if (
          other !== job &&
          other.state === 'running' &&
          other.command.desktopId === command.desktopId &&
          supersededBy(other.command) !== undefined
        ) {
          log.info('a newer command supersedes the running one; aborting it', { commandId: other.command.id, newer: command.id });
          other.controller.abort(new CancelledError(`superseded by a newer ${command.kind} command`));
        }
      }
      if (command.spec.desktopId !== command.desktopId) {
        finish(job, {
          type: 'fail',
          commandId: command.id,
          desktopId: command.desktopId,
          message: `The command is for desktop ${command.desktopId} but its spec describes desktop ${command.spec.desktopId}`,
        });
        return;
      }
      queue.push(job);
      log.debug('command queued', { commandId: command.id, desktopId: command.desktopId, kind: command.kind, queued: queue.length });
      pump();
    },

    cancel(commandId, reason) {
      const job = jobs.get(commandId);
      if (!job) {
        const result = recent.get(commandId);
        if (result) send(result);
        else log.info('cancel for a command this bridge does not hold', { commandId });
        return;
      }
      log.info('cancelling command', { commandId, state: job.state, reason });
      if (job.state === 'queued') {
        queue.splice(queue.indexOf(job), 1);
        finish(job, {
          type: 'fail',
          commandId,
          desktopId: job.command.desktopId,
          message: truncate(new CancelledError(reason).message, MAX_FAIL_MESSAGE),
        });
        return;
      }
      job.controller.abort(new CancelledError(reason));
    },

    activeCommandIds: () => [...jobs.keys()],

    async drain(timeoutMs) {
      draining = true;
      for (const job of queue.splice(0)) {
        jobs.delete(job.command.id);
        log.info('shutting down; leaving a queued command to be handed out again', { commandId: job.command.id });
      }
      if (jobs.size > 0) {
        log.info('waiting for running commands to finish', { running: [...jobs.keys()], timeoutMs });
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
        clearTimeout(timer);
      }
      return [...jobs.keys()];
    },

    idle,
  };
}

function failMessage(err: unknown, job: Job): string {
  if (err instanceof TaskError) return err.message;
  // Whatever a task threw while being cancelled, the cancellation is what happened.
  const reason: unknown = job.controller.signal.reason;
  if (job.controller.signal.aborted && reason instanceof CancelledError) return reason.message;
  return describeFailure(err, `${job.command.kind} desktop ${job.command.desktopId}`);
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}
