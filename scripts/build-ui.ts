/**
 * Builds the dashboard's script (src/ui/client/dashboard.ts, compiled by tsc with the DOM
 * types, so it is type-checked as it is built), its stylesheet, and the embeddable
 * <cloud-desktop> element (src/ui/client/cloud-desktop.ts) into
 * src/ui/generated/dashboard-assets.json, which the Worker imports and serves itself: no
 * bundler, no CDN, nothing to upload beside the Worker. test/browser/assets.test.ts fails
 * when the generated file is stale.
 *
 *   node --import tsx scripts/build-ui.ts           write it
 *   node --import tsx scripts/build-ui.ts --check   exit 1 when it is stale
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './lib/local-config';

export const ASSETS_FILE = join(ROOT, 'src/ui/generated/dashboard-assets.json');
const bin = (name: string) => join(ROOT, 'node_modules/.bin', name);
const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

/** The generated file's text, formatted as Biome would leave it. */
export function buildDashboardAssets(): string {
  const out = mkdtempSync(join(tmpdir(), 'cdaas-ui-'));
  try {
    const tsc = [
      '-p',
      'src/ui/client/tsconfig.json',
      '--noEmit',
      'false',
      '--outDir',
      out,
      '--rootDir',
      '.',
      '--allowImportingTsExtensions',
      'false',
      // Comments are for the sources: a third-party page loads the element on every visit.
      '--removeComments',
    ];
    try {
      execFileSync(bin('tsc'), tsc, { cwd: ROOT, stdio: 'pipe' });
    } catch (err) {
      const e = err as { stdout?: Buffer; stderr?: Buffer };
      throw new Error(`the dashboard script does not compile:\n${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`);
    }
    const js = readFileSync(join(out, 'src/ui/client/dashboard.js'), 'utf8');
    const css = readFileSync(join(ROOT, 'src/ui/client/dashboard.css'), 'utf8');
    const embedJs = readFileSync(join(out, 'src/ui/client/cloud-desktop.js'), 'utf8');
    const assets = {
      generatedBy: 'scripts/build-ui.ts',
      js,
      jsHash: hash(js),
      css,
      cssHash: hash(css),
      embedJs,
      embedJsHash: hash(embedJs),
    };
    const json = `${JSON.stringify(assets, null, 2)}\n`;
    return execFileSync(bin('biome'), ['format', `--stdin-file-path=${ASSETS_FILE}`], { cwd: ROOT, input: json, stdio: 'pipe' }).toString();
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const built = buildDashboardAssets();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(ASSETS_FILE, 'utf8');
    } catch {
      // missing counts as stale
    }
    if (current !== built) {
      console.error('src/ui/generated/dashboard-assets.json is stale: run node --import tsx scripts/build-ui.ts');
      process.exit(1);
    }
    console.log('dashboard assets are current');
  } else {
    writeFileSync(ASSETS_FILE, built);
    console.log(`wrote ${ASSETS_FILE}`);
  }
}
