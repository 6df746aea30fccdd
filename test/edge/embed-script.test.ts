/**
 * GET /embed/cloud-desktop.js: the <cloud-desktop> element as other sites load it. Any origin
 * may load it (as a module script, a CORS request), it is cacheable, and a pinned version
 * (cloud-desktop.<hash>.js) is immutable.
 */
import { describe, expect, it } from 'vitest';
import { EMBED, embedPath } from '../../src/ui/assets';
import { api } from './helpers';

describe('the embed script', { timeout: 30_000 }, () => {
  it('is served to any site, as JavaScript, cacheable for a few minutes, with an ETag', async () => {
    const res = await api('GET', embedPath(false), { headers: { origin: 'https://some-streaming-app.example' } });
    expect(res.status).toBe(200);
    expect(res.text).toBe(EMBED.body);
    expect(res.text).toContain("customElements.define('cloud-desktop'");
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    const etag = res.headers.get('etag') ?? '';
    expect(etag).toBe(`"${EMBED.hash}"`);

    const again = await api('GET', embedPath(false), { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
  });

  it('keeps a pinned version for a year, and answers an outdated pin with today’s script, not cached', async () => {
    const pinned = await api('GET', embedPath(true));
    expect(pinned.status).toBe(200);
    expect(pinned.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const old = await api('GET', '/embed/cloud-desktop.0123456789abcdef.js');
    expect(old.status).toBe(200);
    expect(old.headers.get('cache-control')).toBe('public, max-age=300');
  });

  it('answers nothing else under /embed/', async () => {
    for (const path of ['/embed/', '/embed/other.js', '/embed/cloud-desktop.ts', '/embed/cloud-desktop.XYZ.js']) {
      expect((await api('GET', path)).status, path).toBe(404);
    }
  });
});
