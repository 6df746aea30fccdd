/**
 * The bridge end to end over a real WebSocket: a fake edge speaks the protocol and the
 * infrastructure is in memory, so every pinned behaviour is what the edge would see.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BridgeToEdge, CompleteFrame, FailFrame, ProgressFrame } from '../../src/schemas/bridge-protocol';
import { type Bridge, createBridge } from '../../on-prem-bridge/src/bridge';
import { InfraError } from '../../on-prem-bridge/src/drivers/types';
import type { LinkTiming } from '../../on-prem-bridge/src/edge-link';
import type { LogFields } from '../../on-prem-bridge/src/logger';
import { crashable } from './support/crashable';
import { FakeEdge } from './support/fake-edge';
import { type Infra, desktopId, makeCommand, makeDeps, makeInfra, memoryLogger, stepsOf } from './support/harness';

const SITE_KEY = 'site-key-for-tests';

let edge: FakeEdge;
let infra: Infra;
const bridges: Bridge[] = [];

beforeEach(async () => {
  edge = await FakeEdge.start({ siteKey: SITE_KEY, heartbeatMs: 40 });
  infra = makeInfra();
});

afterEach(async () => {
  await Promise.all(bridges.splice(0).map((b) => b.stop(0)));
  await edge.close();
});

function startBridge(options: { infra?: Partial<Infra>; siteKey?: string; linkTiming?: Partial<LinkTiming> } = {}): {
  bridge: Bridge;
  logs: LogFields[];
} {
  const logs: LogFields[] = [];
  const bridge = createBridge({
    edgeUrl: edge.url,
    siteId: 'local',
    siteKey: options.siteKey ?? SITE_KEY,
    concurrency: 8,
    deps: makeDeps({ ...infra, ...options.infra }),
    log: memoryLogger(logs),
    linkTiming: { initialBackoffMs: 5, maxBackoffMs: 20, authFailureBackoffMs: 30, ...options.linkTiming },
  });
  bridges.push(bridge);
  bridge.start();
  return { bridge, logs };
}

const isType =
  <T extends BridgeToEdge['type']>(type: T, commandId?: string) =>
  (f: BridgeToEdge): f is Extract<BridgeToEdge, { type: T }> =>
    f.type === type && (commandId === undefined || ('commandId' in f && f.commandId === commandId));

const resultOf =
  (commandId: string) =>
  (f: BridgeToEdge): f is CompleteFrame | FailFrame =>
    (f.type === 'complete' || f.type === 'fail') && f.commandId === commandId;

const progressOf = (commandId: string) => edge.framesOf(commandId, 'progress') as ProgressFrame[];

describe('bridge over the edge link', () => {
  it('says ready, then runs a create: accepted, progress in order, complete with facts', async () => {
    startBridge();
    const ready = await edge.waitFor(isType('ready'));
    expect(ready).toMatchObject({ protocolVersion: 1, running: [] });
    const id = desktopId();
    const command = makeCommand('create', id);

    edge.command(command);
    const complete = await edge.waitFor(isType('complete', command.id));

    expect(edge.framesOf(command.id)[0]).toEqual({ type: 'accepted', commandId: command.id, desktopId: id });
    expect(stepsOf(progressOf(command.id))).toEqual(['allocate', 'clone', 'configure_vm', 'start_vm', 'wait_ip', 'connection']);
    expect(complete.facts).toEqual({ vmId: 20000, node: 'pve1', ipAddress: '10.0.80.1', connectionId: '1' });
    expect(edge.invalid).toEqual([]);
  });

  it('runs a command delivered twice only once', async () => {
    startBridge();
    await edge.waitFor(isType('ready'));
    const command = makeCommand('create', desktopId());
    edge.command(command);
    edge.command(command);
    await edge.waitFor(isType('complete', command.id));

    expect(edge.framesOf(command.id, 'accepted')).toHaveLength(2);
    expect(edge.framesOf(command.id, 'complete')).toHaveLength(1);
    expect(infra.proxmox.callsOf('cloneVm')).toHaveLength(1);
    expect(infra.proxmox.desktopVms()).toHaveLength(1);
  });

  it('answers a duplicate of a finished command with its result', async () => {
    startBridge();
    await edge.waitFor(isType('ready'));
    const command = makeCommand('create', desktopId());
    edge.command(command);
    const first = await edge.waitFor(isType('complete', command.id));
    const seen = edge.frames.length;

    edge.command(command);
    const again = await edge.waitFor(isType('complete', command.id), 2_000, seen);

    expect(again).toEqual(first);
    expect(edge.frames.slice(seen)).toEqual([first]);
    expect(infra.proxmox.callsOf('cloneVm')).toHaveLength(1);
  });

  it('resumes a create after a restart mid-clone and ends with one VM and one connection', async () => {
    infra.proxmox.holdClones = true;
    const dying = crashable(infra.proxmox);
    const first = startBridge({ infra: { proxmox: dying.driver } });
    await edge.waitFor(isType('ready'));
    const command = makeCommand('create', desktopId());
    edge.command(command);
    await edge.waitFor((f) => f.type === 'progress' && f.commandId === command.id && f.step === 'clone');

    // The process dies: its calls hang forever and its socket goes away.
    dying.crash();
    await first.bridge.link.close();
    await edge.until(() => !edge.connected);

    const seen = edge.frames.length;
    startBridge();
    // A restarted process holds nothing, so its `ready` lists nothing.
    expect(await edge.waitFor(isType('ready'), 2_000, seen)).toMatchObject({ running: [] });
    // The lease lapsed; the edge hands the command out again.
    edge.command(command);
    // The clone has no name until it ends; the new process waits for it instead of cloning again.
    await edge.waitFor((f) => f.type === 'progress' && f.commandId === command.id && f.step === 'allocate', 2_000, seen);
    infra.proxmox.releaseClones();
    const complete = await edge.waitFor(isType('complete', command.id), 5_000, seen);

    expect(complete.facts.vmId).toBe(20000);
    expect(infra.proxmox.callsOf('cloneVm')).toHaveLength(1);
    expect(infra.proxmox.desktopVms()).toHaveLength(1);
    expect(infra.guacamole.connections.size).toBe(1);
    const resumed = (edge.frames.slice(seen) as ProgressFrame[]).filter((f) => f.type === 'progress');
    // The clone has no name yet; the VMID the first process recorded before cloning leads to it.
    expect(resumed.map((f) => f.message).slice(0, 2)).toEqual([
      `found VM 20000 (desk-${command.desktopId}) on pve1 from an earlier run`,
      'VM 20000 is still being cloned; waiting for the clone to finish',
    ]);
  });

  it('runs two commands for one desktop in arrival order', async () => {
    startBridge();
    await edge.waitFor(isType('ready'));
    const id = desktopId();
    const create = makeCommand('create', id);
    const stop = makeCommand('stop', id);
    edge.command(create);
    edge.command(stop);
    await edge.waitFor(isType('complete', stop.id));

    const createDone = edge.frames.findIndex(resultOf(create.id));
    const stopStarted = edge.frames.findIndex(isType('progress', stop.id));
    expect(edge.frames[createDone]?.type).toBe('complete');
    expect(stopStarted).toBeGreaterThan(createDone);
    expect(infra.proxmox.desktopVms()[0]?.status).toBe('stopped');
  });

  it('cancels a create mid-clone and its clean-up leaves nothing behind', async () => {
    infra.proxmox.holdClones = true;
    startBridge();
    await edge.waitFor(isType('ready'));
    const command = makeCommand('create', desktopId());
    edge.command(command);
    await edge.waitFor((f) => f.type === 'progress' && f.commandId === command.id && f.step === 'clone');

    edge.send({ type: 'cancel', commandId: command.id, reason: 'the user deleted the desktop' });
    // Proxmox cannot destroy a VM mid-clone; the clean-up waits for the clone to end.
    await edge.waitFor((f) => f.type === 'progress' && f.commandId === command.id && f.step === 'destroy');
    infra.proxmox.releaseClones();
    const fail = await edge.waitFor(isType('fail', command.id));

    expect(fail.message).toBe('Cancelled: the user deleted the desktop; everything it had created was removed');
    expect(infra.proxmox.desktopVms()).toEqual([]);
    expect(infra.guacamole.connections.size).toBe(0);
    expect(infra.guacamole.users.size).toBe(0);
  });

  it('retries a transient error to success, and fails a permanent one with a readable message', async () => {
    startBridge();
    await edge.waitFor(isType('ready'));
    infra.proxmox.failNext('configureVm', new InfraError('VM is locked (snapshot)\n', 'proxmox', 500, true), 2);
    const retried = makeCommand('create', desktopId());
    edge.command(retried);
    await edge.waitFor(isType('complete', retried.id));
    expect(infra.proxmox.callsOf('configureVm')).toHaveLength(3);

    infra.proxmox.failNextTask(
      'qmclone',
      "clone failed: Linked clone feature is not supported for 'local:9000/base-9000-disk-0.raw' (scsi0)",
    );
    const failing = makeCommand('create', desktopId());
    edge.command(failing);
    const fail = await edge.waitFor(isType('fail', failing.id));
    expect(fail.message).toBe(
      "Proxmox refused to clone template 9000 into VM 20001: clone failed: Linked clone feature is not supported for 'local:9000/base-9000-disk-0.raw' (scsi0); everything it had created was removed",
    );
    expect(infra.proxmox.callsOf('cloneVm')).toHaveLength(2);
  });

  it('delivers the frames produced while the link was down after it reconnects', async () => {
    infra.proxmox.holdClones = true;
    const { bridge } = startBridge();
    await edge.waitFor(isType('ready'));
    const command = makeCommand('create', desktopId());
    edge.command(command);
    await edge.waitFor((f) => f.type === 'progress' && f.commandId === command.id && f.step === 'clone');

    edge.refuseWith = 503;
    edge.dropConnection();
    await edge.until(() => !bridge.link.live);
    infra.proxmox.releaseClones();
    // The create finishes while the edge is unreachable; its frames wait in the buffer.
    await edge.until(() => bridge.runner.activeCommandIds().length === 0 && edge.attempts.includes(503));
    const seen = edge.frames.length;
    expect(bridge.link.buffered).toBeGreaterThan(0);

    edge.refuseWith = undefined;
    const complete = await edge.waitFor(isType('complete', command.id), 5_000, seen);

    const after = edge.frames.slice(seen);
    expect(after[0]?.type).toBe('ready');
    expect(stepsOf(after.filter((f): f is ProgressFrame => f.type === 'progress'))).toEqual([
      'configure_vm',
      'start_vm',
      'wait_ip',
      'connection',
    ]);
    expect(complete.facts.connectionId).toBe('1');
    expect(bridge.link.buffered).toBe(0);
  });

  it('lists held commands in `ready` after a reconnect and in every heartbeat', async () => {
    infra.proxmox.holdClones = true;
    startBridge();
    await edge.waitFor(isType('ready'));
    const command = makeCommand('create', desktopId());
    edge.command(command);
    await edge.waitFor((f) => f.type === 'heartbeat' && f.running.includes(command.id));

    const seen = edge.frames.length;
    edge.dropConnection();
    expect(await edge.waitFor(isType('ready'), 2_000, seen)).toMatchObject({ running: [command.id] });
    infra.proxmox.releaseClones();
    await edge.waitFor(isType('complete', command.id));
  });

  it('keeps retrying, slowly and without crashing, while the edge rejects the site key', async () => {
    edge.refuseWith = 401;
    const { bridge, logs } = startBridge();
    await edge.until(() => edge.attempts.filter((s) => s === 401).length >= 2);
    expect(
      logs.some((l) => l.level === 'error' && l.msg === 'the edge rejected this site key; check SITE_ID and SITE_KEY' && l.status === 401),
    ).toBe(true);
    expect(bridge.link.live).toBe(false);

    // Once the operator fixes the key on the edge side, the same process connects.
    edge.refuseWith = undefined;
    await edge.waitFor(isType('ready'));
    await edge.until(() => bridge.link.live);
  });

  it('replaces a connection on which the edge never says hello', async () => {
    await edge.close();
    edge = await FakeEdge.start({ siteKey: SITE_KEY, sayHello: false });
    const { bridge } = startBridge({ linkTiming: { handshakeTimeoutMs: 30 } });
    await edge.until(() => edge.attempts.length >= 2);
    expect(bridge.link.live).toBe(false);
  });

  it('replaces a connection that went silent (no pongs, no frames)', async () => {
    await edge.close();
    edge = await FakeEdge.start({ siteKey: SITE_KEY, heartbeatMs: 20, autoPong: false });
    const { logs } = startBridge();
    await edge.until(() => edge.attempts.length >= 2);
    expect(logs.some((l) => l.msg === 'no sign of life from the edge; replacing the connection')).toBe(true);
  });

  it('answers open_session with a client URL', async () => {
    startBridge();
    await edge.waitFor(isType('ready'));
    const id = desktopId();
    const command = makeCommand('create', id);
    edge.command(command);
    const { facts } = await edge.waitFor(isType('complete', command.id));

    edge.send({
      type: 'request',
      requestId: 'req-1',
      request: { op: 'open_session', desktopId: id, connectionId: facts.connectionId ?? '' },
    });
    const response = await edge.waitFor(isType('response'));

    expect(response).toMatchObject({ type: 'response', requestId: 'req-1', ok: true });
    expect(response.type === 'response' && response.url).toMatch(
      /^https:\/\/desk\.example\.test\/guacamole\/#\/client\/[\w-]+\?token=TOKEN-DESK-/,
    );
  });

  it('logs and drops invalid frames, and keeps working', async () => {
    const { logs } = startBridge();
    await edge.waitFor(isType('ready'));
    edge.sendRaw('not json');
    edge.sendRaw(JSON.stringify({ type: 'command', command: { id: 'x', desktopId: 'NOT VALID' } }));
    const command = makeCommand('stop', desktopId());
    edge.command(command);
    await edge.waitFor(isType('complete', command.id));

    expect(logs.filter((l) => l.level === 'warn' && String(l.msg).startsWith('dropped'))).toHaveLength(2);
  });

  it('stops gracefully: finishes the running command, then closes the link', async () => {
    infra.proxmox.holdClones = true;
    const { bridge } = startBridge();
    await edge.waitFor(isType('ready'));
    const command = makeCommand('create', desktopId());
    edge.command(command);
    await edge.waitFor((f) => f.type === 'progress' && f.commandId === command.id && f.step === 'clone');

    const stopping = bridge.stop(5_000);
    // Commands arriving during the drain are not taken (no `accepted`).
    const late = makeCommand('create', desktopId());
    edge.command(late);
    infra.proxmox.releaseClones();

    expect(await stopping).toEqual({ unfinished: [] });
    expect(edge.framesOf(command.id, 'complete')).toHaveLength(1);
    expect(edge.framesOf(late.id)).toEqual([]);
    await edge.until(() => !edge.connected);
  });
});
