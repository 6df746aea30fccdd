/**
 * <cloud-desktop desktop-id="…" token-endpoint="/your/backend/route">: one desktop embedded in
 * another site's page (a streaming app), with no framework. Served by the edge Worker at
 * /embed/cloud-desktop.js (built by scripts/build-ui.ts, like the dashboard's script).
 *
 * It asks the page's own backend (token-endpoint) for a short-lived desktop token, follows the
 * desktop on GET /api/v1/desktops/{id}/live (Server-Sent Events read with fetch, so the token
 * travels in the Authorization header and never in a URL), opens it in a frame once RUNNING,
 * shows warnings with a keepalive button, and tells the page what happens with DOM events
 * (README "Embedding a desktop": the attributes, the events and their details, theming).
 *
 * What the element shows and which events it fires is decided by `step`, a pure function of
 * its state and one input (a live message, the frame opening, a keepalive answered, a
 * refusal); the class below only does the I/O and draws the state. The module has no import
 * at run time and defines the element only where there is a DOM, so tests import it in Node.
 */
import type { Desktop, DesktopStatus, WarningKind } from '../../schemas/desktop';
import type { LiveMessage } from '../../schemas/live';

// ---- the state, as a pure function ----

/** The create progression, in order: "step 3 of 6" (as src/ui/status-text.ts). */
export const CREATE_STEPS: readonly DesktopStatus[] = ['PENDING', 'PROVISIONING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING', 'RUNNING'];
const BUSY: readonly DesktopStatus[] = ['PENDING', 'PROVISIONING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING', 'STOPPING'];

/** The dashboard's words for each status (src/ui/status-text.ts; a test keeps the two the same). */
export const STATUS_TEXT: Record<DesktopStatus, string> = {
  PENDING: 'Queued',
  PROVISIONING: 'Creating the machine',
  STARTING: 'Starting',
  WAITING_FOR_IP: 'Waiting for the network',
  CONFIGURING: 'Setting up remote access',
  RUNNING: 'Running',
  STOPPING: 'Stopping',
  STOPPED: 'Stopped',
  FAILED: 'Failed',
  DELETED: 'Terminated',
};

export type FailureCode = 'DESKTOP_FAILED' | 'TOKEN_REFUSED' | 'NOT_FOUND' | 'FORBIDDEN' | 'CONNECT_FAILED';

/** Every event the element fires, with its `detail` (CustomEvent; bubbles, composed). */
export interface CloudDesktopEvents {
  /** Work in progress: creating, starting or stopping; `step` counts the create progression (null while stopping). */
  progress: { desktopId: string; status: DesktopStatus; statusText: string; step: number | null; steps: number; message: string | null };
  /** The desktop is RUNNING and its frame is open. */
  ready: { desktopId: string; name: string; protocol: string };
  /** Nobody has used it for a while: it stops at `at` unless someone answers (the element's button, or keepAlive()). */
  'idle-warning': { desktopId: string; at: string };
  /** Its session limit (stop) or expiry (deletion) comes at `at`; these cannot be kept alive. */
  'limit-warning': { desktopId: string; kind: 'session_limit' | 'expiry'; at: string };
  /** A keepalive was answered: the idle stop moved to `idleStopAt`. */
  keepalive: { desktopId: string; idleStopAt: string | null };
  /** STOPPED (it can be started again by the app) or DELETED (gone); `reason` says why. */
  stopped: { desktopId: string; status: 'STOPPED' | 'DELETED'; reason: string | null };
  /** The desktop FAILED, or the element cannot go on (token refused, desktop not found, no connection). */
  failed: { desktopId: string; code: FailureCode; reason: string };
}
export type CloudDesktopEventType = keyof CloudDesktopEvents;
export type EmbedEvent = { [K in CloudDesktopEventType]: { type: K; detail: CloudDesktopEvents[K] } }[CloudDesktopEventType];

export interface EmbedState {
  desktopId: string;
  desktop: Desktop | null;
  frame: 'closed' | 'opening' | 'open';
  warning: { kind: WarningKind; at: string } | null;
  /** The status (and step message) last reported, so a snapshot after a reconnect repeats no event. */
  reported: string | null;
  failure: { code: FailureCode; reason: string } | null;
}

export type EmbedInput =
  | { kind: 'live'; message: LiveMessage }
  | { kind: 'opened' }
  | { kind: 'kept-alive'; desktop: Desktop }
  | { kind: 'refused'; code: FailureCode; reason: string };

/** What the element must do after a step: open or close the frame, stop following (the desktop is gone or refused). */
export type EmbedEffect = 'open-frame' | 'close-frame' | 'stop';

export const initialState = (desktopId: string): EmbedState => ({
  desktopId,
  desktop: null,
  frame: 'closed',
  warning: null,
  reported: null,
  failure: null,
});

export function step(state: EmbedState, input: EmbedInput): { state: EmbedState; events: EmbedEvent[]; effects: EmbedEffect[] } {
  const s: EmbedState = { ...state };
  const events: EmbedEvent[] = [];
  const effects: EmbedEffect[] = [];
  const id = s.desktopId;
  const closeFrame = () => {
    if (s.frame !== 'closed') effects.push('close-frame');
    s.frame = 'closed';
    s.warning = null;
  };

  const onDesktop = (d: Desktop) => {
    s.desktop = d;
    s.failure = null;
    const status = d.status;
    if (BUSY.includes(status)) {
      closeFrame();
      const key = `${status}|${d.statusMessage ?? ''}`;
      if (key === s.reported) return;
      s.reported = key;
      const index = CREATE_STEPS.indexOf(status);
      const detail = {
        desktopId: id,
        status,
        statusText: STATUS_TEXT[status],
        step: index >= 0 ? index + 1 : null,
        steps: CREATE_STEPS.length,
        message: d.statusMessage,
      };
      events.push({ type: 'progress', detail });
      return;
    }
    const changed = s.reported !== status;
    s.reported = status;
    if (status === 'RUNNING') {
      if (s.frame === 'closed') {
        s.frame = 'opening';
        effects.push('open-frame');
      }
      // Activity moved the idle deadline: the warning no longer holds.
      if (s.warning?.kind === 'idle' && s.warning.at !== d.idleStopAt) s.warning = null;
      return;
    }
    closeFrame();
    if (status === 'FAILED') {
      if (changed)
        events.push({ type: 'failed', detail: { desktopId: id, code: 'DESKTOP_FAILED', reason: d.errorMessage ?? 'The desktop failed.' } });
      return;
    }
    if (status === 'STOPPED' || status === 'DELETED') {
      if (changed) events.push({ type: 'stopped', detail: { desktopId: id, status, reason: d.stopReason } });
      if (status === 'DELETED') effects.push('stop');
    }
  };

  switch (input.kind) {
    case 'live': {
      const m = input.message;
      onDesktop(m.desktop);
      if (m.type !== 'warning') break;
      // Idle and session-limit warnings only mean something while it runs; an expiry in any status.
      if (m.warning !== 'expiry' && m.desktop.status !== 'RUNNING') break;
      if (s.warning?.kind === m.warning && s.warning.at === m.at) break;
      s.warning = { kind: m.warning, at: m.at };
      events.push(
        m.warning === 'idle'
          ? { type: 'idle-warning', detail: { desktopId: id, at: m.at } }
          : { type: 'limit-warning', detail: { desktopId: id, kind: m.warning, at: m.at } },
      );
      break;
    }
    case 'opened':
      if (s.frame !== 'opening' || !s.desktop) break;
      s.frame = 'open';
      events.push({ type: 'ready', detail: { desktopId: id, name: s.desktop.name, protocol: s.desktop.protocol } });
      break;
    case 'kept-alive':
      if (s.warning?.kind === 'idle') s.warning = null;
      onDesktop(input.desktop);
      events.push({ type: 'keepalive', detail: { desktopId: id, idleStopAt: input.desktop.idleStopAt } });
      break;
    case 'refused':
      closeFrame();
      s.failure = { code: input.code, reason: input.reason };
      events.push({ type: 'failed', detail: { desktopId: id, code: input.code, reason: input.reason } });
      effects.push('stop');
      break;
  }
  return { state: s, events, effects };
}

/** Server-Sent Events from a growing buffer: the data of each complete event, and what is left over. */
export function parseSse(buffer: string): { data: string[]; rest: string } {
  const text = buffer.replace(/\r\n?/g, '\n');
  const blocks = text.split('\n\n');
  const rest = blocks.pop() ?? '';
  const data: string[] = [];
  for (const block of blocks) {
    const lines = block.split('\n').filter((l) => l.startsWith('data:'));
    if (lines.length > 0) data.push(lines.map((l) => l.slice(l.startsWith('data: ') ? 6 : 5)).join('\n'));
  }
  return { data, rest };
}

/** The token endpoint's answer: `{token, expiresAt}`, or the API's envelope of it passed through. */
export function tokenFromAnswer(body: unknown): { token: string; expiresAt: number } | null {
  const outer = body as { data?: unknown } | null;
  const t = (outer && typeof outer === 'object' && outer.data && typeof outer.data === 'object' ? outer.data : outer) as {
    token?: unknown;
    expiresAt?: unknown;
  } | null;
  if (!t || typeof t.token !== 'string' || t.token === '') return null;
  const expiresAt = typeof t.expiresAt === 'string' ? Date.parse(t.expiresAt) : Number.NaN;
  // Without a (valid) expiry it is used until refused, then fetched again.
  return { token: t.token, expiresAt: Number.isNaN(expiresAt) ? Number.POSITIVE_INFINITY : expiresAt };
}

export function clock(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, '0')}`;
}

// ---- the element ----

const STYLE = `
:host{display:block;font:var(--cloud-desktop-font,inherit);color:var(--cloud-desktop-color,#1a1e23);--accent:var(--cloud-desktop-accent,#0a58a8);--radius:var(--cloud-desktop-radius,.5rem)}
:host([hidden]){display:none}
*{box-sizing:border-box}
.panel{background:var(--cloud-desktop-background,#fff);border:1px solid var(--cloud-desktop-border,#c5cdd6);border-radius:var(--radius);padding:1rem;display:grid;gap:.75rem}
.panel:focus{outline:none}
.head{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;gap:.5rem}
.name{font-weight:600;margin:0}
.status{font-size:.875rem;padding:.1rem .5rem;border-radius:1rem;background:#e8ecf0;color:#3b444e}
.status[data-tone=ok]{background:#e2f2e6;color:#1b5e2f}.status[data-tone=bad]{background:#fce6e4;color:#9c2019}.status[data-tone=busy]{background:#fdf1d3;color:#6e4700}
progress{width:100%;height:.5rem;accent-color:var(--accent)}
p{margin:0}
.muted{color:var(--cloud-desktop-muted,#4b5561);font-size:.875rem}
.muted[data-tone=bad]{color:var(--cloud-desktop-error,#a8231b)}
.warning{border:2px solid var(--cloud-desktop-warning-border,#b07d00);background:var(--cloud-desktop-warning-background,#fff4d1);color:#1a1e23;border-radius:var(--radius);padding:.75rem;display:grid;gap:.5rem;justify-items:start}
.problem{border-left:4px solid var(--cloud-desktop-error,#a8231b);padding:.25rem .75rem;display:grid;gap:.5rem;justify-items:start}
button{font:inherit;padding:.4rem .9rem;border-radius:var(--radius);border:1px solid var(--accent);background:var(--accent);color:var(--cloud-desktop-on-accent,#fff);cursor:pointer}
button[aria-disabled=true]{opacity:.6;cursor:progress}
button:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
iframe{display:block;width:100%;height:var(--cloud-desktop-frame-height,36rem);border:0;border-radius:var(--radius);background:#000}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
[hidden]{display:none!important}
`;

const TONE: Partial<Record<DesktopStatus, string>> = { RUNNING: 'ok', FAILED: 'bad', STOPPED: 'idle', DELETED: 'idle' };

/** A refusal that ends the element's work (the page must act: a new token endpoint, another desktop). */
class Refused extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
  ) {
    super(message);
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });

async function messageOf(res: Response): Promise<string> {
  const body = (await res.json().catch(() => null)) as { message?: unknown; error?: unknown } | null;
  const m = body?.message ?? body?.error;
  return typeof m === 'string' && m ? m : `answered ${res.status}`;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text = ''): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

// Where this script was loaded from: the edge, whose API the element calls unless api-base says otherwise.
const SCRIPT_ORIGIN = import.meta.url.startsWith('http') ? new URL(import.meta.url).origin : '';
// Tests import this module in Node, where there is no DOM to extend.
const Base = (typeof HTMLElement === 'undefined' ? class {} : HTMLElement) as typeof HTMLElement;

export class CloudDesktop extends Base {
  static readonly observedAttributes = ['desktop-id', 'token-endpoint', 'api-base'];

  private state: EmbedState = initialState('');
  private run: AbortController | null = null;
  private token: { token: string; expiresAt: number } | null = null;
  private ticker = 0;
  private readonly ui: {
    panel: HTMLElement;
    name: HTMLElement;
    status: HTMLElement;
    progress: HTMLElement;
    bar: HTMLProgressElement;
    step: HTMLElement;
    message: HTMLElement;
    warning: HTMLElement;
    warningText: HTMLElement;
    countdown: HTMLElement;
    keepalive: HTMLButtonElement;
    problem: HTMLElement;
    problemText: HTMLElement;
    retry: HTMLButtonElement;
    ended: HTMLElement;
    live: HTMLElement;
    frameSlot: HTMLElement;
  };

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    // A constructed stylesheet, not a <style>: pages with a strict style-src CSP allow it.
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
    root.adoptedStyleSheets = [sheet];
    const panel = el('section', { class: 'panel', part: 'panel', 'aria-labelledby': 'name', tabindex: '-1' });
    const head = el('div', { class: 'head', part: 'header' });
    const name = el('p', { class: 'name', id: 'name', part: 'name' }, 'Cloud desktop');
    const status = el('span', { class: 'status', part: 'status' }, 'Connecting…');
    head.append(name, status);
    const progress = el('div', { part: 'progress', hidden: '' });
    const bar = el('progress', { max: String(CREATE_STEPS.length - 1), 'aria-labelledby': 'step', part: 'progress-bar' });
    const stepText = el('p', { id: 'step' });
    const message = el('p', { class: 'muted', part: 'message' });
    progress.append(stepText, bar, message);
    const warning = el('div', { class: 'warning', role: 'alert', part: 'warning', hidden: '' });
    const warningText = el('p');
    const countdown = el('p', { class: 'muted', 'aria-hidden': 'true' });
    const keepalive = el('button', { type: 'button', part: 'keepalive-button' }, 'I’m still here');
    warning.append(warningText, countdown, keepalive);
    const problem = el('div', { class: 'problem', role: 'alert', part: 'problem', hidden: '' });
    const problemText = el('p');
    const retry = el('button', { type: 'button', part: 'retry-button' }, 'Try again');
    problem.append(problemText, retry);
    const ended = el('p', { class: 'muted', part: 'ended', hidden: '' });
    const frameSlot = el('div');
    const live = el('p', { class: 'sr', role: 'status' });
    panel.append(head, progress, warning, problem, ended, frameSlot, live);
    root.append(panel);
    keepalive.addEventListener('click', () => void this.keepAlive());
    retry.addEventListener('click', () => this.restart());
    this.ui = {
      panel,
      name,
      status,
      progress,
      bar,
      step: stepText,
      message,
      warning,
      warningText,
      countdown,
      keepalive,
      problem,
      problemText,
      retry,
      ended,
      live,
      frameSlot,
    };
  }

  /** The desktop's status as last seen (null before the first message). */
  get status(): DesktopStatus | null {
    return this.state.desktop?.status ?? null;
  }

  connectedCallback(): void {
    this.restart();
  }

  disconnectedCallback(): void {
    this.run?.abort();
    this.run = null;
    window.clearInterval(this.ticker);
  }

  attributeChangedCallback(name: string, before: string | null, after: string | null): void {
    if (before === after || !this.isConnected) return;
    if (name === 'desktop-id' || name === 'token-endpoint') this.token = null;
    this.restart();
  }

  /** Starts over: a new token, the live stream from its snapshot. */
  restart(): void {
    this.run?.abort();
    const desktopId = this.getAttribute('desktop-id') ?? '';
    this.state = initialState(desktopId);
    this.ui.frameSlot.replaceChildren();
    this.draw();
    if (!desktopId || !this.getAttribute('token-endpoint')) return;
    const run = new AbortController();
    this.run = run;
    void this.follow(run.signal);
  }

  /** "I'm still here": restarts the idle clock. Also for the page's own button. */
  async keepAlive(): Promise<void> {
    const b = this.ui.keepalive;
    // aria-disabled, not disabled: a disabled button would drop the keyboard focus on the floor.
    if (b.getAttribute('aria-disabled') === 'true') return;
    b.setAttribute('aria-disabled', 'true');
    try {
      const res = await this.api('POST', 'keepalive', '{}');
      if (!res.ok) throw new Error(await messageOf(res));
      const d = ((await res.json()) as { data: Desktop }).data;
      this.input({ kind: 'kept-alive', desktop: d });
      this.announce(`Thanks. ${d.name} keeps running.`);
    } catch (err) {
      this.announce(`The desktop could not be kept running: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      b.removeAttribute('aria-disabled');
    }
  }

  private get apiBase(): string {
    return (this.getAttribute('api-base') ?? SCRIPT_ORIGIN) || location.origin;
  }

  private input(input: EmbedInput): void {
    const before = this.state;
    const out = step(before, input);
    this.state = out.state;
    for (const e of out.effects) {
      if (e === 'open-frame') void this.openFrame();
      else if (e === 'close-frame') this.ui.frameSlot.replaceChildren();
      else if (e === 'stop') this.run?.abort();
    }
    this.draw();
    for (const e of out.events) {
      this.announceEvent(e);
      this.dispatchEvent(new CustomEvent(e.type, { detail: e.detail, bubbles: true, composed: true }));
    }
  }

  private async bearer(signal?: AbortSignal): Promise<string> {
    if (this.token && this.token.expiresAt - Date.now() > 30_000) return this.token.token;
    const endpoint = this.getAttribute('token-endpoint') ?? '';
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ desktopId: this.state.desktopId }),
      credentials: 'same-origin',
      signal,
    });
    if (res.status === 401 || res.status === 403 || res.status === 404) throw new Refused('TOKEN_REFUSED', await messageOf(res));
    if (!res.ok) throw new Error(`the token endpoint ${await messageOf(res)}`);
    const token = tokenFromAnswer(await res.json().catch(() => null));
    if (!token) throw new Refused('TOKEN_REFUSED', 'The token endpoint answered no token.');
    this.token = token;
    return token.token;
  }

  /** A call of the desktop's API with the desktop token; an expired token is fetched again once. */
  private async api(method: string, what: string, body?: string, signal?: AbortSignal): Promise<Response> {
    const url = `${this.apiBase}/api/v1/desktops/${encodeURIComponent(this.state.desktopId)}/${what}`;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { authorization: `Bearer ${await this.bearer(signal)}` };
      if (what === 'live') headers.accept = 'text/event-stream';
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(url, { method, headers, body, signal, cache: 'no-store' });
      if (res.status !== 401 || attempt > 0) {
        if (res.status === 404) throw new Refused('NOT_FOUND', 'This desktop does not exist, or is not yours.');
        if (res.status === 401) throw new Refused('TOKEN_REFUSED', `The API refused the desktop token: ${await messageOf(res)}`);
        if (res.status === 403) throw new Refused('FORBIDDEN', await messageOf(res));
        return res;
      }
      this.token = null;
    }
  }

  /** Follows the live stream until stopped, reconnecting with backoff (1 s, 2 s, … 30 s). */
  private async follow(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        const res = await this.api('GET', 'live', undefined, signal);
        if (!res.ok || !res.body) throw new Error(`the live stream ${await messageOf(res)}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const parsed = parseSse(buffer + value);
          buffer = parsed.rest;
          for (const data of parsed.data) {
            failures = 0;
            this.input({ kind: 'live', message: JSON.parse(data) as LiveMessage });
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof Refused) return this.input({ kind: 'refused', code: err.code, reason: err.message });
      }
      if (signal.aborted) return;
      failures++;
      if (failures === 3) this.announce('The connection to the desktop’s status was lost; reconnecting…');
      await sleep(Math.min(30_000, 1000 * 2 ** (failures - 1)), signal);
    }
  }

  private async openFrame(): Promise<void> {
    const signal = this.run?.signal;
    try {
      const res = await this.api('GET', 'connect', undefined, signal);
      // The desktop left RUNNING meanwhile (409): the stream will say so.
      if (res.status === 409) return;
      if (!res.ok) throw new Error(await messageOf(res));
      const { connectionUrl } = ((await res.json()) as { data: { connectionUrl: string } }).data;
      if (signal?.aborted || this.state.frame !== 'opening') return;
      const d = this.state.desktop;
      // The connect link redirects to Guacamole, another origin than the src: the clipboard must be allowed for any origin the frame reaches.
      const frame = el('iframe', {
        part: 'frame',
        title: `Remote desktop: ${d?.name ?? 'desktop'}`,
        allow: 'clipboard-read *; clipboard-write *; fullscreen *',
        referrerpolicy: 'no-referrer',
      });
      frame.src = connectionUrl;
      this.ui.frameSlot.replaceChildren(frame);
      this.input({ kind: 'opened' });
    } catch (err) {
      if (signal?.aborted) return;
      const reason = err instanceof Error ? err.message : String(err);
      this.input({ kind: 'refused', code: err instanceof Refused ? err.code : 'CONNECT_FAILED', reason });
    }
  }

  private announce(text: string): void {
    this.ui.live.textContent = text;
  }

  private announceEvent(e: EmbedEvent): void {
    const name = this.state.desktop?.name ?? 'The desktop';
    if (e.type === 'progress') {
      const d = e.detail;
      this.announce(`${name}: ${d.statusText}${d.step ? `, step ${d.step} of ${d.steps}` : ''}.`);
    } else if (e.type === 'ready') this.announce(`${name} is running and open below.`);
    else if (e.type === 'stopped') this.announce(`${name} ${e.detail.status === 'DELETED' ? 'has ended' : 'has stopped'}.`);
    else if (e.type === 'failed' && e.detail.code === 'DESKTOP_FAILED') this.announce(`${name} failed: ${e.detail.reason}`);
  }

  private draw(): void {
    const { desktop: d, warning, failure } = this.state;
    const ui = this.ui;
    const status = d?.status;
    ui.name.textContent = d?.name ?? 'Cloud desktop';
    ui.status.textContent = status ? STATUS_TEXT[status] : failure ? 'Unavailable' : 'Connecting…';
    ui.status.dataset.tone = status ? (TONE[status] ?? 'busy') : failure ? 'bad' : 'busy';

    const busy = !!status && BUSY.includes(status);
    ui.progress.hidden = !busy;
    if (busy) {
      const index = CREATE_STEPS.indexOf(status);
      if (index >= 0) ui.bar.value = index;
      else ui.bar.removeAttribute('value');
      ui.step.textContent = index >= 0 ? `Step ${index + 1} of ${CREATE_STEPS.length}: ${STATUS_TEXT[status]}` : STATUS_TEXT[status];
      ui.message.textContent = d?.statusMessage ?? '';
    }

    // A warning that goes away (answered here, or activity elsewhere moved the deadline) takes its
    // button with it: the focus goes to the panel, not back to the top of the page.
    const focused = this.shadowRoot?.activeElement;
    if (!warning && focused && ui.warning.contains(focused)) ui.panel.focus();
    ui.warning.hidden = !warning;
    window.clearInterval(this.ticker);
    if (warning) {
      const at = new Date(warning.at);
      const time = at.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
      ui.warningText.textContent =
        warning.kind === 'idle'
          ? `${d?.name ?? 'This desktop'} will stop at ${time} because nobody has used it for a while. Your files stay on it.`
          : warning.kind === 'session_limit'
            ? `${d?.name ?? 'This desktop'} reaches its session limit and stops at ${time}.`
            : `${d?.name ?? 'This desktop'} expires at ${time} and will then be deleted.`;
      ui.keepalive.hidden = warning.kind !== 'idle';
      ui.keepalive.setAttribute('aria-label', `I’m still here: keep ${d?.name ?? 'the desktop'} running`);
      const tick = () => {
        ui.countdown.textContent = `Time left: ${clock(at.getTime() - Date.now())}`;
      };
      tick();
      this.ticker = window.setInterval(tick, 1000);
    }

    ui.problem.hidden = !failure;
    if (failure) ui.problemText.textContent = failure.reason;
    const ended = status === 'STOPPED' || status === 'DELETED' || status === 'FAILED';
    ui.ended.hidden = !ended || !!failure;
    ui.ended.dataset.tone = status === 'FAILED' ? 'bad' : 'idle';
    if (ended)
      ui.ended.textContent =
        status === 'FAILED'
          ? (d?.errorMessage ?? 'The desktop failed.')
          : `${STATUS_TEXT[status]}${d?.stopReason ? `: ${d.stopReason}` : '.'}`;
  }
}

if (typeof customElements !== 'undefined' && !customElements.get('cloud-desktop')) customElements.define('cloud-desktop', CloudDesktop);

declare global {
  interface HTMLElementTagNameMap {
    'cloud-desktop': CloudDesktop;
  }
}
