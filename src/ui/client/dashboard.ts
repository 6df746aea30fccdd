/**
 * The dashboard's one script (built by scripts/build-ui.ts into the Worker; no framework).
 * The pages are complete without it; it adds what needs a browser:
 *  - actions through the API, each carrying the page's CSRF token;
 *  - live desktop cards from GET /api/v1/desktops/{id}/live (WebSocket), with progress,
 *    time elapsed, announcements for screen readers, and idle warnings with a keepalive;
 *  - the embedded desktop view, the confirmation dialog, and page refreshes that keep focus.
 * It renders no markup of its own: new cards and warnings are clones of the page's
 * <template> elements, and which button a status offers comes from the page's ui-model.
 */
import type { Desktop, DesktopStatus, WarningKind } from '../../schemas/desktop';
import type { LiveMessage } from '../../schemas/live';
import type { CardAction, UiModel } from '../model-types';

const modelBlock = document.getElementById('ui-model');
const model: UiModel | null = modelBlock ? (JSON.parse(modelBlock.textContent ?? 'null') as UiModel) : null;
const csrf = document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? '';

const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T | null;
const field = <T extends HTMLElement = HTMLElement>(root: ParentNode, name: string) => root.querySelector<T>(`[data-field="${name}"]`);

function clock(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

const localTime = (iso: string) => new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });

function localizeTimes(root: ParentNode = document): void {
  for (const t of root.querySelectorAll<HTMLTimeElement>('time[data-local]')) {
    const d = new Date(t.dateTime);
    if (!Number.isNaN(d.getTime())) t.textContent = d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }
}

// ---- the API ----

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Envelope {
  success?: boolean;
  message?: string;
  data?: unknown;
  error?: { code?: string };
}

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', 'X-CSRF-Token': csrf };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const env = (await res.json().catch(() => ({}))) as Envelope;
  if (!res.ok || env.success !== true)
    throw new Refusal(res.status, env.error?.code ?? 'UNKNOWN', env.message ?? `The server answered ${res.status}`);
  // The route's documented response is the type the caller names.
  return env.data as T;
}

// ---- telling people what happened ----

/** Polite announcements for screen readers (progress, results); cleared first so a repeat is read again. */
function announce(text: string): void {
  const el = byId('announcer');
  if (!el) return;
  el.textContent = '';
  window.setTimeout(() => {
    el.textContent = text;
  }, 30);
}

/** The API's own words, under a heading that says what kind of problem it is (never a bare code). */
function explain(err: unknown): { title: string; text: string; signIn?: boolean } {
  if (!(err instanceof Refusal)) return { title: 'The server could not be reached', text: 'Check your connection and try again.' };
  if (err.status === 401) return { title: 'Your session has ended', text: 'Sign in again to continue.', signIn: true };
  switch (err.code) {
    case 'QUOTA_EXCEEDED':
      return { title: 'You have reached your desktop limit', text: err.message };
    case 'GPU_CAPACITY':
    case 'SITE_UNAVAILABLE':
      return { title: 'No capacity right now', text: err.message };
    case 'RATE_LIMITED':
      return { title: 'Too many requests', text: err.message };
    case 'INVALID_STATE':
    case 'CONFLICT':
      return { title: 'Not possible right now', text: err.message };
    case 'SNAPSHOTS_UNSUPPORTED':
      return { title: 'This desktop cannot have snapshots', text: err.message };
    case 'SNAPSHOT_QUOTA':
      return { title: 'You have reached your snapshot limit', text: err.message };
  }
  if (err.status === 503) return { title: 'No capacity right now', text: err.message };
  return { title: 'That did not work', text: err.message };
}

function showProblem(err: unknown, what: string): void {
  const alerts = byId('alerts');
  if (!alerts) return;
  const { title, text, signIn } = explain(err);
  const box = document.createElement('div');
  box.className = 'notice notice-error';
  const head = document.createElement('p');
  head.className = 'notice-title';
  head.textContent = `${what}: ${title}`;
  const body = document.createElement('p');
  body.textContent = text;
  box.append(head, body);
  if (signIn) {
    const link = document.createElement('a');
    link.href = `/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`;
    link.textContent = 'Sign in again';
    box.append(link);
  }
  const dismiss = document.createElement('button');
  dismiss.type = 'button';
  dismiss.className = 'button-quiet small';
  dismiss.dataset.action = 'dismiss';
  dismiss.textContent = 'Dismiss';
  box.append(dismiss);
  alerts.append(box);
}

// ---- the confirmation dialog ----

/** Settles the confirmation on screen, if any (a new one replaces it as "no"). */
let settleConfirm: ((ok: boolean) => void) | null = null;

function confirmWith(opts: { title: string; text: string; confirm: string }, opener: HTMLElement): Promise<boolean> {
  const dialog = byId<HTMLDialogElement>('confirm');
  if (!dialog) return Promise.resolve(false);
  settleConfirm?.(false);
  const title = byId('confirm-title');
  const text = byId('confirm-text');
  const ok = byId('confirm-ok');
  if (title) title.textContent = opts.title;
  if (text) text.textContent = opts.text;
  if (ok) ok.textContent = opts.confirm;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    // A dialog's close event is queued, not immediate: one from an earlier closing can arrive
    // after the dialog was opened again. Only a close that leaves it closed is this one's answer.
    const onClose = () => {
      if (!dialog.open) finish(dialog.returnValue === 'confirm');
    };
    const finish = (confirmed: boolean) => {
      dialog.removeEventListener('close', onClose);
      settleConfirm = null;
      resolve(confirmed);
      if (opener.isConnected) opener.focus();
    };
    settleConfirm = finish;
    dialog.addEventListener('close', onClose);
  });
}

// ---- desktops: cards (launcher) and rows (admin sessions) ----

const list = () => byId('desktop-list');
const holders = (id: string) => document.querySelectorAll<HTMLElement>(`[data-desktop-id="${CSS.escape(id)}"]`);
const isCard = (el: HTMLElement) => el.matches('li.desktop');
const nameOf = (id: string) => {
  for (const el of holders(id)) {
    const n = field(el, 'name')?.textContent;
    if (n) return n;
  }
  return 'The desktop';
};

function apply(el: HTMLElement, d: Desktop): void {
  if (!model) return;
  const before = el.dataset.status as DesktopStatus | undefined;
  el.dataset.status = d.status;
  const busy = model.busy.includes(d.status);
  const name = field(el, 'name');
  if (name && name.textContent !== d.name) name.textContent = d.name;
  const badge = field(el, 'status');
  if (badge) {
    badge.textContent = model.statusText[d.status];
    badge.dataset.tone = model.tones[d.status];
  }
  const allowed: CardAction[] = model.actions[d.status];
  for (const b of el.querySelectorAll<HTMLButtonElement>('button[data-action][data-label]')) {
    b.hidden = !allowed.includes(b.dataset.action as CardAction);
    if (isCard(el)) b.setAttribute('aria-label', `${b.dataset.label} ${d.name}`);
  }
  if (!isCard(el)) return;

  // Time elapsed counts from the moment work began; a settled → busy change restarts it.
  const wasBusy = before !== undefined && model.busy.includes(before);
  if (busy && !el.dataset.since) el.dataset.since = new Date().toISOString();
  const ready = field(el, 'ready');
  if (ready) {
    if (d.status === 'RUNNING' && wasBusy && el.dataset.since) {
      ready.textContent = `Ready after ${clock(Date.now() - Date.parse(el.dataset.since))}.`;
      ready.hidden = false;
    } else if (d.status !== 'RUNNING') {
      ready.hidden = true;
    }
  }
  if (!busy) delete el.dataset.since;

  const progress = field(el, 'progress');
  if (progress) {
    progress.hidden = !busy;
    const index = model.steps.indexOf(d.status);
    const bar = field<HTMLProgressElement>(progress, 'bar');
    if (bar) {
      if (index >= 0) bar.value = index;
      else bar.removeAttribute('value');
    }
    const step = field(progress, 'step');
    if (step) step.textContent = index >= 0 ? `Step ${index + 1} of ${model.steps.length}` : model.statusText[d.status];
    for (const li of progress.querySelectorAll<HTMLElement>('[data-step]')) {
      const i = model.steps.indexOf(li.dataset.step as DesktopStatus);
      li.dataset.state = index < 0 ? 'todo' : i < index ? 'done' : i === index ? 'current' : 'todo';
      if (i === index) li.setAttribute('aria-current', 'step');
      else li.removeAttribute('aria-current');
    }
  }
  const message = field(el, 'message');
  if (message) {
    message.textContent = d.statusMessage ?? '';
    message.hidden = !busy || !d.statusMessage;
  }
  const error = field(el, 'error');
  if (error) {
    const text = field(error, 'error-text');
    if (text) text.textContent = d.errorMessage ?? '';
    error.hidden = !d.errorMessage;
  }
  const reason = field(el, 'stop-reason');
  if (reason) {
    reason.textContent = d.stopReason ?? '';
    reason.hidden = d.status !== 'STOPPED' || !d.stopReason;
  }
}

/** Status changes, read out politely; on the launcher with what to do next. */
function tell(d: Desktop, onLauncher: boolean): void {
  if (!model) return;
  const index = model.steps.indexOf(d.status);
  if (d.status === 'RUNNING') announce(onLauncher ? `${d.name} is running. Use Open to see it.` : `${d.name} is running.`);
  else if (d.status === 'FAILED') announce(`${d.name} failed: ${d.errorMessage ?? 'no reason given'}`);
  else if (d.status === 'DELETED') announce(`${d.name} was terminated.`);
  else announce(`${d.name}: ${model.statusText[d.status]}${index >= 0 ? `, step ${index + 1} of ${model.steps.length}` : ''}.`);
}

/** Shows the desktop as it is now; false (and nothing changes) when the page already shows a later state of it. */
function update(d: Desktop): boolean {
  const shown = [...holders(d.id)];
  // An action's answer can arrive after the live stream told of what followed it (a restore already RUNNING again).
  if (shown.some((el) => (el.dataset.updatedAt ?? '') > d.updatedAt)) return false;
  // What the page showed before: a first snapshot of an unchanged desktop announces nothing.
  const before = shown[0]?.dataset.status;
  const onLauncher = shown.some(isCard);
  for (const el of shown) {
    el.dataset.updatedAt = d.updatedAt;
    if (isCard(el) && d.status === 'DELETED') removeCard(el);
    else apply(el, d);
  }
  if (before !== undefined && before !== d.status) tell(d, onLauncher);
  if (viewerDesktop() === d.id && d.status !== 'RUNNING') {
    closeViewer(false);
    announce(`${d.name} is no longer running; the desktop view was closed.`);
  }
  if (onLauncher) checkIdle(d);
  else dropWarning(d.id);
  if (d.status === 'DELETED') unwatch(d.id);
  return true;
}

function removeCard(card: HTMLElement): void {
  const hadFocus = card.contains(document.activeElement);
  card.remove();
  const empty = document.querySelector<HTMLElement>('[data-empty]');
  if (empty) empty.hidden = (list()?.children.length ?? 0) > 0;
  if (hadFocus) byId('desktops-title')?.focus();
}

function addCard(d: Desktop, templateName: string): HTMLElement | null {
  const template = byId<HTMLTemplateElement>('desktop-template');
  const target = list();
  const first = template?.content.firstElementChild;
  if (!first || !target) return null;
  const card = first.cloneNode(true) as HTMLElement;
  const headingId = `desktop-${d.id}-name`;
  card.dataset.desktopId = d.id;
  card.setAttribute('aria-labelledby', headingId);
  const heading = field(card, 'name');
  if (heading) heading.id = headingId;
  const tpl = field(card, 'template');
  if (tpl) tpl.textContent = templateName;
  const plan = field(card, 'plan');
  if (plan && model) plan.textContent = model.planText[d.plan];
  card.dataset.since = d.createdAt;
  for (const [page, label] of [
    ['share', 'Share'],
    ['snapshots', 'Snapshots of'],
  ] as const) {
    const link = field<HTMLAnchorElement>(card, page);
    if (!link) continue;
    link.href = `/desktops/${encodeURIComponent(d.id)}/${page}`;
    link.setAttribute('aria-label', `${label} ${d.name}`);
  }
  target.prepend(card);
  const empty = document.querySelector<HTMLElement>('[data-empty]');
  if (empty) empty.hidden = true;
  update(d);
  return card;
}

// ---- live status ----

const sockets = new Map<string, { ws: WebSocket; failures: number }>();
const unwatched = new Set<string>();

function watch(id: string, failures = 0): void {
  if (sockets.has(id) || unwatched.has(id)) return;
  const url = new URL(`/api/v1/desktops/${encodeURIComponent(id)}/live`, location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(url);
  const entry = { ws, failures };
  sockets.set(id, entry);
  ws.addEventListener('message', (ev) => {
    entry.failures = 0;
    onLive(JSON.parse(String(ev.data)) as LiveMessage);
  });
  ws.addEventListener('close', () => {
    if (sockets.get(id) !== entry) return;
    sockets.delete(id);
    if (unwatched.has(id) || holders(id).length === 0) return;
    // Back off on repeated failures (a restarting edge, an ended session): 1 s, 2 s, … 30 s.
    const next = entry.failures + 1;
    if (next === 5) showProblem(new Error('live'), `Live status of ${nameOf(id)}`);
    window.setTimeout(() => watch(id, next), Math.min(30_000, 1000 * 2 ** entry.failures));
  });
}

function unwatch(id: string): void {
  unwatched.add(id);
  sockets.get(id)?.ws.close(1000, 'done');
  sockets.delete(id);
}

function watchAll(): void {
  if (!model) return;
  for (const el of document.querySelectorAll<HTMLElement>('[data-desktop-id]')) {
    const id = el.dataset.desktopId;
    if (id && el.dataset.status !== 'DELETED') watch(id);
  }
}

function onLive(m: LiveMessage): void {
  if (m.type === 'transition') {
    const busyNow = model?.busy.includes(m.transition.to) ?? false;
    const wasSettled = m.transition.from === null || !(model?.busy.includes(m.transition.from) ?? false);
    if (busyNow && wasSettled) for (const el of holders(m.desktop.id)) el.dataset.since = m.transition.at;
  }
  update(m.desktop);
  if (m.type === 'warning') showWarning(m.desktop, m.warning, m.at);
  snapshotNews(m);
}

// ---- warnings ----

const warnings = new Map<string, { el: HTMLElement; kind: WarningKind; at: number }>();

const WHY: Record<WarningKind, (d: Desktop, at: string) => string> = {
  idle: () => 'Nobody has used it for a while, so it will be stopped to free its resources. Your files stay on it.',
  session_limit: (_d, at) => `It reaches its session limit at ${localTime(at)}.`,
  expiry: (_d, at) => `It expires at ${localTime(at)} and will then be deleted.`,
};

function showWarning(d: Desktop, kind: WarningKind, atIso: string): void {
  const at = Date.parse(atIso);
  const current = warnings.get(d.id);
  if (current && current.kind === kind && current.at === at) return;
  if (current) current.el.remove();
  const template = byId<HTMLTemplateElement>('warning-template');
  const region = byId('warnings');
  const first = template?.content.firstElementChild;
  if (!first || !region || !list()?.querySelector(`[data-desktop-id="${CSS.escape(d.id)}"]`)) return;
  const el = first.cloneNode(true) as HTMLElement;
  el.dataset.warningFor = d.id;
  el.dataset.kind = kind;
  const name = field(el, 'name');
  if (name) name.textContent = d.name;
  const verb = field(el, 'verb');
  if (verb) verb.textContent = kind === 'expiry' ? 'be deleted' : 'stop';
  const why = field(el, 'why');
  if (why) why.textContent = WHY[kind](d, atIso);
  const countdown = field(el, 'countdown');
  if (countdown) {
    countdown.dataset.until = String(at);
    countdown.textContent = clock(at - Date.now());
  }
  const button = el.querySelector<HTMLButtonElement>('[data-action="keepalive"]');
  if (button) {
    // Only idleness can be answered; a session limit or an expiry cannot be kept alive.
    button.hidden = kind !== 'idle';
    button.setAttribute('aria-label', `I’m still here: keep ${d.name} running`);
  }
  region.append(el);
  warnings.set(d.id, { el, kind, at });
}

function dropWarning(id: string): void {
  warnings.get(id)?.el.remove();
  warnings.delete(id);
}

/** Shows the idle warning when it is due (after a reload too), drops it when the deadline moved or the desktop stopped. */
function checkIdle(d: Desktop): void {
  const current = warnings.get(d.id);
  if (d.status !== 'RUNNING') {
    if (current) dropWarning(d.id);
    return;
  }
  if (current?.kind === 'idle' && d.idleStopAt && Date.parse(d.idleStopAt) !== current.at) dropWarning(d.id);
  if (!model || !d.idleStopAt || warnings.has(d.id)) return;
  const span = d.idleTimeoutMinutes * 60_000;
  const due = Date.parse(d.idleStopAt) - (span < model.warningLeadMs ? span / 2 : model.warningLeadMs);
  if (Date.now() >= due) showWarning(d, 'idle', d.idleStopAt);
}

async function keepalive(button: HTMLButtonElement): Promise<void> {
  const id = button.closest<HTMLElement>('[data-warning-for]')?.dataset.warningFor;
  if (!id) return;
  button.disabled = true;
  try {
    const d = await api<Desktop>('POST', `/api/v1/desktops/${encodeURIComponent(id)}/keepalive`, {});
    dropWarning(id);
    update(d);
    document.querySelector<HTMLElement>(`#desktop-list [data-desktop-id="${CSS.escape(id)}"] [data-field="name"]`)?.focus();
    announce(`Thanks. ${d.name} keeps running${d.idleStopAt ? `; it stops at ${localTime(d.idleStopAt)} if nobody uses it` : ''}.`);
  } catch (err) {
    button.disabled = false;
    showProblem(err, `Keeping ${nameOf(id)} running`);
  }
}

// ---- the desktop view ----

const viewer = () => byId('viewer');
const viewerDesktop = () => viewer()?.dataset.desktopId ?? null;

async function connectUrl(id: string): Promise<string> {
  return (await api<{ connectionUrl: string }>('GET', `/api/v1/desktops/${encodeURIComponent(id)}/connect`)).connectionUrl;
}

async function openEmbedded(id: string): Promise<void> {
  const section = viewer();
  const frame = byId<HTMLIFrameElement>('desktop-frame');
  const title = byId('viewer-title');
  if (!section || !frame) return;
  const name = nameOf(id);
  const url = await connectUrl(id);
  section.dataset.desktopId = id;
  frame.title = `Remote desktop: ${name}`;
  frame.src = url;
  if (title) title.textContent = `Desktop view: ${name}`;
  section.hidden = false;
  title?.focus();
  announce(`${name} is open in the desktop view below this heading.`);
}

/** The link works once: fetch it first, then send a window opened on the click (so no popup blocker stops it) there. */
async function openInTab(id: string): Promise<void> {
  const tab = window.open('about:blank', '_blank');
  try {
    const url = await connectUrl(id);
    if (tab) {
      tab.opener = null;
      tab.location.href = url;
    } else {
      location.assign(url);
    }
  } catch (err) {
    tab?.close();
    throw err;
  }
}

function closeViewer(restoreFocus = true): void {
  const section = viewer();
  const frame = byId<HTMLIFrameElement>('desktop-frame');
  if (!section || section.hidden) return;
  const id = section.dataset.desktopId;
  if (frame) frame.src = 'about:blank';
  section.hidden = true;
  delete section.dataset.desktopId;
  if (document.fullscreenElement) void document.exitFullscreen();
  if (restoreFocus && id) {
    document.querySelector<HTMLElement>(`#desktop-list [data-desktop-id="${CSS.escape(id)}"] [data-action="open"]`)?.focus();
  }
}

/** The whole view goes full screen, its bar included, so "Exit full screen" stays on screen (Escape works too). */
function toggleFullscreen(): void {
  const section = viewer();
  if (!section) return;
  if (document.fullscreenElement) void document.exitFullscreen();
  else void section.requestFullscreen().catch((err: unknown) => showProblem(err, 'Full screen'));
}

document.addEventListener('fullscreenchange', () => {
  const b = document.querySelector<HTMLButtonElement>('[data-action="fullscreen"]');
  if (b) b.textContent = document.fullscreenElement ? 'Exit full screen' : 'Full screen';
});

// ---- page refresh (admin tables after an action) ----

/** Fetches this page's <main> again and swaps it in, keeping the alerts and the focus on the same control where it still exists. */
async function refreshMain(): Promise<void> {
  const main = byId('main');
  const alerts = byId('alerts');
  if (!main || !alerts) return;
  const res = await fetch(location.href, { headers: { 'X-Fragment': 'main' }, credentials: 'same-origin' });
  if (!res.ok) throw new Refusal(res.status, 'REFRESH', await res.text());
  const active = document.activeElement instanceof HTMLElement && main.contains(document.activeElement) ? document.activeElement : null;
  const key = active ? focusKey(active) : null;
  main.innerHTML = await res.text();
  main.prepend(alerts);
  localizeTimes(main);
  if (active) {
    const again = key ? main.querySelector<HTMLElement>(key) : null;
    const heading = main.querySelector<HTMLElement>('h1');
    if (again) again.focus();
    else if (heading) {
      heading.tabIndex = -1;
      heading.focus();
    }
  }
  watchAll();
}

function focusKey(el: HTMLElement): string | null {
  if (el.id) return `#${CSS.escape(el.id)}`;
  const action = el.dataset.action;
  const row = el.closest<HTMLElement>('[data-desktop-id],[data-template-id]');
  if (!action || !row) return null;
  const attr = row.dataset.desktopId ? 'data-desktop-id' : 'data-template-id';
  const value = row.dataset.desktopId ?? row.dataset.templateId ?? '';
  return `[${attr}="${CSS.escape(value)}"] [data-action]:not([hidden])`;
}

/** Reads this page again and swaps in only the parts marked data-refresh, so a half-filled form keeps what was typed. */
async function refreshParts(): Promise<void> {
  const res = await fetch(location.href, { headers: { 'X-Fragment': 'main' }, credentials: 'same-origin' });
  if (!res.ok) throw new Refusal(res.status, 'REFRESH', await res.text());
  const fresh = document.createElement('template');
  fresh.innerHTML = await res.text();
  for (const part of document.querySelectorAll<HTMLElement>('[data-refresh]')) {
    const next = fresh.content.querySelector<HTMLElement>(`[data-refresh="${CSS.escape(part.dataset.refresh ?? '')}"]`);
    if (!next) continue;
    const active = document.activeElement instanceof HTMLElement && part.contains(document.activeElement) ? document.activeElement : null;
    part.replaceWith(next);
    localizeTimes(next);
    // The same control if it is still there (a row's button), else the part's heading (its row is gone).
    if (active) ((active.id ? byId(active.id) : null) ?? next.querySelector<HTMLElement>('[tabindex="-1"]'))?.focus();
  }
}

// ---- snapshots (a desktop's snapshots page) ----

const snapshotPanel = (id: string) => document.querySelector<HTMLElement>(`[data-snapshots="${CSS.escape(id)}"]`);

function snapshotMessage(d: Desktop): void {
  const panel = snapshotPanel(d.id);
  const message = panel ? field(panel, 'snapshot-message') : null;
  if (!message) return;
  message.textContent = d.statusMessage ?? '';
  message.hidden = !d.statusMessage;
}

/** The live stream tells a snapshot's outcome (a progress message) and a restore's end (a settled status): the list is read again. */
function snapshotNews(m: LiveMessage): void {
  if (!snapshotPanel(m.desktop.id)) return;
  snapshotMessage(m.desktop);
  const step = m.type === 'progress' && (m.step === 'snapshot' || m.step === 'delete_snapshot');
  if (step) announce(m.message);
  const settled = m.type === 'transition' && !(model?.busy.includes(m.desktop.status) ?? true);
  if (step || settled) refreshParts().catch((err: unknown) => showProblem(err, 'Reading the snapshots again'));
}

async function takeSnapshot(form: HTMLFormElement, submit: HTMLButtonElement | null): Promise<void> {
  const id = form.closest<HTMLElement>('[data-desktop-id]')?.dataset.desktopId;
  if (!id) return;
  const data = new FormData(form);
  const name = String(data.get('name') ?? '').trim();
  const description = String(data.get('description') ?? '').trim();
  const body = { withRam: data.get('withRam') === 'yes', ...(name ? { name } : {}), ...(description ? { description } : {}) };
  const work = api<{ snapshot: { name: string }; desktop: Desktop }>('POST', `/api/v1/desktops/${encodeURIComponent(id)}/snapshots`, body);
  const taken = submit ? await busy(submit, work) : await work;
  form.reset();
  // Only if the live stream has not told the outcome already.
  if (!update(taken.desktop)) return;
  snapshotMessage(taken.desktop);
  announce(`Taking the snapshot ${taken.snapshot.name}. It is listed below once Proxmox is done.`);
}

async function snapshotAction(button: HTMLButtonElement, id: string, action: 'restore' | 'fork' | 'delete'): Promise<void> {
  const snap = button.closest<HTMLElement>('[data-snapshot]')?.dataset.snapshot;
  if (!snap || !id) return;
  const path = `/api/v1/desktops/${encodeURIComponent(id)}/snapshots/${encodeURIComponent(snap)}`;
  if (action === 'fork') {
    const d = await busy(button, api<Desktop>('POST', '/api/v1/desktops', { forkOf: { desktopId: id, snapshot: snap } }));
    // The new desktop is shown where desktops are: the launcher opens at its card.
    location.assign(`/#desktop-${encodeURIComponent(d.id)}-name`);
    return;
  }
  const name = nameOf(id);
  const ok = await confirmWith(
    action === 'restore'
      ? {
          title: `Restore ${name} to ${snap}?`,
          text: `Everything that changed on the desktop since ${snap} was taken is lost. It restarts (whoever is connected is disconnected) and is running again in a moment.`,
          confirm: 'Restore',
        }
      : {
          title: `Delete the snapshot ${snap}?`,
          text: `The desktop itself does not change, but it can no longer be restored to ${snap} or forked from it. This cannot be undone.`,
          confirm: 'Delete',
        },
    button,
  );
  if (!ok) return;
  if (action === 'restore') {
    if (!update(await busy(button, api<Desktop>('POST', `${path}/restore`)))) return;
    announce(`Restoring ${name} to ${snap}: it restarts, and is running again in a moment.`);
    return;
  }
  const { desktop } = await busy(button, api<{ desktop: Desktop }>('DELETE', path));
  if (!update(desktop)) return;
  snapshotMessage(desktop);
  announce(`Deleting the snapshot ${snap}.`);
}

// ---- actions ----

/** Marks the button busy while its request is out, so a double click sends one request. */
async function busy<T>(button: HTMLButtonElement, work: Promise<T>): Promise<T> {
  button.setAttribute('aria-busy', 'true');
  try {
    return await work;
  } finally {
    button.removeAttribute('aria-busy');
  }
}

async function launch(button: HTMLButtonElement): Promise<void> {
  const templateId = button.dataset.templateId;
  const templateName = button.dataset.templateName ?? 'Desktop';
  if (!templateId) return;
  const d = await busy(button, api<Desktop>('POST', '/api/v1/desktops', { templateId, name: templateName }));
  const card = addCard(d, templateName);
  watch(d.id);
  announce(`Launching ${d.name}. Progress is shown under Your desktops.`);
  card?.scrollIntoView({ block: 'nearest' });
}

async function desktopAction(button: HTMLButtonElement, id: string, action: 'start' | 'stop' | 'terminate'): Promise<void> {
  const name = nameOf(id);
  if (action === 'terminate') {
    const ok = await confirmWith(
      {
        title: `Terminate ${name}?`,
        text: 'The desktop and everything stored on it will be deleted. This cannot be undone.',
        confirm: 'Terminate',
      },
      button,
    );
    if (!ok) return;
  }
  const path = `/api/v1/desktops/${encodeURIComponent(id)}`;
  const d = await busy(button, action === 'terminate' ? api<Desktop>('DELETE', path) : api<Desktop>('POST', `${path}/${action}`));
  update(d);
  announce(`${action === 'terminate' ? 'Terminating' : action === 'start' ? 'Starting' : 'Stopping'} ${d.name}.`);
}

async function templateAction(button: HTMLButtonElement, action: 'retire-template' | 'restore-template'): Promise<void> {
  const row = button.closest<HTMLElement>('[data-template-id]');
  const id = row?.dataset.templateId;
  if (!row || !id) return;
  const path = `/api/v1/admin/templates/${encodeURIComponent(id)}`;
  const input = row.querySelector('script[data-template-input]')?.textContent ?? '{}';
  await busy(button, action === 'retire-template' ? api('DELETE', path) : api('PUT', path, JSON.parse(input) as unknown));
  await refreshMain();
  announce(`Template ${id} ${action === 'retire-template' ? 'retired: nobody can launch it now' : 'restored'}.`);
}

async function saveQuota(form: HTMLFormElement): Promise<void> {
  const userId = form.dataset.userId;
  const input = form.querySelector<HTMLInputElement>('input[name="maxDesktops"]');
  if (!userId || !input) return;
  const q = await api<{ maxDesktops: number }>('PUT', `/api/v1/admin/users/${encodeURIComponent(userId)}/quota`, {
    maxDesktops: Number(input.value),
  });
  await refreshMain();
  announce(`${userId} may now have ${q.maxDesktops} active desktops.`);
}

/** A new share link: its URL is in the answer only, so it is shown here, once. */
async function makeShareLink(form: HTMLFormElement): Promise<void> {
  const id = form.dataset.desktopId;
  if (!id) return;
  const data = new FormData(form);
  const link = await api<{ url: string; mode: string; expiresAt: string }>(
    'POST',
    `/api/v1/desktops/${encodeURIComponent(id)}/share-links`,
    {
      mode: data.get('mode') === 'control' ? 'control' : 'view',
      ttlSeconds: Number(data.get('ttlSeconds')),
      maxUses: Number(data.get('maxUses')),
    },
  );
  await refreshMain();
  const box = byId('new-share-link');
  const url = byId<HTMLInputElement>('new-share-url');
  if (box && url) {
    url.value = link.url;
    box.hidden = false;
    url.focus();
    url.select();
  }
  announce(`Share link made (${link.mode === 'view' ? 'watch only' : 'full control'}). Copy it now: it is shown only once.`);
}

async function revokeShareLink(button: HTMLButtonElement): Promise<void> {
  const row = button.closest<HTMLElement>('[data-share-link-id]');
  const linkId = row?.dataset.shareLinkId;
  const id = row?.dataset.desktopId;
  if (!linkId || !id) return;
  const { guestsEnded } = await busy(
    button,
    api<{ guestsEnded: number | null }>('DELETE', `/api/v1/desktops/${encodeURIComponent(id)}/share-links/${encodeURIComponent(linkId)}`),
  );
  await refreshMain();
  const guests = guestsEnded === 1 ? '1 guest who came in through it was' : `${guestsEnded} guests who came in through it were`;
  announce(
    guestsEnded === null
      ? 'Share link revoked: it no longer opens the desktop. Its guests could not be disconnected now (the site is unreachable): they stay until you disconnect.'
      : `Share link revoked: it no longer opens the desktop${guestsEnded > 0 ? `, and ${guests} disconnected` : ''}.`,
  );
}

const WHAT: Record<string, string> = {
  launch: 'Launching',
  start: 'Starting',
  stop: 'Stopping',
  terminate: 'Terminating',
  open: 'Opening',
  'open-tab': 'Opening',
  'viewer-tab': 'Opening',
  'retire-template': 'Retiring the template',
  'restore-template': 'Restoring the template',
  'revoke-share': 'Revoking the link',
  'restore-snapshot': 'Restoring',
  'fork-snapshot': 'Forking',
  'delete-snapshot': 'Deleting a snapshot of',
};

document.addEventListener('click', (ev) => {
  const target = ev.target instanceof Element ? ev.target : null;
  const button = target?.closest<HTMLButtonElement>('button[data-action]');
  if (!button || button.form?.method === 'dialog') return;
  const action = button.dataset.action ?? '';
  const id = button.closest<HTMLElement>('[data-desktop-id]')?.dataset.desktopId ?? '';
  const run = async (): Promise<void> => {
    switch (action) {
      case 'launch':
        return launch(button);
      case 'start':
      case 'stop':
      case 'terminate':
        return desktopAction(button, id, action);
      case 'open':
        return busy(button, openEmbedded(id));
      case 'open-tab':
        return busy(button, openInTab(id));
      case 'viewer-tab': {
        const shown = viewerDesktop();
        return shown ? busy(button, openInTab(shown)) : undefined;
      }
      case 'close-viewer':
        return closeViewer();
      case 'fullscreen':
        return toggleFullscreen();
      case 'keepalive':
        return keepalive(button);
      case 'retire-template':
      case 'restore-template':
        return templateAction(button, action);
      case 'revoke-share':
        return revokeShareLink(button);
      case 'restore-snapshot':
      case 'fork-snapshot':
      case 'delete-snapshot':
        return snapshotAction(button, id, action.slice(0, -'-snapshot'.length) as 'restore' | 'fork' | 'delete');
      case 'dismiss': {
        const box = button.closest('.notice');
        box?.remove();
        byId('main')?.focus();
        return;
      }
    }
  };
  // A second click while the first one's request is on its way does nothing (see busy()).
  if (button.getAttribute('aria-busy') === 'true') return;
  run().catch((err: unknown) => showProblem(err, `${WHAT[action] ?? 'That'} ${id ? nameOf(id) : ''}`.trim()));
});

document.addEventListener('submit', (ev) => {
  const form = ev.target instanceof HTMLFormElement ? ev.target : null;
  if (form?.dataset.form === 'snapshot') {
    ev.preventDefault();
    const submit = form.querySelector<HTMLButtonElement>('button[type="submit"]');
    if (submit?.getAttribute('aria-busy') === 'true') return;
    takeSnapshot(form, submit).catch((err: unknown) => showProblem(err, 'Taking the snapshot'));
    return;
  }
  if (form?.dataset.form === 'share-link') {
    ev.preventDefault();
    makeShareLink(form).catch((err: unknown) => showProblem(err, 'Making the share link'));
    return;
  }
  if (form?.dataset.form !== 'quota') return;
  ev.preventDefault();
  saveQuota(form).catch((err: unknown) => showProblem(err, 'Saving the limit'));
});

// ---- every second: time elapsed and warning countdowns ----

function tick(): void {
  const now = Date.now();
  for (const el of document.querySelectorAll<HTMLElement>('#desktop-list [data-since]')) {
    const elapsed = field(el, 'elapsed');
    if (elapsed) elapsed.textContent = clock(now - Date.parse(el.dataset.since ?? ''));
  }
  for (const el of document.querySelectorAll<HTMLElement>('[data-until]')) {
    const left = Number(el.dataset.until) - now;
    el.textContent = left > 0 ? clock(left) : 'a moment';
  }
}

localizeTimes();
watchAll();
// The launcher opened at a desktop's card (after a fork) starts with the focus on its name.
if (location.hash.startsWith('#desktop-')) byId(decodeURIComponent(location.hash.slice(1)))?.focus();
tick();
window.setInterval(tick, 1000);
