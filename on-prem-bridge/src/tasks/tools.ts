/**
 * The two ways a task touches infrastructure: `attempt` (one observe-then-act unit,
 * retried on transient errors until its deadline) and `pollUntil` (wait for reality to
 * reach a state). Both stop at once when the command is cancelled.
 */
import type { Logger } from '../logger';
import { TaskError, describeFailure } from '../errors';
import { isRetryable, throwIfAborted, withRetry } from '../retry';
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

  /** The value, or at the deadline the transient error of the last probe (if it failed). */
  const poll = async <T>(
    action: string,
    probe: () => Promise<T | null | undefined>,
    timeoutMs: number,
  ): Promise<{ found: true; value: T } | { found: false; lastError: unknown }> => {
    const deadline = now() + timeoutMs;
    let lastError: unknown;
    for (let n = 0; ; n++) {
      throwIfAborted(signal);
      try {
        const value = await attempt(action, probe, Math.max(0, deadline - now()));
        if (value !== null && value !== undefined) return { found: true, value };
        lastError = undefined;
      } catch (err) {
        // Transient trouble that lasted to the deadline means the wait timed out; the
        // caller's time-out message says what that means, and the error why.
        if (!(err instanceof TaskError && isRetryable(err.cause))) throw err;
        lastError = err.cause;
      }
      if (now() >= deadline) return { found: false, lastError };
      await pause(Math.min(pollInterval(n, deps.timing.pollMs), Math.max(0, deadline - now())), signal);
    }
  };

  const pollFor = async <T>(action: string, probe: () => Promise<T | null | undefined>, timeoutMs: number) => {
    const result = await poll(action, probe, timeoutMs);
    return result.found ? result.value : undefined;
  };

  const pollUntil = async <T>(action: string, probe: () => Promise<T | null | undefined>, timeoutMs: number, timeoutMessage: string) => {
    const result = await poll(action, probe, timeoutMs);
    if (result.found) return result.value;
    const why = result.lastError === undefined ? '' : ` (the last try failed: ${describeFailure(result.lastError, action)})`;
    throw new TaskError(`${timeoutMessage}${why}`);
  };

  return { signal, log, attempt, pollUntil, pollFor };
}
