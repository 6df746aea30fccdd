/**
 * `cdaas snapshots …` against a scripted API: each command calls its endpoint, and prints a table for people or the
 * API's data as one JSON document with --json.
 */
import { createClient } from '@cdaas/sdk';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerSnapshots } from '../../cli/src/commands/snapshots.ts';
import type { Context } from '../../cli/src/context.ts';

const ID = 'dkexample00000000000000';
const LISTING = {
  snapshots: [{ name: 'clean', description: 'before the upgrade', takenAt: '2026-12-05T08:00:00.000Z', withRam: true, parent: null }],
  unsupported: null,
};

function run(args: string[], json: boolean, answer?: unknown) {
  const seen: { method: string; path: string; body: unknown }[] = [];
  const printed: string[] = [];
  const fetch = async (req: Request) => {
    seen.push({ method: req.method, path: new URL(req.url).pathname, body: req.method === 'GET' ? null : await req.text() });
    const data =
      answer ?? (req.method === 'GET' ? LISTING : { snapshot: { name: 'clean', description: '', withRam: false }, desktop: { id: ID } });
    const status = answer !== undefined || req.method === 'GET' ? 200 : 202;
    return new Response(JSON.stringify({ success: true, message: 'ok', data }), { status });
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
  registerSnapshots(program, () => ctx);
  return { done: program.parseAsync(['node', 'cdaas', ...args]), seen, printed };
}

describe('cdaas snapshots', () => {
  it('ls prints a table, or the listing as JSON with --json', async () => {
    const human = run(['snapshots', 'ls', ID], false);
    await human.done;
    expect(human.printed[0]).toBe(
      [
        'NAME   TAKEN                     RAM  PARENT  DESCRIPTION',
        'clean  2026-12-05T08:00:00.000Z  yes  -       before the upgrade',
      ].join('\n'),
    );
    const json = run(['snapshots', 'ls', ID], true);
    await json.done;
    expect(JSON.parse(json.printed[0] ?? '')).toEqual(LISTING);
    expect(json.seen.map((s) => `${s.method} ${s.path}`)).toEqual([`GET /api/v1/desktops/${ID}/snapshots`]);
  });

  it('create, rm and restore call their endpoints', async () => {
    const create = run(['snapshots', 'create', ID, '--name', 'clean', '--with-ram', '--description', 'why'], false);
    await create.done;
    expect(create.seen).toEqual([
      {
        method: 'POST',
        path: `/api/v1/desktops/${ID}/snapshots`,
        body: JSON.stringify({ name: 'clean', description: 'why', withRam: true }),
      },
    ]);
    const rm = run(['snapshots', 'rm', ID, 'clean'], true);
    await rm.done;
    expect(rm.seen.map((s) => `${s.method} ${s.path}`)).toEqual([`DELETE /api/v1/desktops/${ID}/snapshots/clean`]);
    const restore = run(['snapshots', 'restore', ID, 'clean'], true);
    await restore.done;
    expect(restore.seen.map((s) => `${s.method} ${s.path}`)).toEqual([`POST /api/v1/desktops/${ID}/snapshots/clean/restore`]);
  });

  it('fork creates a desktop from the snapshot', async () => {
    const fork = run(['snapshots', 'fork', ID, 'clean', '--plan', 'standard'], true);
    await fork.done;
    expect(fork.seen).toEqual([
      {
        method: 'POST',
        path: '/api/v1/desktops',
        body: JSON.stringify({ forkOf: { desktopId: ID, snapshot: 'clean' }, plan: 'STANDARD' }),
      },
    ]);
  });

  it('schedule shows, sets, turns off and clears a desktop’s scheduled snapshots', async () => {
    const view = {
      own: { everyHours: 24, retention: { keepLast: 7 } },
      template: { everyHours: 168, retention: { keepDays: 30 } },
      effective: { everyHours: 24, retention: { keepLast: 7 } },
      source: 'desktop',
      nextCheckAt: '2026-12-06T08:00:00.000Z',
      lastRunAt: null,
    };
    const set = run(['snapshots', 'schedule', ID, '--every', '24', '--keep-last', '7'], false, view);
    await set.done;
    expect(set.seen).toEqual([
      {
        method: 'PUT',
        path: `/api/v1/desktops/${ID}/snapshot-schedule`,
        body: JSON.stringify({ everyHours: 24, retention: { keepLast: 7 } }),
      },
    ]);
    expect(set.printed[0]).toBe(
      [
        'applies:    every 24 h, keeping the newest 7 (from its desktop)',
        'own:        every 24 h, keeping the newest 7',
        'template:   every 168 h, keeping those younger than 30 days',
        'next check: 2026-12-06T08:00:00.000Z',
        'last run:   -',
      ].join('\n'),
    );
    const off = run(['snapshots', 'schedule', ID, '--off'], true, { ...view, own: { off: true }, effective: null, source: null });
    await off.done;
    expect(off.seen[0]).toMatchObject({ method: 'PUT', body: JSON.stringify({ off: true }) });
    expect(JSON.parse(off.printed[0] ?? '')).toMatchObject({ own: { off: true }, effective: null });
    const clear = run(['snapshots', 'schedule', ID, '--clear'], true, view);
    await clear.done;
    expect(clear.seen.map((s) => `${s.method} ${s.path}`)).toEqual([`DELETE /api/v1/desktops/${ID}/snapshot-schedule`]);
    const show = run(['snapshots', 'schedule', ID], true, view);
    await show.done;
    expect(show.seen.map((s) => `${s.method} ${s.path}`)).toEqual([`GET /api/v1/desktops/${ID}/snapshot-schedule`]);
  });

  it('schedule refuses settings that do not add up, before asking the API', async () => {
    for (const args of [
      ['--every', '24'],
      ['--keep-last', '3'],
      ['--every', '24', '--keep-last', '3', '--off'],
      ['--every', '0', '--keep-last', '3'],
    ]) {
      const bad = run(['snapshots', 'schedule', ID, ...args], false, {});
      await expect(bad.done, args.join(' ')).rejects.toThrow();
      expect(bad.seen).toEqual([]);
    }
  });
});
