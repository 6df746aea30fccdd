/**
 * The HTTP plumbing the simulators share: a server whose request handler may be async and
 * whose failures answer in the simulated product's own error form, and a listen that
 * resolves with the bound port (0 picks a free one).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<unknown>;

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

export async function listen(server: Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** A control endpoint's JSON body: null when empty, undefined when malformed (for its schema to refuse). */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  try {
    return JSON.parse((await readBody(req)) || 'null');
  } catch {
    return undefined;
  }
}
