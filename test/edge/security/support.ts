/**
 * Shared pieces of the security tests: the route table as the running app reports it,
 * calls through the Worker with altered bindings, and the checks every answer must pass.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import { expect } from 'vitest';
import { newApp } from '../../../src/app';
import type { Bindings } from '../../../src/env';
import { ErrorEnvelopeSchema } from '../../../src/errors';
import worker from '../../../workers/index';
import { isDashboardPath } from '../../../src/routes/ui';
import type { Envelope } from '../helpers';

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

export interface OpenApiOperation {
  parameters?: { name: string; in: 'path' | 'query' | 'header'; schema?: unknown }[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: unknown }> };
}
export interface OpenApiDocument {
  paths: Record<string, Partial<Record<(typeof HTTP_METHODS)[number], OpenApiOperation>>>;
  components?: { schemas?: Record<string, unknown> };
}

export async function openApiDocument(): Promise<OpenApiDocument> {
  const res = await exports.default.fetch(new Request('http://edge.test/api/v1/openapi.json'));
  if (res.status !== 200) throw new Error(`openapi.json answered ${res.status}`);
  return (await res.json()) as OpenApiDocument;
}

/** `/a/:b/` → `/a/{b}`: Hono's patterns in the OpenAPI spelling. */
const openApiPath = (p: string) => p.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/(.)\/$/, '$1') || '/';

/**
 * Every endpoint as `METHOD /path/{param}`: the OpenAPI document of the running app,
 * plus the plain Hono routes it does not describe (health, the bridge, connect links,
 * the document itself), read from the app's route list. Middleware (method ALL) is not
 * an endpoint.
 */
export async function routeTable(): Promise<{ keys: string[]; doc: OpenApiDocument }> {
  const doc = await openApiDocument();
  const keys = new Set<string>();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const m of HTTP_METHODS) if (ops[m]) keys.add(`${m.toUpperCase()} ${openApiPath(path)}`);
  }
  // The dashboard's pages (HTML, cookies, redirects) are not API endpoints: test/browser covers them.
  for (const r of newApp().routes) if (r.method !== 'ALL' && !isDashboardPath(r.path)) keys.add(`${r.method} ${openApiPath(r.path)}`);
  return { keys: [...keys].sort(), doc };
}

export interface CallOptions {
  token?: string;
  body?: BodyInit;
  json?: unknown;
  headers?: Record<string, string>;
  /** Bindings to run the Worker with instead of the configured ones (a swapped limiter, a JWKS URL). */
  env?: Bindings;
}

export interface Answer<T = unknown> {
  status: number;
  headers: Headers;
  text: string;
  body: Envelope<T> | null;
  webSocket: WebSocket | null;
}

/** One request through the Worker's fetch handler, answered in full. */
export async function call<T = unknown>(method: string, path: string, opts: CallOptions = {}): Promise<Answer<T>> {
  const headers = new Headers(opts.headers);
  if (opts.token) headers.set('authorization', `Bearer ${opts.token}`);
  let body = opts.body;
  if (opts.json !== undefined) {
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    body = JSON.stringify(opts.json);
  }
  const req = new Request(`http://edge.test${path}`, { method, headers, body, redirect: 'manual' });
  let res: Response;
  if (opts.env) {
    const ctx = createExecutionContext();
    res = await worker.fetch(req, opts.env, ctx);
    await waitOnExecutionContext(ctx);
  } else {
    res = await exports.default.fetch(req);
  }
  // A live stream (Server-Sent Events) never ends by itself: its first bytes are not the point here.
  const streaming = res.headers.get('content-type')?.startsWith('text/event-stream') ?? false;
  if (streaming) await res.body?.cancel();
  const text = res.webSocket || streaming ? '' : await res.text();
  let parsed: Envelope<T> | null = null;
  try {
    parsed = JSON.parse(text) as Envelope<T>;
  } catch {
    parsed = null;
  }
  return { status: res.status, headers: res.headers, text, body: parsed, webSocket: res.webSocket };
}

/** The configured bindings with some replaced (a fresh object, so the config is parsed anew). */
export const bindingsWith = (overrides: Partial<Record<keyof Bindings, unknown>>): Bindings =>
  ({ ...(env as Bindings), ...overrides }) as Bindings;

export const SECURITY_HEADERS = [
  'content-security-policy',
  'cross-origin-resource-policy',
  'referrer-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-frame-options',
] as const;

export function expectSecurityHeaders(res: Answer, label: string): void {
  for (const h of SECURITY_HEADERS) expect(res.headers.get(h), `${label}: ${h}`).toBeTruthy();
}

/** A failure is the PRD error envelope and nothing else. */
export function expectErrorEnvelope(res: Answer, label: string): void {
  expect(res.headers.get('content-type') ?? '', `${label}: content type`).toMatch(/^application\/json/);
  const parsed = ErrorEnvelopeSchema.safeParse(res.body);
  expect(parsed.success, `${label}: not the error envelope: ${res.text.slice(0, 300)}`).toBe(true);
}

/** Resolves once at least `marginMs` remain in the current fixed window of `periodS` (the limiter's windows follow the wall clock). */
export async function freshWindow(periodS = 10, marginMs = 4000): Promise<void> {
  const left = periodS * 1000 - (Date.now() % (periodS * 1000));
  if (left < marginMs) await scheduler.wait(left + 50);
}

export const uniqueIp = () => {
  const b = crypto.getRandomValues(new Uint8Array(2));
  return `10.${b[0]}.${b[1]}.${Math.floor(Math.random() * 254) + 1}`;
};
