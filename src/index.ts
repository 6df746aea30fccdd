/**
 * The edge Worker: the Hono API (fetch), the queue consumers (queue), the cron safety
 * net (scheduled), and the Durable Object classes.
 */
import { newApp } from './app';
import type { Bindings } from './env';
import { consumeDeadJobs, consumeJobs } from '../workers/queues/jobs';
import { sweepOverdueDesktops } from '../workers/cron/sweep';
import { reconcileAllSites } from '../workers/reconcile/reconcile';

export { DesktopSession } from '../workers/desktop-session/desktop-session';
export { SiteHub } from '../workers/site-hub/site-hub';
export { UserAccount } from '../workers/user-account/user-account';

const app = newApp();

export default {
  fetch: app.fetch,
  async queue(batch, env, _ctx) {
    if (batch.queue.endsWith('-dlq')) await consumeDeadJobs(batch, env);
    else await consumeJobs(batch, env);
  },
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(Promise.all([sweepOverdueDesktops(env, controller.scheduledTime), reconcileAllSites(env, controller.scheduledTime)]));
  },
} satisfies ExportedHandler<Bindings>;
