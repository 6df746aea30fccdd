/**
 * What the dashboard's browser tests cannot see: that the script and stylesheet the Worker
 * serves are the build of their sources, and that no deployable configuration turns the
 * development sign-in on.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/lib/local-config';
import { ASSETS_FILE, buildDashboardAssets } from '../../scripts/build-ui';

describe('the dashboard build', () => {
  it('serves the current build of src/ui/client (run scripts/build-ui.ts after changing it)', () => {
    expect(readFileSync(ASSETS_FILE, 'utf8') === buildDashboardAssets(), 'src/ui/generated/dashboard-assets.json is stale').toBe(true);
  });

  it('keeps the first screen’s script and stylesheet small', () => {
    const built = JSON.parse(readFileSync(ASSETS_FILE, 'utf8')) as { js: string; css: string };
    expect(built.js.length).toBeLessThan(60_000);
    expect(built.css.length).toBeLessThan(30_000);
  });
});

describe('the development sign-in flag', () => {
  it('is set nowhere in wrangler.toml, the configuration that gets deployed', () => {
    const toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
    const settings = toml.split('\n').filter((line) => /^\s*DEV_SIGN_IN\s*=/.test(line) || /"DEV_SIGN_IN"/.test(line));
    expect(settings).toEqual([]);
  });

  it('is passed on the command line by npm run dev only', () => {
    expect(readFileSync(join(ROOT, 'scripts/dev.ts'), 'utf8')).toMatch(/'--var',\s*'DEV_SIGN_IN:true'/);
  });
});
