// @ts-check
/**
 * The example app's page script: launches a desktop through the app's own backend and
 * shows it with <cloud-desktop>, whose events it logs. The element gets its desktop token
 * from this app's backend (token-endpoint), never a service token.
 */

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const EVENTS = ['progress', 'ready', 'idle-warning', 'limit-warning', 'keepalive', 'stopped', 'failed'];

/** @param {string} method @param {string} path @param {unknown} [body] */
async function call(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(answer.error ?? `The app answered ${res.status}`);
  return answer;
}

/** @param {boolean} busy */
function launching(busy) {
  for (const b of document.querySelectorAll('#templates button')) /** @type {HTMLButtonElement} */ (b).disabled = busy;
}

/** One line per event, with what its detail says. @param {CustomEvent} e */
function log(e) {
  const d = e.detail ?? {};
  const what = {
    progress: d.message ? `${d.statusText} (${d.message})` : d.statusText,
    ready: d.name,
    'idle-warning': `stops at ${d.at}`,
    'limit-warning': `${d.kind} at ${d.at}`,
    keepalive: 'kept running',
    stopped: `${d.status}${d.reason ? `: ${d.reason}` : ''}`,
    failed: `${d.code}: ${d.reason}`,
  }[e.type];
  const li = document.createElement('li');
  li.dataset.type = e.type;
  li.textContent = `${e.type}${what ? ` — ${what}` : ''}`;
  $('event-log').append(li);
}

/** @param {string} id */
function embed(id) {
  const el = document.createElement('cloud-desktop');
  el.setAttribute('desktop-id', id);
  el.setAttribute('token-endpoint', '/api/embed-token');
  for (const type of EVENTS) el.addEventListener(type, (e) => log(/** @type {CustomEvent} */ (e)));
  el.addEventListener('stopped', (e) => {
    if (/** @type {CustomEvent} */ (e).detail.status === 'DELETED') launching(false);
  });
  $('desktop-slot').replaceChildren(el);
  $('studio').hidden = false;
  $('end').dataset.desktopId = id;
  launching(true);
}

/** @param {HTMLButtonElement} button */
async function launch(button) {
  $('launch-problem').hidden = true;
  launching(true);
  try {
    const d = await call('POST', '/api/desktops', { templateId: button.dataset.templateId });
    embed(d.id);
  } catch (err) {
    launching(false);
    $('launch-problem').textContent = `${button.dataset.templateName} could not be launched: ${err instanceof Error ? err.message : err}`;
    $('launch-problem').hidden = false;
  }
}

async function start() {
  const [templates, desktops] = await Promise.all([call('GET', '/api/templates'), call('GET', '/api/desktops')]);
  for (const t of templates) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = `Launch ${t.name}`;
    b.dataset.templateId = t.id;
    b.dataset.templateName = t.name;
    b.addEventListener('click', () => void launch(b));
    const about = document.createElement('p');
    about.textContent = `${t.os} · ${t.description ?? ''}`;
    li.append(b, about);
    $('templates').append(li);
  }
  // Back on the page: the desktop the viewer already has.
  const active = desktops.find((/** @type {{status: string}} */ d) => d.status !== 'DELETED');
  if (active) embed(active.id);
}

$('end').addEventListener('click', async () => {
  const id = $('end').dataset.desktopId;
  if (id) await call('DELETE', `/api/desktops/${id}`).catch((err) => alert(err.message));
});

start().catch((err) => {
  $('launch-problem').textContent = `The app could not load: ${err.message}`;
  $('launch-problem').hidden = false;
});
