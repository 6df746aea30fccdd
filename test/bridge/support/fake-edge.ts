/**
 * A tiny edge for the bridge to dial: a `ws` server on a random port that checks the
 * path and site key, speaks the protocol (hello, command, cancel, request) and records
 * every frame the bridge sends, so tests can wait for the frames they pin.
 */
import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import {
  type BridgeToEdge,
  BridgeToEdgeSchema,
  type Command,
  type EdgeToBridge,
  PROTOCOL_VERSION,
} from '../../../src/schemas/bridge-protocol';

export interface FakeEdgeOptions {
  siteId?: string;
  siteKey?: string;
  heartbeatMs?: number;
  /** Send `hello` on connect (false plays an edge that hangs after the upgrade). */
  sayHello?: boolean;
  /** Answer pings (false plays a half-open connection that swallows everything). */
  autoPong?: boolean;
}

export class FakeEdge {
  /** Every frame received, in order, across connections. */
  readonly frames: BridgeToEdge[] = [];
  /** Frames that failed the protocol schema (should stay empty). */
  readonly invalid: unknown[] = [];
  /** HTTP status of every upgrade attempt (101 accepted, 401 refused …). */
  readonly attempts: number[] = [];
  /** Answer upgrades with this status instead of accepting them (e.g. 401). */
  refuseWith: number | undefined;
  private socket: WebSocket | undefined;
  private readonly wss: WebSocketServer;
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly server: Server,
    readonly options: Required<FakeEdgeOptions>,
  ) {
    this.wss = new WebSocketServer({ noServer: true, autoPong: options.autoPong });
  }

  static async start(options: FakeEdgeOptions = {}): Promise<FakeEdge> {
    const server = createServer((_req, res) => res.writeHead(404).end());
    const edge = new FakeEdge(server, {
      siteId: 'local',
      siteKey: 'site-key-for-tests',
      heartbeatMs: 50,
      sayHello: true,
      autoPong: true,
      ...options,
    });
    server.on('upgrade', (req, socket, head) => edge.upgrade(req, socket, head));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return edge;
  }

  get url(): string {
    const address = this.server.address();
    if (!address || typeof address === 'string') throw new Error('not listening');
    return `http://127.0.0.1:${address.port}`;
  }

  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  send(frame: EdgeToBridge): void {
    if (!this.socket) throw new Error('no bridge connected');
    this.socket.send(JSON.stringify(frame));
  }

  sendRaw(text: string): void {
    this.socket?.send(text);
  }

  command(command: Command): void {
    this.send({ type: 'command', command });
  }

  /** Cuts the link the way a network failure does (no close handshake). */
  dropConnection(): void {
    this.socket?.terminate();
    this.socket = undefined;
  }

  /** Resolves with the first recorded frame (from `from` on) matching `predicate`. */
  async waitFor<T extends BridgeToEdge>(predicate: (frame: BridgeToEdge) => frame is T, timeoutMs?: number, from?: number): Promise<T>;
  async waitFor(predicate: (frame: BridgeToEdge) => boolean, timeoutMs?: number, from?: number): Promise<BridgeToEdge>;
  async waitFor(predicate: (frame: BridgeToEdge) => boolean, timeoutMs = 5_000, from = 0): Promise<BridgeToEdge> {
    return this.until(() => this.frames.slice(from).find(predicate), timeoutMs, 'a matching frame');
  }

  /** Resolves when `check` returns something other than undefined/false. */
  async until<T>(check: () => T | undefined | false, timeoutMs = 5_000, what = 'a condition'): Promise<T> {
    const first = check();
    if (first !== undefined && first !== false) return first;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(poll);
        reject(new Error(`fake edge: timed out waiting for ${what}; frames so far: ${JSON.stringify(this.frames.map((f) => f.type))}`));
      }, timeoutMs);
      const poll = () => {
        const value = check();
        if (value === undefined || value === false) return;
        clearTimeout(timer);
        this.waiters.delete(poll);
        resolve(value);
      };
      this.waiters.add(poll);
    });
  }

  /** Frames of one command, by type. */
  framesOf(commandId: string, type?: BridgeToEdge['type']): BridgeToEdge[] {
    return this.frames.filter((f) => 'commandId' in f && f.commandId === commandId && (type === undefined || f.type === type));
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const expectedPath = `/api/v1/sites/${this.options.siteId}/bridge`;
    const status =
      this.refuseWith ??
      (req.url !== expectedPath ? 404 : req.headers.authorization !== `Bearer ${this.options.siteKey}` ? 401 : undefined);
    if (status !== undefined) {
      this.attempts.push(status);
      socket.end(`HTTP/1.1 ${status} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      this.notify();
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.attempts.push(101);
      this.socket = ws;
      ws.on('message', (data) => {
        const parsed = BridgeToEdgeSchema.safeParse(JSON.parse(data.toString()));
        if (parsed.success) this.frames.push(parsed.data);
        else this.invalid.push(JSON.parse(data.toString()));
        this.notify();
      });
      ws.on('close', () => this.notify());
      if (this.options.sayHello)
        ws.send(
          JSON.stringify({
            type: 'hello',
            siteId: this.options.siteId,
            protocolVersion: PROTOCOL_VERSION,
            leaseMs: this.options.heartbeatMs * 4,
            heartbeatMs: this.options.heartbeatMs,
          } satisfies EdgeToBridge),
        );
      this.notify();
    });
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
