/**
 * Polls `probe` every 5 ms until it answers a value (anything but null, undefined or
 * false): the simulators and drivers settle within milliseconds, so two seconds is long.
 */
import { setTimeout as sleep } from 'node:timers/promises';
export async function until<T>(probe: () => Promise<T | null | undefined | false>, timeoutMs = 2000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error('condition not reached');
    await sleep(5);
  }
}
