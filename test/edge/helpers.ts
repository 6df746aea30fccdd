/** Helpers for the Workers tests: tokens and calls through the Worker's own fetch. */
import { env, exports } from 'cloudflare:workers';
import { SignJWT } from 'jose';
import { expect, vi } from 'vitest';
import { TEST_JWT_SECRET } from '../support/test-secrets';

export const ISSUER = 'cdaas-local';
export const AUDIENCE = 'cdaas-api';

export async function token(
  sub: string,
  opts: { roles?: string[]; exp?: string | number; iss?: string; aud?: string; secret?: string } = {},
) {
  return new SignJWT({ roles: opts.roles ?? [] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuer(opts.iss ?? ISSUER)
    .setAudience(opts.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? '1h')
    .sign(new TextEncoder().encode(opts.secret ?? TEST_JWT_SECRET));
}

export function uniqueUser(prefix = 'user'): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

export interface Envelope<T = unknown> {
  success: boolean;
  message: string;
  data: T;
  error?: { code: string; requestId: string; details?: unknown };
}

export async function api<T = unknown>(
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  }
  const res = await exports.default.fetch(new Request(`http://edge.test${path}`, { method, headers, body, redirect: 'manual' }));
  const text = await res.text();
  let json: Envelope<T> | null = null;
  try {
    json = JSON.parse(text) as Envelope<T>;
  } catch {
    json = null;
  }
  return { status: res.status, body: json, headers: res.headers, text };
}

/**
 * Waits until a desktop's outbox is empty and Postgres holds its latest revision. From then
 * on its alarm belongs to its clocks alone: a test that edits the object's storage and runs
 * the alarm does not race a write-through alarm of its own that is firing at that moment.
 */
export async function settled(desktopId: string): Promise<void> {
  const stub = env.DESKTOP_SESSION.getByName(desktopId);
  await vi.waitFor(
    async () => {
      const sync = await stub.syncStatus();
      expect([sync.outbox, sync.dbRevision]).toEqual([0, sync.revision]);
      // The write-through runs on its own; on a busy machine it takes more than waitFor's default second.
    },
    { timeout: 15_000, interval: 50 },
  );
}
