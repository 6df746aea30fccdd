/**
 * `cdaas pools …` against a scripted API: each command calls its admin endpoint, `set` builds the pool from its
 * flags (or takes the whole sizing as JSON), `show` says what the pool aims at and why, --json prints the data.
 */
import { createClient } from '@cdaas/sdk';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerPools } from '../../cli/src/commands/pools.ts';
import type { Context } from '../../cli/src/context.ts';
import { CliError } from '../../cli/src/exit-codes.ts';

const POOL = {
  id: 'office',
  templateId: 'ubuntu-desktop',
  siteId: 'local',
  sizing: { timeZone: 'UTC', running: 2, stopped: 1, windows: [], floor: 0, cap: 4 },
  shards: 1,
  paused: false,
  createdAt: '2026-12-05T08:00:00.000Z',
  updatedAt: '2026-12-05T08:00:00.000Z',
};
const VIEW = {
  ...POOL,
  target: { running: 3, stopped: 1, reasons: ['outside every window: 2 running, 1 stopped', '1 miss in the last 15 min: +1'] },
  members: [{ desktopId: 'dk1', shard: 0, tier: 'running', phase: 'ready', since: '2026-12-05T08:01:00.000Z' }],
  stats: { hits: 5, warmHits: 1, misses: 2, replaced: 0, claimP50Ms: 41.2, claimP95Ms: 88 },
};

function run(args: string[], json: boolean) {
  const seen: { method: string; path: string; body: unknown }[] = [];
  const printed: string[] = [];
  const fetch = async (req: Request) => {
    const path = new URL(req.url).pathname;
    seen.push({ method: req.method, path, body: req.method === 'PUT' ? JSON.parse(await req.text()) : null });
    const data = req.method === 'GET' && path.endsWith('/pools') ? [POOL] : req.method === 'GET' ? VIEW : POOL;
    return new Response(JSON.stringify({ success: true, message: 'ok', data }), { status: 200 });
  };
  const client = createClient({ baseUrl: 'http://api.test', token: 't', fetch });
  const ctx: Context = {
    options: { json },
    client: () => client,
    out: {
      json,
      result: (value, human) => printed.push(json ? JSON.stringify(value) : human()),
      note: () => {},
      progress: () => ({ update() {}, done() {} }),
    },
  };
  const program = new Command('cdaas').exitOverride();
  registerPools(program, () => ctx);
  return { done: program.parseAsync(['node', 'cdaas', ...args]), seen, printed };
}

describe('cdaas pools', () => {
  it('ls prints a table, or the pools as JSON', async () => {
    const human = run(['pools', 'ls'], false);
    await human.done;
    expect(human.printed[0]).toBe(
      ['ID      TEMPLATE        SITE   RUNNING  STOPPED  CAP  STATE', 'office  ubuntu-desktop  local  2        1        4    filling'].join(
        '\n',
      ),
    );
    const json = run(['pools', 'ls'], true);
    await json.done;
    expect(JSON.parse(json.printed[0] ?? '')).toEqual([POOL]);
    expect(json.seen.map((s) => `${s.method} ${s.path}`)).toEqual(['GET /api/v1/admin/pools']);
  });

  it('show says what the pool aims at and why, and how it answered', async () => {
    const show = run(['pools', 'show', 'office'], false);
    await show.done;
    expect(show.printed[0]).toBe(
      [
        'office: template ubuntu-desktop at local',
        'target: 3 running, 1 stopped',
        '  outside every window: 2 running, 1 stopped',
        '  1 miss in the last 15 min: +1',
        'ready: 1 running, 0 stopped (1 members in all)',
        'hits 5, warm hits 1, misses 2, replaced 0; claim p50 41 ms, p95 88 ms',
      ].join('\n'),
    );
    expect(show.seen.map((s) => `${s.method} ${s.path}`)).toEqual(['GET /api/v1/admin/pools/office']);
  });

  it('set builds the pool from its flags, or takes the sizing whole; rm removes it', async () => {
    const set = run(['pools', 'set', 'office', '--template', 'ubuntu-desktop', '--running', '2', '--stopped', '1', '--paused'], true);
    await set.done;
    expect(set.seen).toEqual([
      {
        method: 'PUT',
        path: '/api/v1/admin/pools/office',
        body: { templateId: 'ubuntu-desktop', sizing: { running: 2, stopped: 1, cap: 2 }, shards: 1, paused: true },
      },
    ]);
    const sizing = { running: 1, cap: 8, demand: { windowMinutes: 15, perMiss: 1, maxBoost: 4 } };
    const whole = run(['pools', 'set', 'office', '--template', 'ubuntu-desktop', '--sizing', JSON.stringify(sizing)], true);
    await whole.done;
    expect(whole.seen[0]?.body).toMatchObject({ sizing });
    const rm = run(['pools', 'rm', 'office'], true);
    await rm.done;
    expect(rm.seen.map((s) => `${s.method} ${s.path}`)).toEqual(['DELETE /api/v1/admin/pools/office']);
  });

  it('refuses a count that is not a whole number before calling the API', async () => {
    const bad = run(['pools', 'set', 'office', '--template', 'ubuntu-desktop', '--running', 'many'], true);
    await expect(bad.done).rejects.toThrow(CliError);
    expect(bad.seen).toEqual([]);
  });
});
