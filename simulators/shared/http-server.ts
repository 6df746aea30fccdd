/**
 * The HTTP plumbing the simulators share: a server whose request handler may be async and
 * whose failures answer in the simulated product's own error form, and a listen that
 * resolves with the bound port (0 picks a free one) and serves HTTPS when given a
 * certificate, as the real products do (pveproxy's cluster-CA certificate on 8006, the K3s
 * API server's own CA, Guacamole behind a TLS proxy).
 *
 * With a certificate, one port answers both TLS and, on a loopback address only, plain
 * HTTP (told apart by the first byte, 0x16 = a TLS handshake record): the bridge is
 * configured for HTTPS and verifies the certificate, while a browser or a test on the same
 * machine can still use http://127.0.0.1. A simulator bound to any other address speaks
 * TLS only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<unknown>;

/** A certificate (PEM, leaf first, then its chain) and its key, as files hold them. */
export interface SimTls {
  cert: string;
  key: string;
  /** A different certificate per SNI name (Traefik's routes); undefined = the default one above. */
  contextFor?: (servername: string) => SecureContext | undefined;
}

export interface Listening {
  port: number;
  /** `https` when a certificate is configured. */
  scheme: 'http' | 'https';
  /** Stops accepting and drops every open connection. */
  close(): Promise<void>;
}

/**
 * `answerError` writes the error the way the real server would. A failure after the
 * headers went out can no longer be told to the client in words, so its connection is
 * dropped rather than left hanging on a half-sent response.
 */
export function simulatorServer(handle: Handler, answerError: (res: ServerResponse, error: unknown) => void): Server {
  return createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.writableEnded) return;
      if (res.headersSent) return void res.destroy();
      try {
        answerError(res, error);
      } catch {
        res.destroy();
      }
    });
  });
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

const TLS_HANDSHAKE = 0x16;

export async function listen(server: Server, host: string, port: number, tls?: SimTls): Promise<Listening> {
  if (!tls) {
    const bound = await bind(server, host, port);
    return { port: bound, scheme: 'http', close: () => closeHttp(server) };
  }
  const plainAllowed = isLoopbackHost(host);
  const context = createSecureContext({ cert: tls.cert, key: tls.key });
  const front = createNetServer((socket: Socket) => {
    socket.once('error', () => socket.destroy());
    socket.once('readable', () => {
      const first: Buffer | null = socket.read(1);
      if (first === null) return void socket.destroy();
      socket.unshift(first);
      if (first[0] === TLS_HANDSHAKE) {
        const secure = new TLSSocket(socket, {
          isServer: true,
          secureContext: context,
          SNICallback: (servername, done) => done(null, tls.contextFor?.(servername) ?? context),
        });
        secure.once('error', () => secure.destroy());
        server.emit('connection', secure);
      } else if (plainAllowed) {
        server.emit('connection', socket);
      } else {
        socket.destroy();
      }
    });
  });
  const bound = await bind(front, host, port);
  return {
    port: bound,
    scheme: 'https',
    close: async () => {
      await Promise.all([closeHttp(server), new Promise<void>((resolve) => front.close(() => resolve()))]);
    },
  };
}

async function bind(server: Server | ReturnType<typeof createNetServer>, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

function closeHttp(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    // An http.Server fed through a front listener never listened itself; close still drops its connections.
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

const EMPTY = Buffer.alloc(0);

/**
 * The request's body bytes (beyond `limit`: none, and `tooLarge`). A request with neither Content-Length nor
 * Transfer-Encoding has no body (RFC 9112 §6.3), which most API calls are: those are answered without waiting.
 */
export function readBodyBytes(req: IncomingMessage, limit = Number.POSITIVE_INFINITY): Promise<{ body: Buffer; tooLarge: boolean }> {
  const length = req.headers['content-length'];
  if ((length === undefined && req.headers['transfer-encoding'] === undefined) || length === '0') {
    return Promise.resolve({ body: EMPTY, tooLarge: false });
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.once('end', () => resolve(size > limit ? { body: EMPTY, tooLarge: true } : { body: Buffer.concat(chunks), tooLarge: false }));
    req.once('error', reject);
  });
}

export async function readBody(req: IncomingMessage): Promise<string> {
  return (await readBodyBytes(req)).body.toString('utf8');
}

/** A control endpoint's JSON body: null when empty, undefined when malformed (for its schema to refuse). */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  try {
    return JSON.parse((await readBody(req)) || 'null');
  } catch {
    return undefined;
  }
}
