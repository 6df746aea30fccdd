/**
 * Starts the database the Workers tests use (the embedded PGlite, or the PostgreSQL
 * server DATABASE_URL names), applies the migrations and hands the addresses to the
 * Workers project through provide()/inject() (workers-sdk's hyperdrive fixture pattern).
 */
import type { TestProject } from 'vitest/node';
import { migrateDatabase, provideDatabase } from '../../scripts/lib/database';
import { startDohServer } from '../../scripts/lib/doh';

declare module 'vitest' {
  export interface ProvidedContext {
    dbUrl: string;
    dbProxy: string;
    dohUrl: string;
  }
}

/**
 * The DNS the Workers tests resolve webhook hosts in (WEBHOOK_DNS_RESOLVER): names that point
 * inward in every way a name can, one public name, and nothing else.
 */
export const TEST_ZONE: Record<string, { A?: string[]; AAAA?: string[] }> = {
  'public.hooks.test': { A: ['93.184.216.34'] },
  'private.hooks.test': { A: ['10.1.2.3'] },
  'metadata.hooks.test': { A: ['169.254.169.254'] },
  'loopback.hooks.test': { A: ['127.0.0.1'] },
  'mixed.hooks.test': { A: ['93.184.216.34', '192.168.0.10'] },
  'v6-loopback.hooks.test': { AAAA: ['::1'] },
  'v6-mapped.hooks.test': { AAAA: ['::ffff:127.0.0.1'] },
  'empty.hooks.test': {},
};

export default async function setup(project: TestProject) {
  const db = await provideDatabase({ databaseUrl: process.env.DATABASE_URL || undefined });
  await migrateDatabase(db);
  const doh = await startDohServer(async (name, type) => {
    const entry = TEST_ZONE[name.toLowerCase()];
    return entry ? (entry[type] ?? []) : null;
  });
  project.provide('dbUrl', db.url);
  project.provide('dbProxy', db.wsProxy);
  project.provide('dohUrl', doh.url);
  return async () => {
    await doh.stop();
    await db.stop();
  };
}
