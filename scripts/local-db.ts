/**
 * `npm run db`: the embedded Postgres of the local stack (PGlite on disk in
 * .local/pgdata, wire protocol on 127.0.0.1:5488, the Neon WebSocket relay on :5489),
 * migrated and seeded with the local site. With DATABASE_URL set in the environment,
 * only the relay runs, in front of that server.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { migrateDatabase, nodePool, provideDatabase } from './lib/database';
import { LOCAL, ROOT, ensureLocalConfig, sha256Hex } from './lib/local-config';

const local = ensureLocalConfig();
const external = process.env.DATABASE_URL || undefined;
const dataDir = join(ROOT, '.local/pgdata');
if (!external) mkdirSync(dataDir, { recursive: true });
const db = await provideDatabase({
  databaseUrl: external,
  pgPort: LOCAL.pgPort,
  wsPort: LOCAL.wsRelayPort,
  dataDir: external ? undefined : dataDir,
});
await migrateDatabase(db);

// The local bridge authenticates as site `local` with the key in .local/bridge.env.
const pool = nodePool(db);
await pool.query(
  `INSERT INTO sites (id, name, key_hash, created_at) VALUES ($1, $2, $3, now())
   ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash`,
  [LOCAL.siteId, 'Local site (simulators)', sha256Hex(local.siteKey)],
);
await pool.end();

console.log(`database ready: ${external ? 'external server' : `embedded PGlite (${dataDir})`}; Neon relay on ws://${db.wsProxy}`);
const stop = async () => {
  await db.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
