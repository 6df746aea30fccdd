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
    case 'audit':
      await env.EVENTS.send(eventsMessage(effect), { contentType: 'json' });
      return;
  }
}

/** Events and audit records in one batch (a create makes several), within the queue's 100 messages per batch. */
export async function sendEvents(env: Bindings, effects: Extract<OutboxEffect, { kind: 'event' | 'audit' }>[]): Promise<void> {
  for (let i = 0; i < effects.length; i += 100) {
    await env.EVENTS.sendBatch(effects.slice(i, i + 100).map((e) => ({ body: eventsMessage(e), contentType: 'json' as const })));
  }
}

function eventsMessage(effect: Extract<OutboxEffect, { kind: 'event' | 'audit' }>): EventsMessage {
  return effect.kind === 'event' ? { kind: 'event', event: effect.event } : { kind: 'audit', record: effect.record };
}
