import { describe, expect, it } from 'vitest';
import type { BridgeToEdge, DesktopFacts, DesktopSpec } from '../../src/schemas/bridge-protocol';
import { InfraError } from '../../on-prem-bridge/src/drivers/types';
import { silentLogger } from '../../on-prem-bridge/src/logger';
import { createRunner } from '../../on-prem-bridge/src/runner';
import type { TaskRegistry } from '../../on-prem-bridge/src/tasks';
import type { Task, TaskContext } from '../../on-prem-bridge/src/tasks/context';
import { makeCommand, until } from './support/harness';

/** A task whose runs the test finishes by hand. */
function controllableTask() {
  const runs: Array<{ spec: DesktopSpec; ctx: TaskContext; finish: (facts?: DesktopFacts) => void; fail: (err: unknown) => void }> = [];
  const task: Task = (spec, ctx) =>
    new Promise<DesktopFacts>((resolve, reject) => {
      runs.push({ spec, ctx, finish: (facts = {}) => resolve(facts), fail: reject });
    });
  return { task, runs };
}

function setup(options: { concurrency?: number; task?: Task } = {}) {
  const frames: BridgeToEdge[] = [];
  const controllable = controllableTask();
  const task = options.task ?? controllable.task;
  const tasks: TaskRegistry = {
    create: task,
    start: task,
    stop: task,
    delete: task,
    snapshot: task,
    restore: task,
    delete_snapshot: task,
    rebuild: task,
  };
  const runner = createRunner({ tasks, send: (frame) => frames.push(frame), log: silentLogger, concurrency: options.concurrency ?? 4 });
  return { runner, frames, runs: controllable.runs };
}

const types = (frames: BridgeToEdge[]) => frames.map((f) => f.type);

describe('runner', () => {
  it('accepts, runs, reports progress and completes', async () => {
    const task: Task = async (_spec, ctx) => {
      ctx.progress('allocate', 'reserved VMID 20000', { vmId: 20000 });
      return { vmId: 20000 };
    };
    const { runner, frames } = setup({ task });
    runner.submit(makeCommand('create', 'aaaaaaaa'));
    await runner.idle();
    expect(frames).toEqual([
      { type: 'accepted', commandId: 'cmd-create-aaaaaaaa', desktopId: 'aaaaaaaa' },
      {
        type: 'progress',
        commandId: 'cmd-create-aaaaaaaa',
        desktopId: 'aaaaaaaa',
        step: 'allocate',
        message: 'reserved VMID 20000',
        facts: { vmId: 20000 },
      },
      { type: 'complete', commandId: 'cmd-create-aaaaaaaa', desktopId: 'aaaaaaaa', facts: { vmId: 20000 } },
    ]);
  });

  it('acknowledges a command delivered again while it runs, and runs it once', async () => {
    const { runner, frames, runs } = setup();
    const command = makeCommand('create', 'aaaaaaaa');
    runner.submit(command);
    runner.submit(command);
    expect(runs).toHaveLength(1);
    expect(types(frames)).toEqual(['accepted', 'accepted']);
    expect(runner.activeCommandIds()).toEqual([command.id]);
    runs[0]?.finish();
    await runner.idle();
    expect(types(frames)).toEqual(['accepted', 'accepted', 'complete']);
  });

  it('resends the result of a command delivered again after it finished', async () => {
    const { runner, frames, runs } = setup();
    const command = makeCommand('create', 'aaaaaaaa');
    runner.submit(command);
    runs[0]?.finish({ vmId: 1 });
    await runner.idle();
    runner.submit(command);
    expect(runs).toHaveLength(1);
    expect(frames.at(-1)).toEqual({ type: 'complete', commandId: command.id, desktopId: 'aaaaaaaa', facts: { vmId: 1 } });
  });

  it('forgets the oldest results beyond its memory', async () => {
    const frames: BridgeToEdge[] = [];
    const task: Task = async () => ({});
    const runner = createRunner({
      tasks: { create: task, start: task, stop: task, delete: task, snapshot: task, restore: task, delete_snapshot: task, rebuild: task },
      send: (f) => frames.push(f),
      log: silentLogger,
      concurrency: 1,
      recentResults: 2,
    });
    for (const id of ['aaaaaaa1', 'aaaaaaa2', 'aaaaaaa3']) runner.submit(makeCommand('stop', id));
    await runner.idle();
    runner.submit(makeCommand('stop', 'aaaaaaa1'));
    await runner.idle();
    // The first result was forgotten, so the (idempotent) command simply ran again.
    expect(frames.filter((f) => f.type === 'complete')).toHaveLength(4);
  });

  it('runs commands for one desktop one at a time, in arrival order', async () => {
    const { runner, runs, frames } = setup();
    runner.submit(makeCommand('create', 'aaaaaaaa'));
    runner.submit(makeCommand('stop', 'aaaaaaaa'));
    runner.submit(makeCommand('start', 'bbbbbbbb'));
    // The other desktop does not wait.
    expect(runs.map((r) => r.spec.desktopId)).toEqual(['aaaaaaaa', 'bbbbbbbb']);
    expect(runner.activeCommandIds()).toHaveLength(3);

    runs[0]?.finish();
    await until(() => runs.length === 3);
    expect(frames.filter((f) => f.type === 'complete').map((f) => (f.type === 'complete' ? f.commandId : ''))).toEqual([
      'cmd-create-aaaaaaaa',
    ]);
    expect(runs[2]?.spec.desktopId).toBe('aaaaaaaa');
  });

  it('refuses a stale command that arrives after a newer one for its desktop, touching nothing', async () => {
    const { runner, frames, runs } = setup();
    runner.submit({ ...makeCommand('stop', 'aaaaaaaa'), issuedAt: '2026-11-22T10:00:02.000Z' });
    runs[0]?.finish();
    await runner.idle();
    // A start issued before that stop, delivered late (a resend that lost a race).
    runner.submit({ ...makeCommand('start', 'aaaaaaaa'), issuedAt: '2026-11-22T10:00:01.000Z' });
    await runner.idle();
    expect(runs).toHaveLength(1);
    expect(frames.at(-1)).toEqual({
      type: 'fail',
      commandId: 'cmd-start-aaaaaaaa',
      desktopId: 'aaaaaaaa',
      message:
        'Superseded: a newer command for desktop aaaaaaaa (issued 2026-11-22T10:00:02.000Z) reached this bridge first; nothing was done',
    });
  });

  it('aborts the running command of a desktop when a newer one arrives, and drops older ones still queued', async () => {
    const task: Task = (spec, ctx) =>
      new Promise((resolve, reject) => {
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true });
        if (spec.name === 'quick') resolve({});
      });
    const { runner, frames } = setup({ task });
    runner.submit({ ...makeCommand('create', 'aaaaaaaa'), issuedAt: '2026-11-22T10:00:00.000Z' });
    runner.submit({ ...makeCommand('stop', 'aaaaaaaa'), issuedAt: '2026-11-22T10:00:01.000Z' });
    runner.submit({ ...makeCommand('delete', 'aaaaaaaa', 'cmd-delete-aaaaaaaa', { name: 'quick' }), issuedAt: '2026-11-22T10:00:02.000Z' });
    await runner.idle();
    const results = frames.filter((f) => f.type === 'complete' || f.type === 'fail');
    expect(results.map((f) => [f.commandId, f.type])).toEqual([
      ['cmd-create-aaaaaaaa', 'fail'],
      ['cmd-stop-aaaaaaaa', 'fail'],
      ['cmd-delete-aaaaaaaa', 'complete'],
    ]);
    expect(results[0]).toMatchObject({ message: 'Cancelled: superseded by a newer stop command' });
    expect(results[1]).toMatchObject({ message: expect.stringMatching(/^Superseded: a newer command/) });
  });

  it('runs at most `concurrency` commands at once', async () => {
    const { runner, runs } = setup({ concurrency: 2 });
    for (const id of ['aaaaaaa1', 'aaaaaaa2', 'aaaaaaa3']) runner.submit(makeCommand('create', id));
    expect(runs).toHaveLength(2);
    runs[1]?.finish();
    await until(() => runs.length === 3);
  });

  it('drops a queued command that is cancelled and reports why', async () => {
    const { runner, frames, runs } = setup();
    runner.submit(makeCommand('create', 'aaaaaaaa'));
    runner.submit(makeCommand('start', 'aaaaaaaa'));
    runner.cancel('cmd-start-aaaaaaaa', 'the desktop was deleted');
    expect(frames.at(-1)).toEqual({
      type: 'fail',
      commandId: 'cmd-start-aaaaaaaa',
      desktopId: 'aaaaaaaa',
      message: 'Cancelled: the desktop was deleted',
    });
    runs[0]?.finish();
    await runner.idle();
    expect(runs).toHaveLength(1);
  });

  it('aborts a running command that is cancelled and fails it with the reason', async () => {
    const task: Task = (_spec, ctx) =>
      new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('fetch aborted')), { once: true }));
    const { runner, frames } = setup({ task });
    runner.submit(makeCommand('create', 'aaaaaaaa'));
    runner.cancel('cmd-create-aaaaaaaa', 'user gave up');
    await runner.idle();
    expect(frames.at(-1)).toEqual({
      type: 'fail',
      commandId: 'cmd-create-aaaaaaaa',
      desktopId: 'aaaaaaaa',
      message: 'Cancelled: user gave up',
    });
  });

  it('turns a thrown error into a sentence, never a stack trace', async () => {
    const { runner, frames, runs } = setup();
    runner.submit(makeCommand('start', 'aaaaaaaa'));
    runs[0]?.fail(new InfraError('VM is locked (backup)\n', 'proxmox', 500, false));
    runner.submit(makeCommand('stop', 'bbbbbbbb'));
    runs[1]?.fail(new TypeError("Cannot read properties of undefined (reading 'vmid')"));
    await runner.idle();
    const messages = frames.flatMap((f) => (f.type === 'fail' ? [f.message] : []));
    expect(messages).toEqual([
      'Proxmox refused to start desktop aaaaaaaa: VM is locked (backup)',
      "Unexpected error while trying to stop desktop bbbbbbbb: Cannot read properties of undefined (reading 'vmid')",
    ]);
    expect(messages.join('\n')).not.toMatch(/ at /);
  });

  it('refuses a command whose spec is for another desktop', async () => {
    const { runner, frames, runs } = setup();
    const command = makeCommand('create', 'aaaaaaaa');
    runner.submit({ ...command, spec: { ...command.spec, desktopId: 'bbbbbbbb' } });
    expect(runs).toHaveLength(0);
    expect(frames.at(-1)).toMatchObject({ type: 'fail', message: expect.stringMatching(/spec describes desktop bbbbbbbb/) });
  });

  it('drains: takes no new commands, leaves queued ones to be handed out again, waits for running ones', async () => {
    const { runner, frames, runs } = setup({ concurrency: 1 });
    runner.submit(makeCommand('create', 'aaaaaaaa'));
    runner.submit(makeCommand('create', 'bbbbbbbb'));
    const draining = runner.drain(1_000);
    runner.submit(makeCommand('create', 'cccccccc'));
    expect(runner.activeCommandIds()).toEqual(['cmd-create-aaaaaaaa']);
    runs[0]?.finish();
    expect(await draining).toEqual([]);
    expect(runs).toHaveLength(1);
    expect(types(frames)).toEqual(['accepted', 'accepted', 'complete']);
  });

  it('drain gives up at its deadline and names what is still running', async () => {
    const { runner } = setup();
    runner.submit(makeCommand('create', 'aaaaaaaa'));
    expect(await runner.drain(5)).toEqual(['cmd-create-aaaaaaaa']);
  });
});
