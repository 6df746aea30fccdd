/**
 * Waiting that respects cancellation: every poll and backoff in the bridge goes
 * through here, so a cancelled command stops waiting at once instead of at the end
 * of its current delay. Tests inject their own to stay fast.
 */

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export const sleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** First wait between two polls; later ones double up to the caller's interval. */
const FIRST_POLL_MS = 100;

/**
 * The wait before poll number `poll` (0-based): most Proxmox tasks (config, start, stop) end within a second while
 * a clone or a boot takes tens, so polls start quick and back off to `maxMs` instead of always waiting `maxMs`.
 */
export function pollInterval(poll: number, maxMs: number): number {
  return Math.min(maxMs, FIRST_POLL_MS * 2 ** Math.min(poll, 20));
}
