import { describe, expect, it } from 'vitest';
import { InfraError } from '../../on-prem-bridge/src/drivers/types';
import { CancelledError, TaskError } from '../../on-prem-bridge/src/errors';
import { backoffDelay, withRetry } from '../../on-prem-bridge/src/retry';

const locked = () => new InfraError("can't lock file '/var/lock/qemu-server/lock-20000.conf' - got timeout", 'proxmox', 500, true);

/** A clock that only moves when the retry helper sleeps. */
function fakeTime() {
  let now = 0;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      now += ms;
    },
  };
}

describe('withRetry', () => {
  it('retries retryable errors with capped full-jitter backoff, then succeeds', async () => {
    const time = fakeTime();
    let calls = 0;
    const result = await withRetry(
      'configure VM 20000',
      async () => {
        if (++calls < 6) throw locked();
        return 'done';
      },
      { baseMs: 250, capMs: 1_000, timeoutMs: 60_000, signal: new AbortController().signal, random: () => 0.999, ...time },
    );
    expect(result).toBe('done');
    expect(time.sleeps).toEqual([249, 499, 999, 999, 999]);
  });

  it('fails a permanent error at once, naming the system and the action', async () => {
    let calls = 0;
    const error = await withRetry(
      'clone template 9000',
      async () => {
        calls++;
        throw new InfraError('VM is locked (clone)\n', 'proxmox', 500, false);
      },
      { baseMs: 1, capMs: 1, timeoutMs: 1_000, signal: new AbortController().signal },
    ).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect(error).toBeInstanceOf(TaskError);
    expect((error as Error).message).toBe('Proxmox refused to clone template 9000: VM is locked (clone)');
  });

  it('gives up at the deadline with the last error', async () => {
    const time = fakeTime();
    const error = await withRetry(
      'start VM 20000',
      async () => {
        throw locked();
      },
      { baseMs: 100, capMs: 1_000, timeoutMs: 3_000, signal: new AbortController().signal, random: () => 0.5, ...time },
    ).catch((e: unknown) => e as Error);
    expect(error.message).toBe(
      "Proxmox refused to start VM 20000: can't lock file '/var/lock/qemu-server/lock-20000.conf' - got timeout (still failing after 3 s)",
    );
    expect(time.now()).toBeLessThanOrEqual(3_000);
  });

  it('cuts the last backoff short to try once more at the deadline instead of giving up early', async () => {
    const time = fakeTime();
    let calls = 0;
    const result = await withRetry(
      'read the IP address of VM 20000',
      async () => {
        if (++calls < 4) throw locked();
        return '10.0.0.1';
      },
      { baseMs: 1_000, capMs: 10_000, timeoutMs: 3_000, signal: new AbortController().signal, random: () => 0.999, ...time },
    );
    // 999 + 1998 ms leave 3 ms: the third wait (up to 3996 ms) would overshoot, so it is cut to end at the deadline.
    expect(result).toBe('10.0.0.1');
    expect(time.sleeps).toEqual([999, 1_998, 3]);
    expect(time.now()).toBe(3_000);
  });

  it('says when a system could not be reached at all', async () => {
    const error = await withRetry(
      'look up VM desk-aaaaaaaa',
      async () => {
        throw new InfraError('connect ECONNREFUSED 127.0.0.1:8006', 'proxmox', 0, true);
      },
      { baseMs: 1, capMs: 1, timeoutMs: 0, signal: new AbortController().signal },
    ).catch((e: unknown) => e as Error);
    expect(error.message).toMatch(/^Proxmox could not be reached to look up VM desk-aaaaaaaa: connect ECONNREFUSED 127.0.0.1:8006/);
  });

  it('stops waiting the moment the signal aborts', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const pending = withRetry(
      'start VM 20000',
      async () => {
        throw locked();
      },
      { baseMs: 60_000, capMs: 60_000, timeoutMs: 600_000, signal: controller.signal, random: () => 1 },
    ).catch((e: unknown) => e);
    setTimeout(() => controller.abort(new CancelledError('user gave up')), 5);
    const error = await pending;
    expect(error).toBeInstanceOf(CancelledError);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('keeps backoff within its cap', () => {
    for (let attempt = 0; attempt < 50; attempt++) {
      expect(backoffDelay(attempt, { baseMs: 250, capMs: 10_000 }, () => 0.999_999)).toBeLessThan(10_000);
    }
  });
});
