/**
 * Whether a site's bridge is connected, as desktop reads report it ("siteBridge"): a
 * desktop whose site stopped heartbeating is not reported as healthy. Cached for a few
 * seconds per isolate so status polling does not turn into a SiteHub call per request;
 * the SiteHub itself declares a bridge gone after three missed heartbeats.
 */
import type { Bindings } from '../env';

export type SiteBridge = 'connected' | 'offline';

const TTL_MS = 5_000;
const cache = new Map<string, { value: SiteBridge; until: number }>();

export async function siteBridge(env: Bindings, siteId: string): Promise<SiteBridge> {
  const now = Date.now();
  const hit = cache.get(siteId);
  if (hit && hit.until > now) return hit.value;
  const value: SiteBridge = (await env.SITE_HUB.getByName(siteId).status()).connected ? 'connected' : 'offline';
  cache.set(siteId, { value, until: now + TTL_MS });
  return value;
}
