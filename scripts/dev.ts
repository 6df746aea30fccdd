/**
 * `npm run dev`: the whole system on one machine with nothing else installed, as
 * separate processes that can each be stopped and restarted alone (each is its own
 * npm script: db, sim:proxmox, sim:guacamole, sim:kubernetes, edge, bridge):
 *
 *   edge API          http://127.0.0.1:8787   (wrangler dev)
 *   Postgres          embedded PGlite on :5488, Neon WebSocket relay on :5489
 *   Proxmox VE sim    https://127.0.0.1:8006/api2/json
 *   Guacamole sim     https://127.0.0.1:8080/guacamole (http:// too, for the browser on this machine)
 *   Kubernetes sim    https://127.0.0.1:6443 (bearer dev-token); sessions at http://desk-<id>.desk.localhost:6443/
 *
 * The simulators serve HTTPS with certificates of a local CA made on first start in .local/ca
 * (ca.pem), which .local/bridge.env points the bridge at; plain http still answers on loopback.
 *   on-prem bridge    dials out to the edge as site `local`
 *   embed example     http://127.0.0.1:8090   (a streaming app's page with <cloud-desktop>)
 *
 * If one process dies the others keep running; restart it with its own npm script.
 */
import { ensureDevCa } from '../simulators/shared/certificates';
import { startDohServer, systemResolver } from './lib/doh';
import { LOCAL, LOCAL_CA_DIR, ensureLocalConfig, kubernetesRouteTlsEnv, simulatorTlsEnv } from './lib/local-config';
import { type Managed, QUIET_WRANGLER, nodeTs, startProcess } from './lib/processes';
import { signToken } from './lib/tokens';
import { setTimeout as sleep } from 'node:timers/promises';

// The simulators' HTTPS: a CA of this checkout's own; the bridge trusts it through .local/bridge.env.
const ca = await ensureDevCa(LOCAL_CA_DIR);
const { jwtSecret } = ensureLocalConfig(ca.caFile);
const tlsEnv = simulatorTlsEnv(ca);
const external = process.env.DATABASE_URL;
const children: Managed[] = [];
const start = (name: string, spec: { command: string; args: string[] }, readyWhen: RegExp, env: Record<string, string> = {}) => {
  const p = startProcess({ name, ...spec, readyWhen, env, echo: true, readyTimeoutMs: 120_000 });
  children.push(p);
  void p.exited.then((code) =>
    console.log(`[dev] ${name} exited (${code}); the rest keeps running — restart it with: npm run ${SCRIPT[name]}`),
  );
  return p;
};
const SCRIPT: Record<string, string> = {
  db: 'db',
  proxmox: 'sim:proxmox',
  guacamole: 'sim:guacamole',
  kubernetes: 'sim:kubernetes',
  edge: 'edge',
  bridge: 'bridge',
  'embed-app': 'example:embed',
};

const db = start('db', nodeTs('scripts/local-db.ts'), /database ready/);
const proxmox = start('proxmox', nodeTs('simulators/proxmox/main.ts'), /listening/, tlsEnv);
const guacamole = start('guacamole', nodeTs('simulators/guacamole/main.ts'), /listening/, tlsEnv);
const kubernetes = start('kubernetes', nodeTs('simulators/kubernetes/main.ts'), /listening/, { ...tlsEnv, ...kubernetesRouteTlsEnv(ca) });
await Promise.all([db.ready, proxmox.ready, guacamole.ready, kubernetes.ready]);

const edgeArgs = ['dev', '--ip', '127.0.0.1', '--port', String(LOCAL.edgePort), '--show-interactive-dev-session=false'];
// The dashboard's development sign-in (pick any user and role) is turned on here, on the
// command line, and nowhere else: wrangler.toml, the configuration that gets deployed, never sets it.
edgeArgs.push('--var', 'DEV_SIGN_IN:true');
// The embed example app's page calls the API from its own origin.
edgeArgs.push('--var', `CORS_ORIGINS:http://127.0.0.1:${LOCAL.embedExamplePort}`);
// Webhook hosts are resolved before each delivery; the Worker asks the machine's resolver through this relay.
const doh = await startDohServer(systemResolver);
edgeArgs.push('--var', `WEBHOOK_DNS_RESOLVER:${doh.url}`);
if (external) edgeArgs.push('--var', `DATABASE_URL:${external}`);
const edge = start('edge', { command: 'wrangler', args: edgeArgs }, /Ready on/, QUIET_WRANGLER);
await edge.ready;
start('bridge', nodeTs('on-prem-bridge/src/main.ts', ['--env-file=.local/bridge.env']), /connected|hello/i);
start('embed-app', nodeTs('examples/embed-app/main.ts'), /listening/);

// Report when the site's bridge shows as connected.
const deadline = Date.now() + 60_000;
const admin = await signToken(jwtSecret, 'dev', { roles: ['admin'] });
for (;;) {
  try {
    const res = await fetch(`http://127.0.0.1:${LOCAL.edgePort}/api/v1/admin/health`, { headers: { authorization: `Bearer ${admin}` } });
    const body = (await res.json()) as { data?: { sites?: { id: string; bridge: string }[] } };
    if (body.data?.sites?.some((s) => s.bridge === 'connected')) break;
  } catch {
    // edge still starting
  }
  if (Date.now() > deadline) {
    console.log('[dev] the bridge has not connected within 60 s; see the [bridge] lines above');
    break;
  }
  await sleep(500);
}
console.log(`
[dev] ready: http://127.0.0.1:${LOCAL.edgePort}  (dashboard: /, health: /healthz and, for admins, /api/v1/admin/health, API docs: /api/v1/openapi.json)
[dev] embed example (a streaming app's page): http://127.0.0.1:${LOCAL.embedExamplePort}
[dev] a token:  TOKEN=$(npm run -s token -- alice)
[dev] create:   curl -s -X POST http://127.0.0.1:${LOCAL.edgePort}/api/v1/desktops -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"name":"My desktop","plan":"STANDARD"}'
`);

let stopping = false;
const shutdown = async () => {
  if (stopping) process.exit(1);
  stopping = true;
  await Promise.all(children.reverse().map((c) => c.stop()));
  process.exit(0);
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
