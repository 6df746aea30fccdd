/**
 * The wire format of pveproxy (pve-http-server's AnyEvent.pm and Formatter/Standard.pm): the `{"data": ...}` envelope
 * with the exact content type, errors as status + reason phrase + JSON body, bodiless 401s, token authentication, and
 * request parameters from query string, form or JSON body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Privileges } from './permissions';
import type { RawValue } from './schema';

/** proxmox-api (ProxmoxEngine.ts) compares this string literally — no space after the semicolon. */
export const JSON_CONTENT_TYPE = 'application/json;charset=UTF-8';

/** A failure as a PVE handler raises it: `die "text\n"` (500) or raise_param_exc (400 with `errors`). */
export class PveError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Record<string, string>,
  ) {
    super(message);
  }
}

/** `die "..."` inside a handler: a 500 whose text clients classify (pve-manager's HTTPServer.pm rest_handler). */
export function die(message: string): never {
  throw new PveError(500, message);
}

/** raise_param_exc: 400 `Parameter verification failed.` with per-parameter texts. */
export function paramError(errors: Record<string, string>): never {
  throw new PveError(400, 'Parameter verification failed.', errors);
}

const BASE_HEADERS = { Server: 'pve-api-daemon/3.0', 'Cache-Control': 'max-age=0', Pragma: 'no-cache' };

/** A reason phrase may only hold visible ASCII and spaces; anything else would make node:http throw. */
function safeReason(reason: string): string {
  return reason.replace(/[^\x20-\x7e]/g, '?');
}

export function sendJson(res: ServerResponse, status: number, reason: string, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, safeReason(reason), {
    ...BASE_HEADERS,
    'Content-Type': JSON_CONTENT_TYPE,
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function sendData(res: ServerResponse, data: unknown, extra?: Record<string, unknown>): void {
  sendJson(res, 200, 'OK', { data, ...extra });
}

/**
 * Reason phrase = first line of the message; since libpve-http-server-perl 5.2.0 the body also carries `message` with
 * its trailing newline.
 */
export function sendError(res: ServerResponse, status: number, message: string, errors?: Record<string, string>): void {
  const text = message.endsWith('\n') ? message : `${message}\n`;
  const reason = text.split('\n')[0] ?? '';
  sendJson(res, status, reason, { data: null, message: text, ...(errors ? { errors } : {}) });
}

/** pve-http-server's AnyEvent.pm: 401s (and the 59x proxy pseudo-statuses) come with no body and no content type. */
export function sendBodiless(res: ServerResponse, status: number, reason: string): void {
  res.writeHead(status, safeReason(reason), { ...BASE_HEADERS, 'Content-Length': 0 });
  res.end();
}

export interface Caller {
  /** `root@pam!dev` — the UPID user field of tasks this caller starts. */
  userid: string;
  privileges: Privileges;
}

export interface ApiToken {
  /** `user@realm!tokenid` */
  id: string;
  secret: string;
  /** A privilege-separated token's privileges on `/` (propagated); absent = root's, all of them. */
  privileges?: string[];
}

/**
 * pve-access-control's verify_token: `Authorization: PVEAPIToken=<user>@<realm>!<tokenid>=<uuid>`; returns the caller
 * or the 401 reason.
 */
export function authenticate(req: IncomingMessage, tokens: ApiToken[]): Caller | { reason: string } {
  const header = req.headers.authorization;
  if (!header) return { reason: 'No ticket' };
  const m = /^PVEAPIToken=([^=\s]+@[^=\s]+![^=\s]+)=(\S+)$/.exec(header.trim());
  if (!m) return { reason: 'No ticket' };
  const token = tokens.find((t) => t.id === m[1] && t.secret === m[2]);
  return token ? { userid: token.id, privileges: new Privileges(token.privileges) } : { reason: 'Authentication failed!' };
}

/** pve-http-server's decode_urlencoded: a repeated form key becomes a list. */
function fromSearchParams(sp: URLSearchParams, into: Record<string, RawValue>): void {
  for (const key of new Set(sp.keys())) {
    const all = sp.getAll(key);
    into[key] = all.length === 1 ? (all[0] ?? '') : all;
  }
}

/** Query string merged with a form or JSON body (pve-http-server AnyEvent.pm extract_params). */
export function extractParams(url: URL, contentType: string | undefined, body: string): Record<string, RawValue> {
  const params: Record<string, RawValue> = {};
  fromSearchParams(url.searchParams, params);
  if (!body.trim()) return params;
  if (contentType?.startsWith('application/json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new PveError(400, 'malformed JSON body');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new PveError(400, 'JSON body must be an object');
    Object.assign(params, parsed as Record<string, RawValue>);
  } else {
    fromSearchParams(new URLSearchParams(body), params);
  }
  return params;
}
