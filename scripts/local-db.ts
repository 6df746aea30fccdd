/**
 * `npm run db`: the embedded Postgres of the local stack (PGlite on disk in
 * .local/pgdata, wire protocol on 127.0.0.1:5488, the Neon WebSocket relay on :5489),
 * migrated and seeded with the local site. With DATABASE_URL set in the environment,
 * only the relay runs, in front of that server.
 *
 * The test and benchmark stacks run it too, in its own process, with PGLITE_PORT,
 * DB_RELAY_PORT, PGLITE_IN_MEMORY=1 (or PGLITE_DATA_DIR) and SEED_LOCAL_SITE=0.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { migrateDatabase, nodePool, provideDatabase } from './lib/database';
import { LOCAL, ROOT, ensureLocalConfig, sha256Hex } from './lib/local-config';
import { seedTemplates } from './lib/seed-templates';

const env = process.env;
const external = env.DATABASE_URL || undefined;
const inMemory = env.PGLITE_IN_MEMORY === '1';
const dataDir = external || inMemory ? undefined : env.PGLITE_DATA_DIR || join(ROOT, '.local/pgdata');
if (dataDir) mkdirSync(dataDir, { recursive: true });
const db = await provideDatabase({
  databaseUrl: external,
  pgPort: Number(env.PGLITE_PORT ?? LOCAL.pgPort),
  wsPort: Number(env.DB_RELAY_PORT ?? LOCAL.wsRelayPort),
  dataDir,
});
await migrateDatabase(db);

if (env.SEED_LOCAL_SITE !== '0') {
  // The local bridge authenticates as site `local` with the key in .local/bridge.env.
  const pool = nodePool(db);
  await pool.query(
    `INSERT INTO sites (id, name, key_hash, created_at) VALUES ($1, $2, $3, now())
     ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash`,
    [LOCAL.siteId, 'Local site (simulators)', sha256Hex(ensureLocalConfig().siteKey)],
  );
  await seedTemplates(pool);
  await pool.end();
}

console.log(
  `database ready: ${external ? 'external server' : `embedded PGlite (${dataDir ?? 'in memory'})`} at ${db.url}; Neon relay on ws://${db.wsProxy}`,
);
const stop = async () => {
  await db.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
