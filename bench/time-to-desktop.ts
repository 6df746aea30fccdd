/**
 * Time to desktop, as a person waits for it: from POST /api/v1/desktops to a RUNNING
 * desktop whose connect call answers a URL, with the simulators at the realistic delays of
 * `npm run dev` (a linked clone seconds, a boot a few seconds more, the guest's desktop port
 * opening after its address). Every desktop today is a cold clone and boot; warm pools
 * (issue 13) are to be measured against these figures.
 */
import { startStack } from '../scripts/lib/stack';
import type { Desktop } from '../src/schemas/desktop';
import { setTimeout as sleep } from 'node:timers/promises';

export interface TimeToDesktop {
  desktops: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
};

const summary = (times: number[]): TimeToDesktop => ({
  desktops: times.length,
  p50Ms: pct(times, 50),
  p95Ms: pct(times, 95),
  maxMs: Math.max(...times),
});

/** One at a time, then `concurrent` at once, on a fresh stack at realistic delays. */
export async function measureColdTimeToDesktop(opts: { oneAtATime: number; concurrent: number }) {
  const stack = await startStack({ simDelayScale: 1, edgeRuntime: 'workerd' });
  const call = async <T>(method: string, path: string, tok: string, body?: unknown) => {
    const res = await fetch(`${stack.edgeUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${tok}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, data: ((await res.json()) as { data: T }).data };
  };
  /** POST → RUNNING → a connect URL, in ms. */
  const oneDesktop = async (user: string): Promise<number> => {
    const tok = await stack.token(user);
    const t0 = Date.now();
    const created = await call<Desktop>('POST', '/api/v1/desktops', tok, { name: user, plan: 'BASIC' });
    if (created.status !== 202) throw new Error(`create answered ${created.status}`);
    const deadline = t0 + 180_000;
    for (;;) {
      const { data } = await call<Desktop>('GET', `/api/v1/desktops/${created.data.id}`, tok);
      if (data.status === 'RUNNING') break;
      if (data.status === 'FAILED') throw new Error(`desktop ${data.id} failed: ${data.errorMessage ?? ''}`);
      if (Date.now() > deadline) throw new Error(`desktop ${data.id} not RUNNING after 180 s`);
      await sleep(50);
    }
    const connect = await call<{ url: string }>('GET', `/api/v1/desktops/${created.data.id}/connect`, tok);
    if (connect.status !== 200 || !connect.data.url) throw new Error(`connect answered ${connect.status}`);
    return Date.now() - t0;
  };
  try {
    const sequential: number[] = [];
    for (let i = 0; i < opts.oneAtATime; i++) sequential.push(await oneDesktop(`ttd-seq-${i}`));
    const burst = await Promise.all(Array.from({ length: opts.concurrent }, (_, i) => oneDesktop(`ttd-burst-${i}`)));
    return { oneAtATime: summary(sequential), concurrent: summary(burst), simulatorDelays: 'npm run dev (scale 1)' };
  } finally {
    await stack.stop();
  }
}
