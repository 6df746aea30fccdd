/**
 * Node-side database plumbing shared by `npm run dev`, `npm run db:migrate` and the
 * test set-up: provide a database (the embedded PGlite, or the server DATABASE_URL
 * names), put the WebSocket relay in front of it, and apply the drizzle-kit migrations
 * through the same Neon driver the Worker uses.
 */
import { fileURLToPath } from 'node:url';
import { Pool, neonConfig } from '@neondatabase/serverless';
import { drizzle } from 'drizzle-orm/neon-serverless';
import { migrate } from 'drizzle-orm/neon-serverless/migrator';
import { WebSocket } from 'ws';
import { startEmbeddedPostgres, startWsRelay } from './embedded-postgres';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface ProvidedDatabase {
  url: string;
  /** host:port/v1 of the relay, for neonConfig.wsProxy (DB_WS_PROXY); '' for Neon itself. */
  wsProxy: string;
  embedded: boolean;
  stop(): Promise<void>;
}

const isNeon = (url: string) => /\.neon\.tech(:\d+)?\//.test(url) || new URL(url).hostname.endsWith('.neon.tech');

/**
 * DATABASE_URL set → that server (a relay in front unless it is Neon); otherwise an
 * embedded PGlite. Fixed ports when given (npm run dev), random ones otherwise (tests).
 */
export async function provideDatabase(
  opts: { databaseUrl?: string; pgPort?: number; wsPort?: number; dataDir?: string } = {},
): Promise<ProvidedDatabase> {
  const external = opts.databaseUrl;
  if (external) {
    if (isNeon(external)) return { url: external, wsProxy: '', embedded: false, stop: async () => {} };
    const target = new URL(external);
    const relay = await startWsRelay(Number(target.port || 5432), opts.wsPort ?? 0, target.hostname);
    return { url: external, wsProxy: `127.0.0.1:${relay.port}/v1`, embedded: false, stop: relay.stop };
  }
  const pg = await startEmbeddedPostgres({ pgPort: opts.pgPort, wsPort: opts.wsPort, dataDir: opts.dataDir });
  return { url: pg.url, wsProxy: pg.wsProxy, embedded: true, stop: pg.stop };
}

/** A Neon-driver Pool from Node, through the relay when there is one. */
export function nodePool(db: { url: string; wsProxy: string }): Pool {
  neonConfig.webSocketConstructor = WebSocket;
  if (db.wsProxy) {
    const proxy = db.wsProxy;
    neonConfig.wsProxy = () => proxy;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }
  const pool = new Pool({ connectionString: db.url, max: 4 });
  pool.on('error', () => {});
  return pool;
}

export async function migrateDatabase(db: { url: string; wsProxy: string }): Promise<void> {
  const pool = nodePool(db);
  try {
    await migrate(drizzle(pool), { migrationsFolder: MIGRATIONS_DIR });
  } finally {
    await pool.end();
  }
}
