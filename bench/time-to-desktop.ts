/**
 * Time to desktop, as a person waits for it: from POST /api/v1/desktops to a RUNNING
 * desktop whose connect call answers a URL, with the simulators at the realistic delays of
 * `npm run dev` (a linked clone seconds, a boot a few seconds more, the guest's desktop port
 * opening after its address). Measured three ways on one stack: cold (no pool), a warm
 * pool's hit (issue 13: the create is answered by a ready member), and a miss (the
 * template has a pool, but it is paused and empty, so the create goes cold through it).
 */
import { startStack } from '../scripts/lib/stack';
import type { Desktop } from '../src/schemas/desktop';
import type { PoolView } from '../src/schemas/pool';
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

/** Every desktop must be what it was measured as: a hit claimed from the pool, anything else built for its request. */
type Expect = 'cold' | 'hit';

/**
 * Cold: one at a time, then `concurrent` at once. Pool: a pool of `poolSize` running members
 * (over `shards`), filled; hits one at a time, the pool filled again, then `poolSize` hits at
 * once; then the pool paused and empty, misses one at a time.
 */
export async function measureTimeToDesktop(opts: { oneAtATime: number; concurrent: number; poolSize: number; shards: number }) {
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
  const oneDesktop = async (user: string, expect: Expect, templateId?: string): Promise<number> => {
    const tok = await stack.token(user);
    const t0 = Date.now();
    const body = templateId ? { name: user, templateId } : { name: user, plan: 'BASIC' };
    const created = await call<Desktop>('POST', '/api/v1/desktops', tok, body);
    if (created.status !== 202) throw new Error(`create answered ${created.status}`);
    if (Boolean(created.data.claimedFromPool) !== (expect === 'hit')) {
      throw new Error(`desktop ${created.data.id} was to be ${expect}, claimedFromPool is ${created.data.claimedFromPool}`);
    }
    const deadline = t0 + 180_000;
    for (let status = created.data.status; status !== 'RUNNING'; ) {
      await sleep(50);
      const { data } = await call<Desktop>('GET', `/api/v1/desktops/${created.data.id}`, tok);
      status = data.status;
      if (data.status === 'FAILED') throw new Error(`desktop ${data.id} failed: ${data.errorMessage ?? ''}`);
      if (Date.now() > deadline) throw new Error(`desktop ${data.id} not RUNNING after 180 s`);
    }
    const connect = await call<{ url: string }>('GET', `/api/v1/desktops/${created.data.id}/connect`, tok);
    if (connect.status !== 200 || !connect.data.url) throw new Error(`connect answered ${connect.status}`);
    return Date.now() - t0;
  };
  try {
    const cold: number[] = [];
    for (let i = 0; i < opts.oneAtATime; i++) cold.push(await oneDesktop(`ttd-seq-${i}`, 'cold'));
    const coldBurst = await Promise.all(Array.from({ length: opts.concurrent }, (_, i) => oneDesktop(`ttd-burst-${i}`, 'cold')));

    const admin = await stack.token('ttd-admin', ['admin']);
    const template = {
      id: 'ttd-pooled',
      name: 'Pooled desktop',
      os: 'Ubuntu 24.04',
      backend: 'proxmox',
      protocol: 'vnc',
      defaultPlan: 'BASIC',
    };
    const made = await call('POST', '/api/v1/admin/templates', admin, template);
    if (made.status !== 201) throw new Error(`template answered ${made.status}`);
    const pool = (paused: boolean) => ({
      templateId: template.id,
      sizing: { running: opts.poolSize, cap: opts.poolSize },
      shards: opts.shards,
      paused,
    });
    const fillStarted = Date.now();
    const full = async () => {
      const deadline = Date.now() + 15 * 60_000;
      for (;;) {
        const { data } = await call<PoolView>('GET', '/api/v1/admin/pools/ttd', admin);
        if (data.members.filter((m) => m.phase === 'ready' && m.tier === 'running').length >= opts.poolSize) return;
        if (Date.now() > deadline) throw new Error('the pool did not fill in 15 minutes');
        await sleep(500);
      }
    };
    if ((await call('PUT', '/api/v1/admin/pools/ttd', admin, pool(false))).status !== 200) throw new Error('pool refused');
    await full();
    const fillMs = Date.now() - fillStarted;
    const hits: number[] = [];
    for (let i = 0; i < opts.oneAtATime; i++) hits.push(await oneDesktop(`ttd-hit-${i}`, 'hit', template.id));
    await full();
    // Paused before the burst: a paused pool still hands out its ready members but builds no more, so once the
    // burst has taken every member it stays empty and each create after it is a miss (members the replenisher
    // had already begun would otherwise turn up ready and be handed out).
    await call('PUT', '/api/v1/admin/pools/ttd', admin, pool(true));
    const hitBurst = await Promise.all(
      Array.from({ length: opts.poolSize }, (_, i) => oneDesktop(`ttd-hit-burst-${i}`, 'hit', template.id)),
    );
    const misses: number[] = [];
    for (let i = 0; i < opts.oneAtATime; i++) misses.push(await oneDesktop(`ttd-miss-${i}`, 'cold', template.id));
    const { data: view } = await call<PoolView>('GET', '/api/v1/admin/pools/ttd', admin);
    return {
      cold: { oneAtATime: summary(cold), concurrent: summary(coldBurst) },
      pool: {
        size: opts.poolSize,
        shards: opts.shards,
        filledInMs: fillMs,
        hitOneAtATime: summary(hits),
        hitsAtOnce: summary(hitBurst),
        missOneAtATime: summary(misses),
        stats: view.stats,
      },
      simulatorDelays: 'npm run dev (scale 1)',
      targets: { hitP50Under1s: pct(hitBurst, 50) < 1000, hitP95Under2s: pct(hitBurst, 95) < 2000 },
    };
  } finally {
    await stack.stop();
  }
}
