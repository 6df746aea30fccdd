/** Desktops seeded straight into their Durable Objects (for sites other than the API's default one). */
import { env } from 'cloudflare:workers';
import { randomId } from '../../src/lib/ids';
import { DEFAULT_LAUNCH } from '../../src/lib/launch';
import { type NewDesktopInput, newDesktop } from '../../src/lib/new-desktop';
import type { Desktop } from '../../src/schemas/desktop';

export function desktopFor(siteId: string, userId: string, overrides: Partial<NewDesktopInput> = {}): Desktop {
  return newDesktop({
    id: randomId('dk'),
    userId,
    name: 'Seeded',
    plan: 'BASIC',
    protocol: 'vnc',
    siteId,
    createdBy: `user:${userId}`,
    idleTimeoutMinutes: 60,
    ...overrides,
  });
}

/** Seeded desktops take a quota slot like any other, but are never refused one. */
export const SEEDED = { unlimited: true, service: null };

/** Creates the desktop in its Durable Object (null → PENDING, create command queued). */
export async function seedDesktop(siteId: string, userId: string, overrides: Partial<NewDesktopInput> = {}): Promise<Desktop> {
  const desktop = desktopFor(siteId, userId, overrides);
  const r = await env.DESKTOP_SESSION.getByName(desktop.id).create({
    desktop,
    actor: `user:${userId}`,
    launch: DEFAULT_LAUNCH,
    admission: SEEDED,
  });
  if (!r.ok) throw new Error(r.message);
  return r.value;
}
