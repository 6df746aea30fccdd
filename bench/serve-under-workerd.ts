/**
 * Serves a Worker under workerd through Miniflare, without wrangler dev's proxy (which
 * caps a hello-world Worker at a few hundred requests/s on these machines).
 *
 *   node --import tsx bench/serve-under-workerd.ts edge  <bundle dir>   (the built edge, wrangler.toml bindings)
 *   node --import tsx bench/serve-under-workerd.ts hello                (a bare hello-world Worker, the yardstick)
 *   node --import tsx bench/serve-under-workerd.ts one-rpc              (a Worker that only asks a Durable Object, as a status read must)
 *
 * PORT picks the port; EDGE_BINDINGS (JSON) overrides bindings; INSPECTOR_PORT opens the DevTools
 * inspector there (profiling). Prints "Ready on <url>".
 */
import { join } from 'node:path';
import { Miniflare, convertV4MiniflareOptions } from 'miniflare';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import { ROOT } from '../scripts/lib/local-config';

const [mode, bundleDir] = process.argv.slice(2);
const port = Number(process.env.PORT ?? 0);
const bindings = JSON.parse(process.env.EDGE_BINDINGS ?? '{}') as Record<string, string>;
const inspectorPort = process.env.INSPECTOR_PORT ? Number(process.env.INSPECTOR_PORT) : undefined;

function edgeWorker() {
  if (!bundleDir) throw new Error('usage: serve-under-workerd.ts edge <bundle dir>');
  // modulesRules describe unbundled sources; the bundle is one module.
  const { modulesRules: _rules, ...workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, 'wrangler.toml')).workerOptions;
  return {
    ...workerOptions,
    name: 'cdaas-edge',
    modules: true,
    // Module names must not climb out of the modules root (workerd fails to start otherwise).
    modulesRoot: bundleDir,
    scriptPath: join(bundleDir, 'index.js'),
    bindings: { ...(workerOptions.bindings as Record<string, unknown> | undefined), ...bindings },
  };
}

const helloWorker = {
  name: 'hello',
  modules: true,
  compatibilityDate: '2026-11-01',
  script: 'export default { fetch() { return new Response("hello world"); } };',
};

/**
 * The least a status read can cost: one RPC to the desktop's Durable Object (the single source of truth, DESIGN.md)
 * for the same fields GET /status answers, and nothing else: no routing, auth, limits or envelope.
 */
const oneRpcWorker = {
  name: 'one-rpc',
  modules: true,
  compatibilityDate: '2026-11-01',
  script: `
    import { DurableObject } from 'cloudflare:workers';
    export class Desktop extends DurableObject {
      status() {
        return { id: 'd1', userId: 'u1', siteId: 'local', createdBy: 'user:u1', status: 'RUNNING', statusMessage: null,
                 errorMessage: null, updatedAt: '2026-01-01T00:00:00.000Z' };
      }
    }
    export default { async fetch(req, env) { return Response.json(await env.DESKTOP.getByName('d1').status()); } };`,
  durableObjects: { DESKTOP: { className: 'Desktop', useSQLite: true } },
};

const workers = { hello: helloWorker, 'one-rpc': oneRpcWorker } as Record<string, unknown>;
const mf = new Miniflare(
  convertV4MiniflareOptions({
    host: '127.0.0.1',
    port,
    inspectorPort,
    workers: [workers[mode ?? ''] ?? edgeWorker()],
  } as Parameters<typeof convertV4MiniflareOptions>[0]),
);
const url = await mf.ready;
console.log(`Ready on ${url.origin}`);
const stop = async () => {
  await mf.dispose();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
