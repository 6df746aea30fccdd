/**
 * Retention, run by the cron trigger: audit records older than AUDIT_RETENTION_DAYS and
 * webhook delivery attempts older than 30 days are deleted (in bounded batches, so a
 * backlog drains over a few runs instead of one long statement).
 */
import { lt, sql } from 'drizzle-orm';
import { withDb } from '../../src/db/client';
import { auditLog, webhookDeliveries } from '../../src/db/schema';
import { type Bindings, config } from '../../src/env';

const DAY = 86_400_000;
const DELIVERY_RETENTION_DAYS = 30;
const BATCH = 5000;

export async function applyRetention(env: Bindings, now: number): Promise<{ audit: number; deliveries: number }> {
  const cfg = config(env);
  const auditCutoff = new Date(now - cfg.AUDIT_RETENTION_DAYS * DAY).toISOString();
  const deliveryCutoff = new Date(now - DELIVERY_RETENTION_DAYS * DAY).toISOString();
  return withDb(cfg, async (db) => {
    const audit = await db.execute(
      sql`delete from ${auditLog} where id in (select id from ${auditLog} where ${lt(auditLog.at, auditCutoff)} limit ${BATCH})`,
    );
    const deliveries = await db.execute(
      sql`delete from ${webhookDeliveries} where id in (select id from ${webhookDeliveries} where ${lt(webhookDeliveries.at, deliveryCutoff)} limit ${BATCH})`,
    );
    return { audit: audit.rowCount ?? 0, deliveries: deliveries.rowCount ?? 0 };
  });
}
