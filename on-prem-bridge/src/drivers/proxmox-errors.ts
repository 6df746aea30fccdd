/**
 * Turns what the `proxmox-api` package throws into one InfraError. The package throws plain Errors with no status field
 * (its ProxmoxEngine.ts), so status, Proxmox message and retryability are read from the message text; Proxmox itself
 * uses HTTP 500 for transient and permanent failures alike (a plain `die` in a handler, pve-manager's
 * PVE/HTTPServer.pm), so the text decides.
 */
import { InfraError } from './types';

/**
 * Failures that go away by themselves: lock/flock time-outs (pve-common's lock_file_full), a booting agent
 * (qemu-server's QemuServer/Agent.pm), lost quorum, hops timing out.
 */
const TRANSIENT_TEXT = [
  /got timeout/i,
  /VM is locked/,
  /can't lock file/,
  /QEMU guest agent is not running/,
  /no quorum/i,
  /timed? ?out/i,
  /temporar(il)?y/i,
  /try again/i,
  /connection (refused|reset|closed)/i,
  /broken pipe/i,
];

/** Failures that repeat until someone changes the request or the cluster. */
const PERMANENT_TEXT = [
  /does not exist/,
  /already exists/,
  /already running/,
  /not allowed/,
  /not supported/,
  /template/,
  /destroy failed/,
  /protection mode/,
  /No QEMU guest agent configured/,
  /not running/,
  /hostname lookup/,
  /Permission check failed/,
  /checksum mismatch/,
  /still in use/,
  /Method '[^']*' not\simplemented/,
  /invalid/i,
];

/** Exit statuses of tasks worth retrying: only the lock and time-out texts (pve-common's UPID.pm status_is_error). */
const TRANSIENT_TASK_TEXT = [/got timeout/i, /VM is locked/, /can't lock file/];

export function isRetryableTaskStatus(exitstatus: string): boolean {
  return TRANSIENT_TASK_TEXT.some((re) => re.test(exitstatus));
}

export function isRetryable(status: number, text: string): boolean {
  if (status === 0) return true;
  // pve-http-server's AnyEvent.pm proxy_request: 595–599 are AnyEvent::HTTP pseudo-statuses of a proxied hop; the call
  // may even have completed.
  if (status >= 595 && status <= 599) return true;
  if ([408, 429, 502, 503, 504].includes(status)) return true;
  if (status !== 500) return false;
  if (TRANSIENT_TEXT.some((re) => re.test(text))) return true;
  if (PERMANENT_TEXT.some((re) => re.test(text))) return false;
  // An unrecognised 500 is more often a passing hiccup than a verdict; callers bound their retries.
  return true;
}

interface Parsed {
  method: string;
  path: string;
  status: number;
  text: string;
}

function apiPath(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.replace(/^\/api2\/json/, ''));
  } catch {
    return url;
  }
}

/**
 * pve-http-server's Formatter/Standard.pm: message from the JSON body (libpve-http-server-perl ≥ 5.2.0), else the
 * reason phrase; 400s list `errors`.
 */
function describeBody(reason: string, bodyText: string): string {
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    return reason;
  }
  if (typeof body !== 'object' || body === null) return reason;
  const { message, errors } = body as { message?: unknown; errors?: unknown };
  let text = typeof message === 'string' && message.trim() ? message.trim() : reason;
  if (errors && typeof errors === 'object') {
    const details = Object.entries(errors as Record<string, unknown>).map(([k, v]) => `${k}: ${String(v).trim()}`);
    if (details.length) text = `${text} (${details.join('; ')})`;
  }
  return text;
}

function parse(message: string): Parsed | null {
  // `<METHOD> <url> return Error <status> <reason>: <JSON body>` (400, 401, 500)
  let m = /^(\w+) (\S+) return Error (\d{3}) ([\s\S]*?): (\{"[\s\S]*\})$/.exec(message);
  if (m) return { method: m[1] ?? '', path: apiPath(m[2] ?? ''), status: Number(m[3]), text: describeBody(m[4] ?? '', m[5] ?? '') };
  // `<METHOD> <url> connection failed with <status> <reason> return: <JSON body>` (every other status)
  m = /^(\w+) (\S+) connection failed with (\d{3}) ([\s\S]*?) return: ([\s\S]*)$/.exec(message);
  if (m) return { method: m[1] ?? '', path: apiPath(m[2] ?? ''), status: Number(m[3]), text: describeBody(m[4] ?? '', m[5] ?? '') };
  // A reply that is not PVE JSON, e.g. an HTML error page of a reverse proxy in front of pveproxy.
  m = /^(\w+) (\S+) unexpected contentType "([^"]*)" status Line:(\d{3})/.exec(message);
  if (m) return { method: m[1] ?? '', path: apiPath(m[2] ?? ''), status: Number(m[4]), text: `unexpected content type '${m[3]}'` };
  // The package's own spelling, after its single retry of a failed fetch (network error or time-out).
  m = /^FaILED to call (\w+) (\S+)(?: cause by:([\s\S]*))?$/i.exec(message);
  if (m) return { method: m[1] ?? '', path: apiPath(m[2] ?? ''), status: 0, text: m[3]?.trim() || 'network failure' };
  return null;
}

export function toInfraError(error: unknown): InfraError {
  if (error instanceof InfraError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const parsed = parse(message);
  if (!parsed) {
    // Not one of the package's formats: a network-level failure thrown by a custom fetch, or an abort.
    return new InfraError(`Proxmox: ${message}`, 'proxmox', 0, true);
  }
  const { method, path, status, text } = parsed;
  return new InfraError(`Proxmox ${method} ${path}: ${status ? `${status} ` : ''}${text}`, 'proxmox', status, isRetryable(status, text));
}
