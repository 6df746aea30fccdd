/**
 * The pages read their data through the API itself: the same Hono app, in-process, with
 * the page's own session cookie and CSRF token. Authorisation therefore lives in one
 * place; a page can never show what the API would refuse the same person.
 */
import type { Context } from 'hono';
import { CSRF_HEADER } from '../auth/session-token';
import type { DashboardEnv } from '../middleware/session';

export type ApiFetch = (req: Request, c: Context<DashboardEnv>) => Response | Promise<Response>;

/** An API refusal, with the API's own words for it. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiProblem';
  }
}

/** A page of a list endpoint (GET /desktops, /admin/audit). */
export interface Page<T> {
  items: T[];
  page: number;
  pageSize: number;
  total: number;
}

interface Envelope {
  success?: boolean;
  message?: string;
  data?: unknown;
  error?: { code?: string };
}

export function apiReader(c: Context<DashboardEnv>, fetchApi: ApiFetch) {
  const session = c.var.session;
  return async function get<T>(path: string): Promise<T> {
    const headers = new Headers({ accept: 'application/json' });
    const cookie = c.req.header('cookie');
    if (cookie) headers.set('cookie', cookie);
    if (session) headers.set(CSRF_HEADER, session.csrf);
    const ip = c.req.header('cf-connecting-ip');
    if (ip) headers.set('cf-connecting-ip', ip);
    const res = await fetchApi(new Request(new URL(path, c.req.url), { headers }), c);
    const body = (await res.json().catch(() => ({}))) as Envelope;
    if (!res.ok || body.success !== true) {
      throw new ApiProblem(res.status, body.error?.code ?? 'INTERNAL_ERROR', body.message ?? `The API answered ${res.status}`);
    }
    // The route's response schema is the type of `data`; the caller names it.
    return body.data as T;
  };
}

export type ApiGet = ReturnType<typeof apiReader>;
