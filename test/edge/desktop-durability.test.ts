/**
 * What a desktop's Durable Object keeps when things go wrong between its steps: an
 * object reset after a transition, a row Postgres refuses. Each case stops the object
 * where the failure would hit and looks at what storage (and Postgres) then holds.
 */
import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { Bindings } from '../../src/env';
import { desktopFor } from './builders';

type Internals = { env: Bindings };

describe('a transition and its alarm', () => {
  it('sets the alarm in the transition itself, before any effect has run', async () => {
    const desktop = desktopFor('durability-site', 'durability-alarm');
    const stub = env.DESKTOP_SESSION.getByName(desktop.id);
    const alarm = await runInDurableObject(stub, async (obj, state) => {
      // The first effect (the create command) hangs, as if the object were reset before its
      // effects ran: whatever wakes the desktop up again must already be in storage.
      const internals = obj as unknown as Internals;
      const real = internals.env;
      let letGo: () => void = () => {};
      const hanging = new Promise<void>((resolve) => {
        letGo = resolve;
      });
      internals.env = { ...real, JOBS: { ...real.JOBS, send: () => hanging, sendBatch: () => hanging } } as unknown as Bindings;
      try {
        const r = await obj.create(desktop, 'user:durability-alarm');
        expect(r.ok).toBe(true);
        return await state.storage.getAlarm();
      } finally {
        internals.env = real;
        letGo();
      }
    });
    expect(alarm).not.toBeNull();
    // No later than the watchdog of PENDING (and soon enough to retry the effects).
    expect(alarm ?? 0).toBeLessThanOrEqual(Date.now() + 60_000);
  });
});
