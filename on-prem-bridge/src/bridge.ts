/**
 * One bridge: the runner, the edge link and the request handler wired together. main.ts
 * builds it from the configuration and real drivers; tests build it with in-memory
 * drivers and a fake edge, and build a second one to play a restarted process.
 */
import packageJson from '../../package.json' with { type: 'json' };
import type { EdgeToBridge, SiteRequest } from '../../src/schemas/bridge-protocol';
import { type EdgeLink, type LinkTiming, createEdgeLink } from './edge-link';
import type { Logger } from './logger';
import type { BridgeMetrics } from './metrics';
import { type Runner, createRunner } from './runner';
import type { TaskDeps } from './tasks/context';
import { createTaskRegistry } from './tasks';
import { desktopMetrics } from './tasks/desktop-metrics';
import { desktopSnapshots } from './tasks/desktop-snapshots';
import { takeInventory } from './tasks/inventory';
import { openSession } from './tasks/open-session';
import { endSharedSessions } from './tasks/end-shared-sessions';
import { shareSession } from './tasks/share-session';
import { gpuInventory, selkiesCredentials } from './tasks/selkies';

export const BRIDGE_VERSION: string = packageJson.version;

const CAPACITY_CHECK_MS = 500;
const CAPACITY_REPORT_MS = 60_000;

/** A Guacamole login is quick; an edge waiting on a browser should hear back soon either way. */
const REQUEST_TIMEOUT_MS = 30_000;

export interface BridgeOptions {
  edgeUrl: string;
  siteId: string;
  siteKey: string;
  concurrency: number;
  deps: TaskDeps;
  log: Logger;
  linkTiming?: Partial<LinkTiming>;
  random?: () => number;
  /** Where commands, durations, backend errors and the link's state are counted (metrics.ts). */
  metrics?: BridgeMetrics;
}

export interface Bridge {
  readonly runner: Runner;
  readonly link: EdgeLink;
  start(): void;
  /** Graceful stop: finish running commands (up to `drainTimeoutMs`), then close the link. */
  stop(drainTimeoutMs: number): Promise<{ unfinished: string[] }>;
}

export function createBridge(options: BridgeOptions): Bridge {
  const { deps, log } = options;
  const stopping = new AbortController();

  const runner = createRunner({
    tasks: createTaskRegistry(deps),
    send: (frame) => link.send(frame),
    log,
    concurrency: options.concurrency,
    metrics: options.metrics,
  });

  const answer = async (request: SiteRequest, signal: AbortSignal, requestLog: Logger) => {
    switch (request.op) {
      case 'open_session':
        return openSession(deps, request, signal, requestLog.child({ desktopId: request.desktopId }));
      case 'inventory':
        return takeInventory(deps, signal, requestLog);
      case 'share_session':
        return shareSession(deps, request, signal, requestLog.child({ desktopId: request.desktopId }));
      case 'end_shared_sessions':
        return endSharedSessions(deps, request, signal, requestLog.child({ desktopId: request.desktopId }));
      case 'session_credentials':
        return deps.selkies
          ? selkiesCredentials({ ...deps, selkies: deps.selkies }, request.desktopId)
          : { ok: false as const, error: 'this bridge runs no Selkies sessions' };
      case 'desktop_metrics':
        return desktopMetrics(deps, request);
      case 'desktop_snapshots':
        return desktopSnapshots(deps, request.desktopId, signal, requestLog.child({ desktopId: request.desktopId }));
    }
  };

  const handleRequest = async (frame: Extract<EdgeToBridge, { type: 'request' }>) => {
    const { request } = frame;
    const requestLog = log.child({ requestId: frame.requestId, op: request.op });
    const signal = AbortSignal.any([stopping.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]);
    const result = await answer(request, signal, requestLog);
    link.send({ type: 'response', requestId: frame.requestId, ...result });
  };

  const link: EdgeLink = createEdgeLink({
    edgeUrl: options.edgeUrl,
    siteId: options.siteId,
    siteKey: options.siteKey,
    bridgeVersion: BRIDGE_VERSION,
    log,
    activeCommandIds: runner.activeCommandIds,
    timing: options.linkTiming,
    random: options.random,
    onFrame: (frame) => {
      switch (frame.type) {
        case 'command':
          runner.submit(frame.command);
          return;
        case 'cancel':
          runner.cancel(frame.commandId, frame.reason);
          return;
        case 'request':
          void handleRequest(frame);
          return;
      }
    },
  });

  options.metrics?.setEdgeConnected(() => link.live);

  // The site's GPUs, reported to the edge (which books sessions against them) on every
  // new connection and then every minute, so a node added or drained shows up.
  let reportedLive = false;
  let lastReport = 0;
  const reportCapacity = async () => {
    if (!deps.selkies || !link.live) {
      reportedLive = link.live;
      return;
    }
    if (reportedLive && Date.now() - lastReport < CAPACITY_REPORT_MS) return;
    try {
      link.send({ type: 'capacity', gpus: await gpuInventory(deps.selkies.driver) });
      reportedLive = true;
      lastReport = Date.now();
    } catch (err) {
      log.warn('could not read the GPU inventory', { error: err });
    }
  };
  let capacityTimer: ReturnType<typeof setInterval> | undefined;

  return {
    runner,
    link,
    start: () => {
      link.start();
      if (deps.selkies) capacityTimer = setInterval(() => void reportCapacity(), CAPACITY_CHECK_MS);
    },
    async stop(drainTimeoutMs) {
      clearInterval(capacityTimer);
      const unfinished = await runner.drain(drainTimeoutMs);
      stopping.abort();
      await link.close();
      return { unfinished };
    },
  };
}
