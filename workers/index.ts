/**
 * The edge Worker's entry (wrangler.toml `main`): the Hono API of src/ (fetch), the queue
 * consumers (queue), the cron trigger (scheduled: the safety net, reconciliation, retention, scheduled snapshots),
 * and the Durable Object classes. Code
 * under src/ never imports from workers/; this file puts the two together.
 */
import { newApp } from '../src/app';
import type { Bindings } from '../src/env';
import { consumeDeadEvents, consumeEvents } from './queues/events';
import { consumeDeadJobs, consumeJobs } from './queues/jobs';
import { deadWebhooks, deliverWebhooks } from './queues/webhooks';
import { applyRetention } from './cron/retention';
import { runSnapshotSchedules } from './cron/snapshot-schedule';
import { sweepOverdueDesktops } from './cron/sweep';
import { reconcileAllSites } from '../src/reconcile/reconcile';

export { DesktopIndex } from './desktop-index/desktop-index';
export { IdempotencyKey } from './idempotency/idempotency-key';
export { DesktopSession } from './desktop-session/desktop-session';
export { SiteHub } from './site-hub/site-hub';
export { UserAccount } from './user-account/user-account';
export { PoolDirectory } from './warm-pool/pool-directory';
export { WarmPool } from './warm-pool/warm-pool';

const app = newApp();

/** Queue name → consumer (wrangler.toml [[queues.consumers]]). */
const CONSUMERS: Record<string, (batch: MessageBatch<unknown>, env: Bindings) => Promise<void>> = {
  'cdaas-jobs': consumeJobs,
  'cdaas-jobs-dlq': consumeDeadJobs,
  'cdaas-events': consumeEvents,
  'cdaas-events-dlq': consumeDeadEvents,
  'cdaas-webhooks': deliverWebhooks,
  'cdaas-webhooks-dlq': deadWebhooks,
};

export default {
  fetch: app.fetch,
  async queue(batch, env, _ctx) {
    const consumer = CONSUMERS[batch.queue];
    if (!consumer) throw new Error(`no consumer for queue ${batch.queue}`);
    await consumer(batch, env);
  },
  async scheduled(controller, env, ctx) {
    const now = controller.scheduledTime;
    ctx.waitUntil(
      Promise.all([sweepOverdueDesktops(env, now), reconcileAllSites(env, now), applyRetention(env, now), runSnapshotSchedules(env, now)]),
    );
  },
} satisfies ExportedHandler<Bindings>;
