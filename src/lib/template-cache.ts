/**
 * Templates change rarely and every create with a templateId reads one: a per-isolate
 * cache for a few seconds keeps Postgres off the create path most of the time. An
 * admin change clears this isolate's copy at once; others see it within the TTL.
 */
import { withDb } from '../db/client';
import { getTemplate } from '../db/queries';
import type { Config } from '../env';
import type { Template } from '../schemas/template';

const TTL_MS = 30_000;
const cache = new Map<string, { template: Template | null; until: number }>();

export async function cachedTemplate(cfg: Config, id: string): Promise<Template | null> {
  const hit = cache.get(id);
  if (hit && hit.until > Date.now()) return hit.template;
  const template = await withDb(cfg, (db) => getTemplate(db, id));
  cache.set(id, { template, until: Date.now() + TTL_MS });
  return template;
}

export function forgetTemplates(): void {
  cache.clear();
}
