/**
 * Starts the database the Workers tests use (the embedded PGlite, or the PostgreSQL
 * server DATABASE_URL names), applies the migrations and hands the addresses to the
 * Workers project through provide()/inject() (workers-sdk's hyperdrive fixture pattern).
 */
import type { TestProject } from 'vitest/node';
import { migrateDatabase, provideDatabase } from '../../scripts/lib/database';

declare module 'vitest' {
  export interface ProvidedContext {
    dbUrl: string;
    dbProxy: string;
  }
}

export default async function setup(project: TestProject) {
  const db = await provideDatabase({ databaseUrl: process.env.DATABASE_URL || undefined });
  await migrateDatabase(db);
  project.provide('dbUrl', db.url);
  project.provide('dbProxy', db.wsProxy);
  return () => db.stop();
}
