/**
 * The edge Worker: the Hono API (fetch), the queue consumers (queue), the cron safety
 * net (scheduled), and the Durable Object classes.
 */
import { newApp } from './app';
import type { Bindings } from './env';
import { consumeDeadEvents, consumeEvents } from '../workers/queues/events';
import { consumeDeadJobs, consumeJobs } from '../workers/queues/jobs';
import { deadWebhooks, deliverWebhooks } from '../workers/queues/webhooks';
import { applyRetention } from '../workers/cron/retention';
import { sweepOverdueDesktops } from '../workers/cron/sweep';
import { reconcileAllSites } from '../workers/reconcile/reconcile';

export { DesktopIndex } from '../workers/desktop-index/desktop-index';
export { IdempotencyKey } from '../workers/idempotency/idempotency-key';
export { DesktopSession } from '../workers/desktop-session/desktop-session';
export { SiteHub } from '../workers/site-hub/site-hub';
export { UserAccount } from '../workers/user-account/user-account';

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
    ctx.waitUntil(Promise.all([sweepOverdueDesktops(env, now), reconcileAllSites(env, now), applyRetention(env, now)]));
  },
} satisfies ExportedHandler<Bindings>;
