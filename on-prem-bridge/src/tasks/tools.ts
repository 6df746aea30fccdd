/**
 * The two ways a task touches infrastructure: `attempt` (one observe-then-act unit,
 * retried on transient errors until its deadline) and `pollUntil` (wait for reality to
 * reach a state). Both stop at once when the command is cancelled.
 */
import type { Logger } from '../logger';
import { TaskError } from '../errors';
import { throwIfAborted, withRetry } from '../retry';
import { pollInterval, sleep as realSleep } from '../sleep';
import type { TaskDeps } from './context';

export interface Tools {
  signal: AbortSignal;
  log: Logger;
  /** `action` finishes "Proxmox refused to …", e.g. "clone template 9000 into VM 20001". */
  attempt<T>(action: string, fn: () => Promise<T>, timeoutMs?: number): Promise<T>;
  /** Polls `probe` until it yields a value; throws TaskError(`timeoutMessage`) at the deadline. */
  pollUntil<T>(action: string, probe: () => Promise<T | null | undefined>, timeoutMs: number, timeoutMessage: string): Promise<T>;
  /** Like pollUntil, but resolves to undefined at the deadline. */
  pollFor<T>(action: string, probe: () => Promise<T | null | undefined>, timeoutMs: number): Promise<T | undefined>;
}

export function toolsFor(deps: TaskDeps, signal: AbortSignal, log: Logger): Tools {
  const now = deps.now ?? Date.now;
  const pause = deps.sleep ?? realSleep;

  const attempt = <T>(action: string, fn: () => Promise<T>, timeoutMs = deps.timing.apiTimeoutMs) =>
    withRetry(action, fn, {
      ...deps.timing.retry,
      signal,
      timeoutMs,
      sleep: pause,
      random: deps.random,
      now,
      onRetry: (err, attemptNo, delayMs) =>
        log.warn('retrying after a transient error', { action, attempt: attemptNo, delayMs, error: err }),
    });

  const pollFor = async <T>(action: string, probe: () => Promise<T | null | undefined>, timeoutMs: number) => {
    const deadline = now() + timeoutMs;
    for (let poll = 0; ; poll++) {
      throwIfAborted(signal);
      const value = await attempt(action, probe, Math.max(0, deadline - now()));
      if (value !== null && value !== undefined) return value;
      if (now() >= deadline) return undefined;
      await pause(Math.min(pollInterval(poll, deps.timing.pollMs), Math.max(0, deadline - now())), signal);
    }
  };

  const pollUntil = async <T>(action: string, probe: () => Promise<T | null | undefined>, timeoutMs: number, timeoutMessage: string) => {
    const value = await pollFor(action, probe, timeoutMs);
    if (value === undefined) throw new TaskError(timeoutMessage);
    return value;
  };

  return { signal, log, attempt, pollUntil, pollFor };
}
