/**
 * The <cloud-desktop> element's decisions without a browser: which events a live stream
 * produces, in which order, and when the frame opens and closes (src/ui/client/cloud-desktop.ts
 * `step`); the Server-Sent Events reader and the token endpoint's answer. The element in
 * chromium, against a whole stack, is embed.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { newDesktop } from '../../src/lib/new-desktop';
import type { Desktop } from '../../src/schemas/desktop';
import { CREATE_STEPS as DASHBOARD_STEPS, STATUS_TEXT as DASHBOARD_STATUS_TEXT } from '../../src/ui/status-text';
import type { LiveMessage } from '../../src/schemas/live';
import {
  type EmbedEffect,
  type EmbedEvent,
  type EmbedInput,
  type EmbedState,
  CREATE_STEPS,
  STATUS_TEXT,
  initialState,
  parseSse,
  step,
  tokenFromAnswer,
} from '../../src/ui/client/cloud-desktop';

const ID = 'dkembedtest0001';
const base = newDesktop({
  id: ID,
  userId: 'viewer-1',
  name: 'Ubuntu Desktop',
  plan: 'STANDARD',
  protocol: 'vnc',
  siteId: 'local',
  createdBy: 'service:app',
  idleTimeoutMinutes: 30,
});
const at = (status: Desktop['status'], over: Partial<Desktop> = {}): Desktop => ({ ...base, status, statusMessage: null, ...over });
const snapshot = (d: Desktop): EmbedInput => ({ kind: 'live', message: { type: 'snapshot', desktop: d } });
const transition = (d: Desktop): EmbedInput => ({
  kind: 'live',
  message: {
    type: 'transition',
    transition: { seq: 1, at: d.updatedAt, from: null, to: d.status, event: 'e', actor: 'system', reason: 'r' },
    desktop: d,
  },
});
const warning = (d: Desktop, kind: 'idle' | 'session_limit' | 'expiry', when: string): EmbedInput => ({
  kind: 'live',
  message: { type: 'warning', warning: kind, at: when, desktop: d } satisfies LiveMessage,
});

/** Runs inputs through `step` from a fresh state: every event and effect, in order, and the last state. */
function play(inputs: EmbedInput[], from: EmbedState = initialState(ID)) {
  let state = from;
  const events: EmbedEvent[] = [];
  const effects: EmbedEffect[] = [];
  for (const input of inputs) {
    const out = step(state, input);
    state = out.state;
    events.push(...out.events);
    effects.push(...out.effects);
  }
  return { state, events, effects, types: events.map((e) => e.type) };
}

const IDLE_AT = '2026-11-21T10:30:00.000Z';
const running = at('RUNNING', { idleStopAt: IDLE_AT });

describe('a desktop coming up', () => {
  it('fires progress for every step and step message, then opens the frame, and fires ready once it is open', () => {
    const run = play([
      snapshot(at('PENDING', { statusMessage: 'desktop creation requested' })),
      transition(at('PROVISIONING', { statusMessage: 'cloning template 9000' })),
      transition(at('PROVISIONING', { statusMessage: 'setting cores and memory' })),
      transition(at('STARTING')),
      transition(at('WAITING_FOR_IP')),
      transition(at('CONFIGURING')),
      transition(running),
    ]);
    expect(run.types).toEqual(['progress', 'progress', 'progress', 'progress', 'progress', 'progress']);
    expect(run.events.map((e) => (e.type === 'progress' ? [e.detail.step, e.detail.message] : null))).toEqual([
      [1, 'desktop creation requested'],
      [2, 'cloning template 9000'],
      [2, 'setting cores and memory'],
      [3, null],
      [4, null],
      [5, null],
    ]);
    expect(run.events[0]).toMatchObject({ detail: { desktopId: ID, status: 'PENDING', statusText: 'Queued', steps: 6 } });
    expect(run.effects).toEqual(['open-frame']);
    expect(run.state.frame).toBe('opening');

    const opened = play([{ kind: 'opened' }], run.state);
    expect(opened.events).toEqual([{ type: 'ready', detail: { desktopId: ID, name: 'Ubuntu Desktop', protocol: 'vnc' } }]);
    expect(opened.state.frame).toBe('open');
  });

  it('repeats nothing for the snapshot a reconnect brings, and opens no second frame', () => {
    const up = play([snapshot(running), { kind: 'opened' }]);
    expect(up.types).toEqual(['ready']);
    const again = play([snapshot(running), snapshot(running)], up.state);
    expect(again.events).toEqual([]);
    expect(again.effects).toEqual([]);
  });

  it('fires no ready for a frame whose desktop stopped while its link was fetched', () => {
    const run = play([snapshot(running), transition(at('STOPPING')), { kind: 'opened' }]);
    expect(run.types).toEqual(['progress']);
    expect(run.effects).toEqual(['open-frame', 'close-frame']);
    expect(run.state.frame).toBe('closed');
  });
});

describe('warnings', () => {
  it('fires idle-warning once per deadline; activity that moves the deadline withdraws it', () => {
    const run = play([snapshot(running), { kind: 'opened' }, warning(running, 'idle', IDLE_AT), warning(running, 'idle', IDLE_AT)]);
    expect(run.types).toEqual(['ready', 'idle-warning']);
    expect(run.events[1]).toEqual({ type: 'idle-warning', detail: { desktopId: ID, at: IDLE_AT } });
    expect(run.state.warning).toEqual({ kind: 'idle', at: IDLE_AT });

    const moved = at('RUNNING', { idleStopAt: '2026-11-21T11:00:00.000Z' });
    const activity = play([{ kind: 'live', message: { type: 'activity', source: 'viewer', reason: null, desktop: moved } }], run.state);
    expect(activity.state.warning).toBeNull();
    expect(activity.events).toEqual([]);
  });

  it('answers a keepalive with the keepalive event and no warning', () => {
    const warned = play([snapshot(running), { kind: 'opened' }, warning(running, 'idle', IDLE_AT)]);
    const kept = play([{ kind: 'kept-alive', desktop: at('RUNNING', { idleStopAt: '2026-11-21T11:00:00.000Z' }) }], warned.state);
    expect(kept.events).toEqual([{ type: 'keepalive', detail: { desktopId: ID, idleStopAt: '2026-11-21T11:00:00.000Z' } }]);
    expect(kept.state.warning).toBeNull();
    expect(kept.state.frame).toBe('open');
  });

  it('tells a session limit or an expiry apart from idleness, as limit-warning', () => {
    const run = play([snapshot(running), warning(running, 'session_limit', IDLE_AT), warning(at('STOPPED'), 'expiry', IDLE_AT)]);
    expect(run.events.filter((e) => e.type === 'limit-warning').map((e) => e.detail)).toEqual([
      { desktopId: ID, kind: 'session_limit', at: IDLE_AT },
      { desktopId: ID, kind: 'expiry', at: IDLE_AT },
    ]);
  });

  it('drops an idle warning that arrives for a desktop no longer running', () => {
    expect(play([snapshot(at('STOPPED')), warning(at('STOPPED'), 'idle', IDLE_AT)]).types).toEqual(['stopped']);
  });
});

describe('the end', () => {
  it('closes the frame when stopping, fires stopped with the reason once, and stops following when DELETED', () => {
    const up = play([snapshot(running), { kind: 'opened' }]);
    const reason = 'No activity for 30 minutes: stopping the desktop';
    const run = play(
      [
        transition(at('STOPPING', { stopReason: reason })),
        transition(at('STOPPED', { stopReason: reason })),
        snapshot(at('STOPPED', { stopReason: reason })),
        transition(at('STOPPING')),
        transition(at('DELETED')),
      ],
      up.state,
    );
    expect(run.types).toEqual(['progress', 'stopped', 'progress', 'stopped']);
    expect(run.events[0]).toMatchObject({ detail: { status: 'STOPPING', step: null } });
    expect(run.events[1]).toEqual({ type: 'stopped', detail: { desktopId: ID, status: 'STOPPED', reason } });
    expect(run.events[3]).toMatchObject({ detail: { status: 'DELETED' } });
    expect(run.effects).toEqual(['close-frame', 'stop']);
  });

  it('fires failed with the desktop’s error once', () => {
    const failed = at('FAILED', { errorMessage: 'Timed out after 300 s in STARTING (starting the VM)' });
    const run = play([snapshot(at('STARTING')), transition(failed), snapshot(failed)]);
    expect(run.types).toEqual(['progress', 'failed']);
    expect(run.events[1]).toEqual({
      type: 'failed',
      detail: { desktopId: ID, code: 'DESKTOP_FAILED', reason: 'Timed out after 300 s in STARTING (starting the VM)' },
    });
  });

  it('ends on a refusal: failed with its code, frame closed, no more following', () => {
    const up = play([snapshot(running), { kind: 'opened' }]);
    const run = play([{ kind: 'refused', code: 'TOKEN_REFUSED', reason: 'Not your desktop' }], up.state);
    expect(run.events).toEqual([{ type: 'failed', detail: { desktopId: ID, code: 'TOKEN_REFUSED', reason: 'Not your desktop' } }]);
    expect(run.effects).toEqual(['close-frame', 'stop']);
    expect(run.state.failure).toEqual({ code: 'TOKEN_REFUSED', reason: 'Not your desktop' });
  });
});

describe('reading the stream and the token endpoint', () => {
  it('reads Server-Sent Events split anywhere, with comments and CRLF line ends', () => {
    const stream = ': live status of the desktop\n\nevent: snapshot\r\ndata: {"a":1}\r\n\r\nevent: progress\ndata: {"b":';
    const first = parseSse(stream);
    expect(first.data).toEqual(['{"a":1}']);
    const second = parseSse(`${first.rest}2}\n\n: keep-alive\n\n`);
    expect(second).toEqual({ data: ['{"b":2}'], rest: '' });
  });

  it('takes the token from the answer or from the API’s envelope passed through, and refuses an answer without one', () => {
    const expiresAt = '2026-11-21T10:10:00.000Z';
    expect(tokenFromAnswer({ token: 'abc', expiresAt })).toEqual({ token: 'abc', expiresAt: Date.parse(expiresAt) });
    expect(tokenFromAnswer({ success: true, data: { token: 'abc', expiresAt } })).toEqual({
      token: 'abc',
      expiresAt: Date.parse(expiresAt),
    });
    expect(tokenFromAnswer({ token: 'abc' })).toEqual({ token: 'abc', expiresAt: Number.POSITIVE_INFINITY });
    for (const bad of [null, 'abc', {}, { token: '' }, { data: { token: 5 } }]) expect(tokenFromAnswer(bad)).toBeNull();
  });

  it('uses the dashboard’s words for each status, and its create progression', () => {
    expect(STATUS_TEXT).toEqual(DASHBOARD_STATUS_TEXT);
    expect(CREATE_STEPS).toEqual(DASHBOARD_STEPS);
  });
});
