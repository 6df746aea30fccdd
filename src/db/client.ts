/**
 * Postgres through the Neon serverless driver (WebSockets, so it runs in workerd).
 * Locally the driver reaches the embedded PGlite, or any Postgres, through the relay
 * named by DB_WS_PROXY, as Neon documents for local development.
 *
 * A Pool's sockets belong to the request (or Durable Object event) that opened them, so
 * every unit of work opens its own and ends it; `withDb` makes that impossible to forget.
 */
import { Pool, neonConfig } from '@neondatabase/serverless';
import { drizzle, type NeonDatabase } from 'drizzle-orm/neon-serverless';
import type { Config } from '../env';
import { ApiError } from '../errors';
import * as schema from './schema';

/** Drizzle over the pool; `$client` is the pool itself, for the few statements sent as plain SQL (./plain-sql.ts). */
export type Db = NeonDatabase<typeof schema> & { $client: Pool };

function configureDriver(cfg: Config): void {
  if (cfg.DB_WS_PROXY) {
    const proxy = cfg.DB_WS_PROXY;
    neonConfig.wsProxy = () => proxy;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }
}

/**
 * Runs `work` against a fresh pool. An unreachable database is a 503 DATABASE_UNAVAILABLE
 * (the desktop's Durable Object keeps the truth meanwhile); errors of the work itself
 * propagate unchanged.
 */
export async function withDb<T>(cfg: Config, work: (db: Db) => Promise<T>): Promise<T> {
  configureDriver(cfg);
  const pool = new Pool({ connectionString: cfg.DATABASE_URL, max: 2, connectionTimeoutMillis: 5000 });
  // An unreachable database must surface as a rejected promise, not an uncaught event.
  pool.on('error', () => {});
  try {
    try {
      (await pool.connect()).release();
    } catch {
      throw new ApiError('DATABASE_UNAVAILABLE', 'The database is unreachable; try again shortly');
    }
    return await work(drizzle(pool, { schema }));
  } finally {
    await pool.end().catch(() => {});
  }
}
