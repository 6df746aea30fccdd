/**
 * A DNS-over-HTTPS endpoint (the JSON API of cloudflare-dns.com: GET ?name=&type=A|AAAA,
 * answering {Status, Answer: [{type, data}]}) on a loopback port. The edge resolves webhook
 * hosts with DoH before each delivery (WEBHOOK_DNS_RESOLVER); a Worker cannot use the
 * machine's resolver, so the local stacks run this relay to it, and the Workers tests run it
 * over a fixed zone.
 */
import { lookup } from 'node:dns/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

type Family = 'A' | 'AAAA';
/** Addresses of `name`, or null when the name does not exist. */
export type Resolve = (name: string, type: Family) => Promise<string[] | null>;

const TYPE_NUMBER: Record<Family, number> = { A: 1, AAAA: 28 };

export async function startDohServer(resolve: Resolve, port = 0): Promise<{ url: string; stop(): Promise<void> }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://doh.local');
    const name = url.searchParams.get('name') ?? '';
    const type = url.searchParams.get('type') === 'AAAA' ? 'AAAA' : 'A';
    resolve(name.replace(/\.$/, ''), type).then(
      (addresses) => {
        const body =
          addresses === null
            ? { Status: 3, Answer: [] }
            : { Status: 0, Answer: addresses.map((data) => ({ name, type: TYPE_NUMBER[type], TTL: 60, data })) };
        res.writeHead(200, { 'content-type': 'application/dns-json' }).end(JSON.stringify(body));
      },
      () => res.writeHead(200, { 'content-type': 'application/dns-json' }).end(JSON.stringify({ Status: 2 })),
    );
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => ok());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/dns-query`,
    stop: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

/** The machine's own resolver (getaddrinfo: /etc/hosts, then DNS), as `npm run dev` and the test stacks use it. */
export const systemResolver: Resolve = async (name, type) => {
  try {
    const found = await lookup(name, { all: true, family: type === 'A' ? 4 : 6 });
    return found.map((a) => a.address);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA') return type === 'A' ? null : [];
    throw err;
  }
};
