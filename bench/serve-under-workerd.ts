/**
 * Serves a Worker under workerd through Miniflare, without wrangler dev's proxy (which
 * caps a hello-world Worker at a few hundred requests/s on these machines).
 *
 *   node --import tsx bench/serve-under-workerd.ts edge  <bundle dir>   (the built edge, wrangler.toml bindings)
 *   node --import tsx bench/serve-under-workerd.ts hello                (a bare hello-world Worker, the yardstick)
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

const mf = new Miniflare(
  convertV4MiniflareOptions({
    host: '127.0.0.1',
    port,
    inspectorPort,
    workers: [mode === 'hello' ? helloWorker : edgeWorker()],
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
