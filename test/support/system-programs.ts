/**
 * The system programs a few node tests drive, found once per run by the node project's global
 * setup (test/support/node-global-setup.ts) and handed to the tests with provide()/inject():
 *
 *  - chromium, for the dashboard's browser tests: CHROMIUM_PATH, else Debian's /usr/bin/chromium,
 *    else the build that the npm package @sparticuz/chromium ships (a dev dependency, so a machine
 *    with only Node and npm still runs the browser tests);
 *  - coturn's turnserver and turnutils_uclient, for the TURN credential test: no npm package ships
 *    them, so without Debian's coturn that test is skipped.
 *  - systemd-analyze, which verifies the bridge's systemd unit as systemd reads it (Debian's systemd).
 *
 * A program that is missing skips its tests with one line saying what and how to get it, except
 * when CI is set: there every test must run, so a missing program fails the run.
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface SystemPrograms {
  /** Empty when no chromium can be found or started. */
  chromium: string;
  /** Empty when coturn is not installed. */
  turnserver: string;
  turnutilsUclient: string;
  /** Empty when systemd is not installed. */
  systemdAnalyze: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    systemPrograms: SystemPrograms;
  }
}

/** An executable on PATH, or in /usr/bin or /usr/sbin (coturn's turnserver is in /usr/bin, but PATH may be trimmed). */
export function findOnPath(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/sbin'];
  return dirs.map((d) => join(d, name)).find((p) => p.startsWith('/') && existsSync(p));
}

async function findChromium(): Promise<{ path?: string; why?: string }> {
  if (process.env.CHROMIUM_PATH) return { path: process.env.CHROMIUM_PATH };
  const debian = findOnPath('chromium');
  if (debian) return { path: debian };
  try {
    // Decompresses the packaged build into the temp directory once; later runs reuse it.
    const { default: packaged } = await import('@sparticuz/chromium');
    return { path: await packaged.executablePath() };
  } catch (err) {
    return { why: `@sparticuz/chromium could not unpack its build (${err instanceof Error ? err.message : String(err)})` };
  }
}

/** Starts the browser once, so a build missing a shared library is found here and not as a failed suite. */
async function startsUp(executablePath: string): Promise<string | undefined> {
  const { chromium } = await import('playwright-core');
  try {
    const browser = await chromium.launch({ executablePath, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    await browser.close();
    return undefined;
  } catch (err) {
    return (err instanceof Error ? err.message : String(err)).split('\n')[0];
  }
}

export interface Skip {
  tests: string;
  needs: string;
  how: string;
}

/** Finds every program; says which tests will be skipped for want of which. */
export async function findSystemPrograms(): Promise<{ programs: SystemPrograms; skips: Skip[] }> {
  const skips: Skip[] = [];
  const found = await findChromium();
  const failure = found.path ? await startsUp(found.path) : found.why;
  if (failure) {
    skips.push({
      tests: 'test/browser/dashboard.test.ts',
      needs: `chromium (${failure})`,
      how: '`sudo apt-get install -y chromium`, or CHROMIUM_PATH=/path/to/chromium',
    });
  }
  const turnserver = findOnPath('turnserver') ?? '';
  const turnutilsUclient = findOnPath('turnutils_uclient') ?? '';
  if (!turnserver || !turnutilsUclient) {
    skips.push({
      tests: 'test/e2e/turn.e2e.test.ts',
      needs: "coturn's turnserver and turnutils_uclient",
      how: '`sudo apt-get install -y coturn`',
    });
  }
  const systemdAnalyze = findOnPath('systemd-analyze') ?? '';
  if (!systemdAnalyze) {
    skips.push({
      tests: 'test/deploy/bridge-packaging.test.ts (systemd-analyze verify)',
      needs: 'systemd-analyze',
      how: '`sudo apt-get install -y systemd`',
    });
  }
  return { programs: { chromium: failure ? '' : (found.path ?? ''), turnserver, turnutilsUclient, systemdAnalyze }, skips };
}

export const describeSkip = (s: Skip) => `skipped: ${s.tests}: needs ${s.needs}; install with ${s.how} (CI=1 makes this an error)`;
