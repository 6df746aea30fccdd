/**
 * Consumers of the jobs queue and its dead-letter queue. A command waits in the queue
 * while its site's bridge is offline: each attempt that finds the site offline is
 * retried with exponential backoff, and after the queue's max_retries it lands in the
 * dead-letter queue, whose consumer fails the desktop with the reason.
 */
import type { Bindings } from '../../src/env';
import { config } from '../../src/env';
import { JobMessageSchema } from '../../src/schemas/jobs';

export function retryDelaySeconds(attempts: number, base: number, cap: number): number {
  return Math.min(cap, base * 2 ** Math.max(0, attempts - 1));
}

export async function consumeJobs(batch: MessageBatch<unknown>, env: Bindings): Promise<void> {
  const cfg = config(env);
  await Promise.all(
    batch.messages.map(async (msg) => {
      const parsed = JobMessageSchema.safeParse(msg.body);
      if (!parsed.success) {
        console.error(JSON.stringify({ msg: 'malformed job dropped', id: msg.id }));
        msg.ack();
        return;
      }
      const { siteId, command } = parsed.data;
      try {
        const outcome = await env.SITE_HUB.getByName(siteId).dispatch(parsed.data);
        if (outcome === 'offline') {
          console.log(JSON.stringify({ msg: 'site offline; command waits', siteId, commandId: command.id, requestId: command.requestId }));
          msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts, cfg.JOB_RETRY_BASE_SECONDS, cfg.JOB_RETRY_CAP_SECONDS) });
          return;
        }
        msg.ack();
      } catch (err) {
        console.error(
          JSON.stringify({
            msg: 'dispatch failed; will retry',
            siteId,
            commandId: command.id,
            requestId: command.requestId,
            error: String(err),
          }),
        );
        msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts, cfg.JOB_RETRY_BASE_SECONDS, cfg.JOB_RETRY_CAP_SECONDS) });
      }
    }),
  );
}

export async function consumeDeadJobs(batch: MessageBatch<unknown>, env: Bindings): Promise<void> {
  const cfg = config(env);
  for (const msg of batch.messages) {
    const parsed = JobMessageSchema.safeParse(msg.body);
    if (parsed.success) {
      const { command } = parsed.data;
      await env.DESKTOP_SESSION.getByName(command.desktopId).commandUndeliverable(command.id, cfg.JOB_MAX_ATTEMPTS);
    }
    msg.ack();
  }
}
