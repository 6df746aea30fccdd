/**
 * `npm run db:migrate`: applies the drizzle-kit migrations in migrations/ to
 * DATABASE_URL (default: the local embedded database, which `npm run db` serves).
 */
import { migrateDatabase, provideDatabase } from './lib/database';
import { ensureLocalConfig } from './lib/local-config';

const url = process.env.DATABASE_URL || ensureLocalConfig().databaseUrl;
const db = await provideDatabase({ databaseUrl: url });
try {
  await migrateDatabase(db);
  console.log(`migrations applied to ${new URL(url).host}`);
} finally {
  await db.stop();
}
