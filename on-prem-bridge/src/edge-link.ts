/**
 * The bridge's only connection: an outbound WebSocket to the site's hub at the edge
 * (`GET {EDGE_URL}/api/v1/sites/{SITE_ID}/bridge`, Bearer site key). It never gives
 * up: reconnects with capped, jittered exponential backoff, and much more slowly when
 * the edge rejects the site key, since that needs an operator.
 *
 * Per connection: `ready` first (what this process is running), then after the edge's
 * `hello` the frames buffered while the link was down, then `heartbeat` every
 * `heartbeatMs`. Results are buffered because the edge must learn them; `accepted`,
 * `response` and `heartbeat` are not, since they only mean something on the socket
 * that asked (the edge redelivers commands and retries requests after a reconnect).
 */
import WebSocket from 'ws';
import { type BridgeToEdge, type EdgeToBridge, EdgeToBridgeSchema, PROTOCOL_VERSION } from '../../src/schemas/bridge-protocol';
import type { Logger } from './logger';

export interface LinkTiming {
  /** First reconnect delay ceiling; doubles per failed attempt. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Delay after the edge refused the site key (401/403). */
  authFailureBackoffMs: number;
  /** Limit for the HTTP upgrade, and again for the edge's `hello` after it. */
  handshakeTimeoutMs: number;
  /**
   * Without any frame or pong for this long the socket is presumed dead (a NAT or proxy
   * dropped it silently) and replaced. Default: three heartbeats.
   */
  deadAfterMs?: number;
}

export const DEFAULT_LINK_TIMING: LinkTiming = {
  initialBackoffMs: 250,
  maxBackoffMs: 15_000,
  authFailureBackoffMs: 60_000,
  handshakeTimeoutMs: 10_000,
};

export interface EdgeLinkOptions {
  edgeUrl: string;
  siteId: string;
  siteKey: string;
  bridgeVersion: string;
  log: Logger;
  /** Commands this process holds (queued or running), listed in `ready` and `heartbeat`. */
  activeCommandIds: () => string[];
  /** Every valid frame from the edge except `hello`, which the link handles itself. */
  onFrame: (frame: Exclude<EdgeToBridge, { type: 'hello' }>) => void;
  timing?: Partial<LinkTiming>;
  random?: () => number;
  /** Upper bound on frames kept while disconnected; progress frames are dropped first. */
  maxBuffered?: number;
}

export interface EdgeLink {
  /** Starts connecting (and reconnecting) in the background. */
  start(): void;
  /** Sends now, or buffers progress/complete/fail until the next `hello`. */
  send(frame: BridgeToEdge): void;
  /** Closes the socket and stops reconnecting. */
  close(): Promise<void>;
  /** True between the edge's `hello` and the socket closing. */
  readonly live: boolean;
  /** The deployment id of the last `hello` (null before one, or from an edge that sends none). */
  readonly deploymentId: string | null;
  /** Frames waiting for the next connection. */
  readonly buffered: number;
}

const BUFFERED_TYPES = new Set<BridgeToEdge['type']>(['progress', 'complete', 'fail']);

export function edgeSocketUrl(edgeUrl: string, siteId: string): string {
  const url = new URL(`${edgeUrl.replace(/\/+$/, '')}/api/v1/sites/${encodeURIComponent(siteId)}/bridge`);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  return url.toString();
}

export function createEdgeLink(options: EdgeLinkOptions): EdgeLink {
  const timing = { ...DEFAULT_LINK_TIMING, ...options.timing };
  const random = options.random ?? Math.random;
  const maxBuffered = options.maxBuffered ?? 10_000;
  const url = edgeSocketUrl(options.edgeUrl, options.siteId);
  const log = options.log.child({ component: 'edge-link' });

  let socket: WebSocket | null = null;
  let live = false;
  let stopped = false;
  let failures = 0;
  let buffer: BridgeToEdge[] = [];
  let reconnectTimer: NodeJS.Timeout | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;
  let helloTimer: NodeJS.Timeout | undefined;
  let lastHeardAt = 0;
  let deploymentId: string | null = null;
  let closed: Promise<void> = Promise.resolve();

  const write = (ws: WebSocket, frame: BridgeToEdge) => {
    ws.send(JSON.stringify(frame), (err) => {
      // The socket died under the frame; a result goes back into the buffer for the next
      // connection (the edge tolerates duplicates), anything else is moot.
      if (err && BUFFERED_TYPES.has(frame.type)) keep(frame);
    });
  };

  const keep = (frame: BridgeToEdge) => {
    buffer.push(frame);
    if (buffer.length <= maxBuffered) return;
    // Progress is superseded by the result that follows it; only when every buffered frame
    // is a result does the oldest go (the edge's redelivery then recovers it from `recent`).
    const [dropped] = buffer.splice(
      Math.max(
        buffer.findIndex((f) => f.type === 'progress'),
        0,
      ),
      1,
    );
    log.warn('send buffer full; dropped the oldest frame', { type: dropped?.type, limit: maxBuffered });
  };

  const connect = () => {
    reconnectTimer = undefined;
    if (stopped) return;
    log.debug('connecting to the edge', { url });
    const ws = new WebSocket(url, {
      headers: { Authorization: `Bearer ${options.siteKey}` },
      handshakeTimeout: timing.handshakeTimeoutMs,
      // Frames are small JSON; compressing each one costs more CPU than it saves.
      perMessageDeflate: false,
    });
    socket = ws;
    let refusedStatus: number | undefined;
    let sawHello = false;
    closed = new Promise((resolve) => ws.once('close', () => resolve()));

    ws.on('unexpected-response', (_req, res) => {
      refusedStatus = res.statusCode;
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      lastHeardAt = Date.now();
      // An edge that accepts the socket but never says hello is as good as down.
      helloTimer = setTimeout(() => {
        log.warn('the edge did not say hello; reconnecting', { waitedMs: timing.handshakeTimeoutMs });
        ws.terminate();
      }, timing.handshakeTimeoutMs);
      log.info('connected to the edge; waiting for hello', { url });
      // `ready` goes first on every connection so the hub can re-adopt our leases at once.
      write(ws, {
        type: 'ready',
        protocolVersion: PROTOCOL_VERSION,
        bridgeVersion: options.bridgeVersion,
        running: options.activeCommandIds(),
      });
    });
    ws.on('pong', () => {
      lastHeardAt = Date.now();
    });
    ws.on('message', (data, isBinary) => {
      lastHeardAt = Date.now();
      const frame = parseFrame(data, isBinary);
      if (!frame) return;
      if (frame.type === 'hello') {
        sawHello = true;
        onHello(ws, frame);
        return;
      }
      options.onFrame(frame);
    });
    ws.on('error', (err) => {
      // 'close' always follows; this only adds the reason to the log.
      if (refusedStatus === undefined) log.debug('edge socket error', { error: err });
    });
    ws.on('close', (code, reason) => {
      if (socket === ws) socket = null;
      live = false;
      clearTimeout(helloTimer);
      clearInterval(heartbeatTimer);
      if (stopped) return;
      failures = sawHello ? 0 : failures + 1;
      let delay: number;
      if (refusedStatus === 401 || refusedStatus === 403) {
        delay = Math.floor(timing.authFailureBackoffMs * (0.5 + random() / 2));
        log.error('the edge rejected this site key; check SITE_ID and SITE_KEY', {
          status: refusedStatus,
          siteId: options.siteId,
          retryInMs: delay,
        });
      } else {
        // Even after a healthy connection wait a little: an edge that closes right after
        // hello must not turn this into a busy loop.
        delay = backoff(Math.max(1, failures));
        const fields = {
          code,
          reason: reason.toString(),
          status: refusedStatus,
          attempt: failures,
          retryInMs: delay,
          buffered: buffer.length,
        };
        if (sawHello) log.warn('lost the connection to the edge; reconnecting', fields);
        // Attempts 1, 2, 4, 8…: an outage stays visible without a line per attempt.
        else if ((failures & (failures - 1)) === 0) log.warn('cannot reach the edge; retrying', fields);
        else log.debug('cannot reach the edge; retrying', fields);
      }
      reconnectTimer = setTimeout(connect, delay);
    });
  };

  // Capped exponential with equal jitter (half fixed, half random): a fleet of bridges
  // does not reconnect in step after an edge deploy, yet no attempt comes back instantly.
  const backoff = (attempt: number) => {
    const ceiling = Math.min(timing.maxBackoffMs, timing.initialBackoffMs * 2 ** Math.min(attempt - 1, 30));
    return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
  };

  const onHello = (ws: WebSocket, hello: Extract<EdgeToBridge, { type: 'hello' }>) => {
    if (hello.deploymentId) {
      if (deploymentId && deploymentId !== hello.deploymentId)
        log.warn('the edge names another deployment than before; new objects get its mark', { was: deploymentId, now: hello.deploymentId });
      deploymentId = hello.deploymentId;
    }
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      log.warn('edge speaks another protocol version', { edge: hello.protocolVersion, bridge: PROTOCOL_VERSION });
    }
    clearTimeout(helloTimer);
    live = true;
    const pending = buffer;
    buffer = [];
    log.info('edge link ready', {
      siteId: hello.siteId,
      deploymentId: hello.deploymentId ?? null,
      heartbeatMs: hello.heartbeatMs,
      leaseMs: hello.leaseMs,
      flushing: pending.length,
    });
    for (const frame of pending) write(ws, frame);

    clearInterval(heartbeatTimer);
    const deadAfterMs = timing.deadAfterMs ?? hello.heartbeatMs * 3;
    heartbeatTimer = setInterval(() => {
      if (Date.now() - lastHeardAt > deadAfterMs) {
        log.warn('no sign of life from the edge; replacing the connection', { silentForMs: Date.now() - lastHeardAt });
        ws.terminate();
        return;
      }
      write(ws, { type: 'heartbeat', running: options.activeCommandIds() });
      ws.ping();
    }, hello.heartbeatMs);
  };

  const parseFrame = (data: WebSocket.RawData, isBinary: boolean): EdgeToBridge | null => {
    if (isBinary) {
      log.warn('dropped a binary frame from the edge');
      return null;
    }
    let json: unknown;
    try {
      json = JSON.parse(data.toString());
    } catch {
      log.warn('dropped a frame that is not JSON');
      return null;
    }
    const parsed = EdgeToBridgeSchema.safeParse(json);
    if (!parsed.success) {
      const type = typeof json === 'object' && json !== null && 'type' in json ? String(json.type) : undefined;
      log.warn('dropped an invalid frame from the edge', {
        type,
        issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`),
      });
      return null;
    }
    return parsed.data;
  };

  return {
    start() {
      stopped = false;
      if (!socket && !reconnectTimer) connect();
    },
    send(frame) {
      if (live && socket?.readyState === WebSocket.OPEN) {
        write(socket, frame);
      } else if (BUFFERED_TYPES.has(frame.type)) {
        keep(frame);
      } else {
        log.debug('edge link down; dropped a frame that only matters on a live link', { type: frame.type });
      }
    },
    async close() {
      stopped = true;
      clearTimeout(reconnectTimer);
      clearTimeout(helloTimer);
      clearInterval(heartbeatTimer);
      const ws = socket;
      if (!ws) return;
      if (ws.readyState === WebSocket.OPEN) ws.close(1001, 'bridge shutting down');
      else ws.terminate();
      // A peer that never answers the close frame must not hold the shutdown hostage.
      const forced = setTimeout(() => ws.terminate(), 2_000);
      await closed;
      clearTimeout(forced);
    },
    get live() {
      return live;
    },
    get deploymentId() {
      return deploymentId;
    },
    get buffered() {
      return buffer.length;
    },
  };
}
