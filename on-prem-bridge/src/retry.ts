/**
 * The one retry helper every task uses. Retryable InfraErrors (locks, proxy time-outs,
 * network) are tried again with capped full-jitter exponential backoff (AWS
 * architecture blog, "Exponential Backoff And Jitter") until the step's own deadline
 * (the last wait cut to end at it) or the abort signal; anything else fails the step at
 * once. The final error becomes a TaskError whose message names the action, so every
 * fail frame reads the same way.
 */
import { InfraError } from './drivers/types';
import { CancelledError, TaskError, describeFailure } from './errors';
import { type Sleep, sleep as realSleep } from './sleep';

export interface RetryPolicy {
  /** First backoff ceiling; doubles per attempt. */
  baseMs: number;
  /** Largest backoff ceiling. */
  capMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 250, capMs: 10_000 };

export interface RetryOptions extends RetryPolicy {
  signal: AbortSignal;
  /** The step's deadline: no new attempt starts after this many ms from the first. */
  timeoutMs: number;
  sleep?: Sleep;
  random?: () => number;
  now?: () => number;
  onRetry?: (err: InfraError, attempt: number, delayMs: number) => void;
}

/** Full jitter: a uniformly random wait below the capped exponential ceiling. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

export function isRetryable(err: unknown): err is InfraError {
  return err instanceof InfraError && err.retryable;
}

/**
 * Runs `fn` until it succeeds, throws something permanent, the deadline passes or the
 * signal aborts. `action` completes "could not …" style sentences: "clone template 9000".
 */
export async function withRetry<T>(action: string, fn: () => Promise<T>, options: RetryOptions): Promise<T> {
  const now = options.now ?? Date.now;
  const pause = options.sleep ?? realSleep;
  const started = now();
  for (let attempt = 0; ; attempt++) {
    throwIfAborted(options.signal);
    try {
      return await fn();
    } catch (err) {
      // Whatever a driver threw while we were being cancelled, the cancellation is the story.
      throwIfAborted(options.signal);
      if (!isRetryable(err)) throw asTaskError(err, action);
      const elapsed = now() - started;
      const remaining = options.timeoutMs - elapsed;
      if (remaining <= 0) {
        throw new TaskError(`${describeFailure(err, action)} (still failing after ${formatDuration(elapsed)})`, { cause: err });
      }
      // A backoff that would overshoot the deadline is cut short: one last try at the deadline
      // beats giving up while time is left (a long draw at attempt 4 could forfeit seconds).
      const delay = Math.min(backoffDelay(attempt, options, options.random), remaining);
      options.onRetry?.(err, attempt + 1, delay);
      await pause(delay, options.signal);
    }
  }
}

/** The abort reason as a CancelledError, so callers can tell cancellation from failure. */
export function throwIfAborted(signal: AbortSignal): void {
  if (!signal.aborted) return;
  const reason: unknown = signal.reason;
  throw reason instanceof Error ? reason : new CancelledError(typeof reason === 'string' ? reason : 'cancelled');
}

export function asTaskError(err: unknown, action: string): TaskError | CancelledError {
  if (err instanceof TaskError || err instanceof CancelledError) return err;
  return new TaskError(describeFailure(err, action), { cause: err });
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  return `${Math.round(ms / 60_000)} min`;
}
