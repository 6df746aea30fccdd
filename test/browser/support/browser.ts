/**
 * Debian's chromium driven by playwright-core, and the checks every dashboard screen gets:
 * a screenshot at desktop (1280×800) and phone (390×844) width under test-results/dashboard,
 * axe-core with no serious or critical violation at either width, no sideways scrolling on
 * the phone, and no CSP refusal or script error in the console.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { expect, inject } from 'vitest';
import { ROOT } from '../../../scripts/lib/local-config';

export const SCREENSHOTS = join(ROOT, 'test-results', 'dashboard');
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** Whether this machine has a chromium the tests can drive (test/support/system-programs.ts). */
export const hasChromium = inject('systemPrograms').chromium !== '';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: inject('systemPrograms').chromium,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
  });
}

/** A fresh browser profile (its own cookies) whose pages report console errors to `problems`. */
export async function newProfile(browser: Browser): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: DESKTOP, reducedMotion: 'reduce' });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // A refused API call logs "Failed to load resource" (409 over quota is expected); anything else is a fault.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) problems.push(msg.text());
  });
  return { context, page, problems };
}

async function expectAccessible(page: Page, label: string): Promise<void> {
  // The embedded desktop is Guacamole's page (here its simulator), not ours to audit: in the
  // dashboard's view, and inside the <cloud-desktop> element of the embed example.
  const result = await new AxeBuilder({ page })
    .exclude('#desktop-frame')
    .exclude({ fromShadowDom: ['cloud-desktop', 'iframe'] })
    .analyze();
  const serious = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  expect(serious, `axe on ${label}`).toEqual([]);
}

/**
 * The screen as it is now, at both widths: screenshot, axe, and (on the phone) no content
 * wider than the screen. Leaves the page at desktop width.
 */
export async function checkScreen(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: join(SCREENSHOTS, `${name}-desktop.png`), fullPage: true });
  await expectAccessible(page, `${name} at desktop width`);
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: join(SCREENSHOTS, `${name}-phone.png`), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow, `${name}: wider than a 390 px phone by`).toBeLessThanOrEqual(0);
  await expectAccessible(page, `${name} at phone width`);
  await page.setViewportSize(DESKTOP);
}

export async function devSignIn(page: Page, edgeUrl: string, userId: string, role: 'user' | 'admin', next = '/'): Promise<void> {
  await page.goto(`${edgeUrl}/sign-in?next=${encodeURIComponent(next)}`);
  await page.getByLabel('User id').fill(userId);
  await page.getByRole('radio', { name: role === 'admin' ? 'Admin' : 'User', exact: true }).check();
  await page.getByRole('button', { name: 'Sign in (development)' }).click();
  await page.waitForURL((url) => url.pathname + url.search === next);
}

/**
 * Whether the page in the frame whose address starts with `origin` may use `feature`
 * (e.g. 'clipboard-write'): a desktop frame reaches Guacamole through the edge's connect
 * page, so its permissions must hold for that origin, not only the frame's first src.
 */
export async function frameAllows(page: Page, origin: string, feature: string): Promise<boolean | undefined> {
  const frame = page.frames().find((f) => f.url().startsWith(origin));
  return frame?.evaluate(
    (f) => (document as unknown as { featurePolicy?: { allowsFeature(f: string): boolean } }).featurePolicy?.allowsFeature(f),
    feature,
  );
}
