/**
 * Runs one outbox effect of a desktop (src/desktop/session-state.ts): each is a message or
 * a call to another object, safe to repeat, since an effect whose answer was lost runs again.
 */
import type { OutboxEffect } from '../../src/desktop/session-state';
import type { Bindings } from '../../src/env';
import type { EventsMessage } from '../../src/schemas/jobs';

export async function runEffect(env: Bindings, effect: OutboxEffect): Promise<void> {
  switch (effect.kind) {
    case 'index':
      // An index keeps the highest revision it was sent, so a repeat changes nothing.
      await Promise.all(effect.names.map((name) => env.DESKTOP_INDEX.getByName(name).put(effect.entry)));
      return;
    case 'job':
      await env.JOBS.send(effect.message, { contentType: 'json' });
      return;
    case 'cancel':
      return env.SITE_HUB.getByName(effect.siteId).cancel(effect.commandId, effect.reason);
    case 'release':
      return env.USER_ACCOUNT.getByName(effect.userId).release(effect.desktopId);
    case 'snapshot_release':
      return env.USER_ACCOUNT.getByName(effect.userId).releaseSnapshot(effect.desktopId, effect.name);
    case 'gpu_release':
      await env.SITE_HUB.getByName(effect.siteId).releaseGpu(effect.desktopId, effect.runId ?? null);
      return;
    case 'event':
      await env.EVENTS.send({ kind: 'event', event: effect.event } satisfies EventsMessage, { contentType: 'json' });
      return;
    case 'audit':
      await env.EVENTS.send({ kind: 'audit', record: effect.record } satisfies EventsMessage, { contentType: 'json' });
      return;
  }
}
