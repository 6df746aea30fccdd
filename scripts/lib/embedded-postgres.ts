/**
 * The embedded local database: an in-memory (or on-disk) PGlite served over the
 * Postgres wire protocol by @electric-sql/pglite-socket, plus the WebSocket-to-TCP
 * relay that the Neon serverless driver needs to reach a Postgres that is not Neon
 * (Neon's "local development" recipe: neonConfig.wsProxy pointing at a relay).
 */
import { createServer as createTcpServer, connect, type AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { WebSocketServer } from 'ws';

export interface EmbeddedPostgres {
  /** postgres:// URL for node clients and the Workers binding DATABASE_URL. */
  url: string;
  /** host:port/v1 for neonConfig.wsProxy (the Workers binding DB_WS_PROXY). */
  wsProxy: string;
  pgPort: number;
  wsPort: number;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createTcpServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** A Postgres Terminate message ('X', length 4), which the driver writes on its own. */
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

/** Relays each WebSocket to one TCP connection to Postgres; binary frames both ways. */
export async function startWsRelay(pgPort: number, wsPort: number, pgHost = '127.0.0.1'): Promise<{ port: number; stop(): Promise<void> }> {
  const http = createHttpServer((_req, res) => res.writeHead(426).end('WebSocket only'));
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws) => {
    const tcp = connect(pgPort, pgHost);
    tcp.setNoDelay(true);
    const pending: Buffer[] = [];
    let open = false;
    // Postgres hangs up after Terminate and the Neon driver waits for that before it
    // closes its socket; PGlite's socket server does not, so without this every pool
    // left a connection behind and the 201st was refused (DATABASE_UNAVAILABLE).
    const forward = (data: Buffer) => {
      tcp.write(data);
      if (data.equals(TERMINATE)) tcp.end();
    };
    tcp.on('connect', () => {
      open = true;
      for (const b of pending.splice(0)) forward(b);
    });
    ws.on('message', (data: Buffer) => (open ? forward(data) : pending.push(data)));
    tcp.on('data', (chunk) => ws.readyState === ws.OPEN && ws.send(chunk));
    const close = () => {
      tcp.destroy();
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
    };
    tcp.on('close', close);
    tcp.on('error', close);
    ws.on('close', close);
    ws.on('error', close);
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(wsPort, '127.0.0.1', () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        http.close(() => resolve());
      }),
  };
}

export async function startEmbeddedPostgres(opts: { pgPort?: number; wsPort?: number; dataDir?: string } = {}): Promise<EmbeddedPostgres> {
  const db = await PGlite.create(opts.dataDir ? { dataDir: opts.dataDir } : {});
  const pgPort = opts.pgPort ?? (await freePort());
  // PGlite is single-connection; the socket server multiplexes clients and keeps a
  // transaction's statements together, which is what the edge's quota check needs.
  const server = new PGLiteSocketServer({ db, port: pgPort, host: '127.0.0.1', maxConnections: 200 });
  await server.start();
  const relay = await startWsRelay(pgPort, opts.wsPort ?? 0);
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${pgPort}/postgres`,
    wsProxy: `127.0.0.1:${relay.port}/v1`,
    pgPort,
    wsPort: relay.port,
    async stop() {
      await relay.stop();
      await server.stop();
      await db.close();
    },
  };
}
