/**
 * How the bridge trusts each backend's certificate. Real sites use private CAs: Proxmox
 * signs pveproxy's certificate with the cluster's own CA (/etc/pve/pve-root-ca.pem), K3s
 * its API server's with its server CA, and a Traefik route without its own certificate
 * answers with a self-signed default one. Per backend the bridge takes either a CA bundle
 * file or the SHA-256 fingerprint of the server's certificate (what Proxmox's GUI shows
 * under Certificates), and otherwise the system's CAs; it never skips verification.
 *
 * Plain http:// is accepted only for loopback addresses: an API token, a Guacamole admin
 * password or a bearer token must not cross a network in clear.
 */
import { readFileSync } from 'node:fs';
import { type ConnectionOptions, createSecureContext, connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Agent, type Dispatcher, request, fetch as undiciFetch, type buildConnector } from 'undici';

export type Trust =
  | { kind: 'system' }
  /** PEM bundle (one or more CA certificates) read from `file`. */
  | { kind: 'ca'; file: string; pem: string }
  /** The server certificate's SHA-256, `AB:CD:…` upper case; the chain and name are then not checked. */
  | { kind: 'fingerprint'; sha256: string };

const FINGERPRINT = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

/** `ab:cd…`, `ABCD…` or `AB CD …` → `AB:CD:…`; null when it is not 32 bytes of hex. */
export function normalizeFingerprint(text: string): string | null {
  const hex = text.replace(/[^0-9a-fA-F]/g, '').toUpperCase();
  if (hex.length !== 64 || /[^0-9A-F]/.test(text.replace(/[\s:]/g, '').toUpperCase())) return null;
  const out = hex.match(/.{2}/g)?.join(':') ?? '';
  return FINGERPRINT.test(out) ? out : null;
}

/** The trust a backend's settings ask for; throws a sentence naming the variable when the file cannot be read. */
export function trustFrom(caFileVar: string, caFile: string | undefined, fingerprint: string | undefined): Trust {
  if (fingerprint) {
    const sha256 = normalizeFingerprint(fingerprint);
    if (!sha256) throw new Error(`${caFileVar.replace(/_CA_FILE$/, '_FINGERPRINT')}: must be a SHA-256 fingerprint (32 hex bytes)`);
    return { kind: 'fingerprint', sha256 };
  }
  if (caFile) {
    let pem: string;
    try {
      pem = readFileSync(caFile, 'utf8');
    } catch (err) {
      throw new Error(`${caFileVar}: cannot read ${caFile} (${err instanceof Error ? err.message : String(err)})`);
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`${caFileVar}: ${caFile} holds no PEM certificate`);
    return { kind: 'ca', file: caFile, pem };
  }
  return { kind: 'system' };
}

export function describeTrust(trust: Trust): string {
  if (trust.kind === 'ca') return `CA file ${trust.file}`;
  if (trust.kind === 'fingerprint') return `pinned SHA-256 ${trust.sha256.slice(0, 11)}…`;
  return "the system's CAs";
}

export function isLoopbackHostname(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** True unless the URL is plain (http/ws) to somewhere other than this machine. */
export function cleartextAllowed(url: string): boolean {
  const u = new URL(url);
  if (u.protocol === 'https:' || u.protocol === 'wss:') return true;
  return isLoopbackHostname(u.hostname);
}

/** A fingerprint mismatch or an untrusted chain, as the TLS layer reports it. */
export class CertificateError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'CertificateError';
  }
}

/** node:tls options for a trust: the CA bundle, or no chain check with the fingerprint compared after the handshake. */
export function tlsOptions(trust: Trust): Pick<ConnectionOptions, 'ca' | 'rejectUnauthorized' | 'checkServerIdentity'> {
  if (trust.kind === 'ca') return { ca: trust.pem };
  if (trust.kind === 'fingerprint') return { rejectUnauthorized: false };
  return {};
}

/** For a pinned certificate: the handshake is over; is it the one we expect? */
export function checkPinned(socket: TLSSocket, trust: Trust): CertificateError | null {
  if (trust.kind !== 'fingerprint') return null;
  const seen = socket.getPeerCertificate()?.fingerprint256;
  if (seen === trust.sha256) return null;
  return new CertificateError(
    `the server's certificate has SHA-256 ${seen ?? '(none)'}, not the pinned ${trust.sha256}`,
    'CERT_FINGERPRINT_MISMATCH',
  );
}

type Connector = ReturnType<typeof buildConnector>;

/**
 * undici's connect step with the trust applied (a pinned fingerprint is checked before any byte is sent). The CA
 * bundle is parsed once, not per connection, and a new connection resumes the last TLS session to the same server
 * (as undici's own connector does), so a burst of connections costs one full handshake, not one each. A pinned
 * certificate is compared on every connection, so those always shake hands in full.
 */
function connector(trust: Trust): Connector {
  const { ca, ...rest } = tlsOptions(trust);
  const secureContext = createSecureContext(ca ? { ca } : {});
  const sessions = new Map<string, Buffer>();
  const resumable = trust.kind !== 'fingerprint';
  return (options, callback) => {
    const servername = options.servername ?? (/^[\d.:[\]]+$/.test(options.hostname) ? undefined : options.hostname);
    const sessionKey = `${options.hostname}:${options.port}:${servername ?? ''}`;
    const socket = tlsConnect({
      host: options.hostname,
      port: Number(options.port) || 443,
      servername,
      ALPNProtocols: ['http/1.1'],
      secureContext,
      ...rest,
      ...(resumable ? { session: sessions.get(sessionKey) } : {}),
    });
    if (resumable) socket.on('session', (session: Buffer) => sessions.set(sessionKey, session));
    let done = false;
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      if (err) {
        socket.destroy();
        callback(err, null);
      } else callback(null, socket);
    };
    socket.once('secureConnect', () => finish(checkPinned(socket, trust)));
    socket.once('error', (err) => finish(err));
  };
}

function agents(trust: Trust): (url: string) => Agent {
  const plain = new Agent();
  const secure = trust.kind === 'system' ? plain : new Agent({ connect: connector(trust) });
  return (url) => (url.startsWith('https:') ? secure : plain);
}

/** A fetch whose HTTPS connections verify the server with `trust`; plain http (loopback only) goes as it is. */
export function trustedFetch(trust: Trust): typeof fetch {
  const dispatcher = agents(trust);
  return ((input: string | URL, init?: RequestInit) =>
    undiciFetch(input, {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher: dispatcher(String(input)),
    })) as unknown as typeof fetch;
}

/**
 * trustedFetch for request/response JSON APIs (Proxmox, Guacamole), over undici's `request`, which costs the
 * bridge a third of the CPU of a WHATWG fetch per call (no Request, Headers or web-stream objects). What it
 * answers is a Response as far as those drivers read one: status, statusText, ok, headers.get, text, json
 * and body. A failure is thrown as fetch throws it (TypeError "fetch failed" with the cause; an abort as the
 * signal's reason), so callers cannot tell the two apart. Streaming clients (Kubernetes watches) keep fetch.
 */
export function trustedApiFetch(trust: Trust): typeof fetch {
  const dispatcher = agents(trust);
  return (async (input: string | URL, init?: RequestInit) => {
    const url = String(input);
    const signal = init?.signal ?? undefined;
    let reply: Dispatcher.ResponseData;
    try {
      reply = await request(url, {
        method: (init?.method ?? 'GET') as Dispatcher.HttpMethod,
        headers: headerRecord(init?.headers),
        body: typeof init?.body === 'string' ? init.body : undefined,
        signal,
        dispatcher: dispatcher(url),
      });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw new TypeError('fetch failed', { cause: err });
    }
    return apiResponse(reply);
  }) as unknown as typeof fetch;
}

/** Request headers as a record; Content-Length is left to undici, which counts the body's bytes. */
function headerRecord(headers: HeadersInit | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  const entries = headers instanceof Headers || Array.isArray(headers) ? headers : Object.entries(headers);
  for (const [key, value] of entries) if (key.toLowerCase() !== 'content-length') out[key] = value;
  return out;
}

function apiResponse(reply: Dispatcher.ResponseData): Response {
  const header = (name: string) => {
    const value = reply.headers[name.toLowerCase()];
    return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
  };
  return {
    status: reply.statusCode,
    statusText: reply.statusText,
    ok: reply.statusCode >= 200 && reply.statusCode < 300,
    headers: { get: header, has: (name: string) => header(name) !== null },
    text: () => reply.body.text(),
    json: () => reply.body.json(),
    body: reply.body,
  } as unknown as Response;
}
