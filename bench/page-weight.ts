/**
 * The dashboard's first screen by weight, for `npm run bench`: the launcher's HTML as a
 * signed-in user gets it (the templates `npm run dev` seeds, one desktop), plus the one
 * script and one stylesheet it loads, compressed as a browser receives them. gzip (level 6)
 * is the headline, being the larger; Brotli (quality 5, near what Cloudflare applies to
 * dynamic text) beside it. Target: under 100 KB. Beside it, the <cloud-desktop> element a
 * streaming app's page loads (/embed/cloud-desktop.js), which should stay a few KB.
 */
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { nodePool } from '../scripts/lib/database';
import { seedTemplates } from '../scripts/lib/seed-templates';
import type { Stack } from '../scripts/lib/stack';
import { cookieNames, sealSession } from '../src/auth/session-token';
import { setTimeout as sleep } from 'node:timers/promises';

const TARGET_BYTES = 100 * 1024;

export async function measurePageWeight(stack: Stack) {
  const pool = nodePool(stack.db);
  try {
    await seedTemplates(pool);
  } finally {
    await pool.end();
  }
  const user = 'bench-page-weight';
  const bearer = await stack.token(user);
  const created = await fetch(`${stack.edgeUrl}/api/v1/desktops`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ templateId: 'ubuntu-desktop' }),
  });
  if (created.status !== 202) throw new Error(`page weight: create answered ${created.status}`);

  // A session as the dashboard's sign-in makes one (the stack's edge has no SESSION_SECRET, so JWT_SECRET keys it).
  const session = await sealSession(stack.jwtSecret, { sub: user, roles: [], name: user, method: 'dev' }, 600);
  const cookie = `${cookieNames(false).session}=${session}`;
  let html = '';
  // The desktop list is read from Postgres, which the desktop's write-through reaches a moment after the 202.
  for (let i = 0; i < 50 && !html.includes('data-desktop-id="dk'); i++) {
    if (i > 0) await sleep(100);
    const res = await fetch(`${stack.edgeUrl}/`, { headers: { cookie } });
    if (res.status !== 200) throw new Error(`page weight: the launcher answered ${res.status}`);
    html = await res.text();
  }
  const js = /<script type="module" src="([^"]+)"/.exec(html)?.[1];
  const css = /<link rel="stylesheet" href="([^"]+)"/.exec(html)?.[1];
  if (!js || !css) throw new Error('page weight: the launcher names no script or stylesheet');
  const [jsBody, cssBody] = await Promise.all([js, css].map(async (path) => (await fetch(`${stack.edgeUrl}${path}`)).text()));

  const parts = { html, js: jsBody ?? '', css: cssBody ?? '' };
  const size = (f: (b: Buffer) => Buffer) =>
    Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, f(Buffer.from(v)).length])) as Record<keyof typeof parts, number>;
  const raw = size((b) => b);
  const gzip = size((b) => gzipSync(b, { level: 6 }));
  const brotli = size((b) => brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } }));
  const total = (s: Record<string, number>) => Object.values(s).reduce((a, b) => a + b, 0);
  const element = Buffer.from(await (await fetch(`${stack.edgeUrl}/embed/cloud-desktop.js`)).text());
  return {
    screen: 'launcher, signed in: 4 templates, 1 desktop',
    requests: 3,
    rawBytes: { ...raw, total: total(raw) },
    gzipBytes: { ...gzip, total: total(gzip) },
    brotliBytes: { ...brotli, total: total(brotli) },
    targetBytes: TARGET_BYTES,
    underTarget: total(gzip) < TARGET_BYTES,
    embedElement: {
      script: '/embed/cloud-desktop.js',
      rawBytes: element.length,
      gzipBytes: gzipSync(element, { level: 6 }).length,
      brotliBytes: brotliCompressSync(element, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } }).length,
    },
  };
}
