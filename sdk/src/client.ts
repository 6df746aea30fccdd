/**
 * The client: the generated, typed openapi-fetch client underneath, and on top the calls an
 * integration makes, each answering the envelope's `data` or throwing a typed error.
 */
import createOpenApiClient from 'openapi-fetch';
import { ConnectionError, errorFromResponse } from './errors.ts';
import type { paths } from './generated/api.ts';
import { type WaitOptions, waitForStatus } from './live.ts';
import { type Fetch, type RetryOptions, retryingFetch } from './retry.ts';
import type {
  ConnectInfo,
  CreateDesktopInput,
  Desktop,
  DesktopPage,
  DesktopStatus,
  DesktopStatusInfo,
  DesktopWithSite,
  ListDesktopsQuery,
  Pool,
  PoolInput,
  PoolView,
  SnapshotList,
  SnapshotOperation,
  SnapshotScheduleSetting,
  SnapshotScheduleView,
  TakeSnapshotInput,
  Template,
} from './types.ts';

export interface ClientOptions {
  /** Where the API is, e.g. https://desktops.example.com (no /api/v1). */
  baseUrl: string;
  /** A bearer JWT, or a function that answers one (called for every request, so it may refresh). */
  token: string | (() => string | Promise<string>);
  /** Retries of 429 and 503 answers (Retry-After honoured) and of failed connections where safe. */
  retry?: RetryOptions;
  /** A fetch of your own (default: the global one). */
  fetch?: (request: Request) => Promise<Response>;
}

export interface CreateOptions {
  /**
   * Makes the create safe to repeat: the same key within 24 h answers the same desktop.
   * The SDK makes one (a random UUID) when none is given, and sends it again on its own
   * retries; give your own to repeat a create across restarts of your process.
   */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface CdaasClient {
  desktops: {
    create(input?: CreateDesktopInput, options?: CreateOptions): Promise<Desktop>;
    get(id: string, options?: RequestOptions): Promise<DesktopWithSite>;
    status(id: string, options?: RequestOptions): Promise<DesktopStatusInfo>;
    list(query?: ListDesktopsQuery, options?: RequestOptions): Promise<DesktopPage>;
    start(id: string, options?: RequestOptions): Promise<Desktop>;
    stop(id: string, options?: RequestOptions): Promise<Desktop>;
    delete(id: string, options?: RequestOptions): Promise<Desktop>;
    /**
     * Starts rebuilding a RUNNING, STOPPED or FAILED VM desktop on a new VM from its template, keeping its data disk where the
     * template has one: the desktop is PROVISIONING; waitUntil(id, 'RUNNING') for the end. Its vmId changes.
     */
    rebuild(id: string, options?: RequestOptions): Promise<Desktop>;
    /** A URL that opens the desktop (once, within a few minutes), and for WebRTC desktops its credentials. */
    connect(id: string, options?: RequestOptions): Promise<ConnectInfo>;
    /** Resolves when the desktop is in `status`; rejects with DesktopFailedError (FAILED/DELETED) or WaitTimeoutError. */
    waitUntil(id: string, status: DesktopStatus, options?: WaitOptions): Promise<Desktop>;
    /** Snapshots of a VM desktop (a WebRTC desktop answers ConflictError SNAPSHOTS_UNSUPPORTED). */
    snapshots: {
      /** As Proxmox lists them now, oldest first; `unsupported` says why the desktop's storage cannot take any. */
      list(id: string, options?: RequestOptions): Promise<SnapshotList>;
      /** Starts taking one (the desktop keeps its status); the answer names it. Over the quota: QuotaExceededError. */
      create(id: string, input?: TakeSnapshotInput, options?: RequestOptions): Promise<SnapshotOperation>;
      remove(id: string, name: string, options?: RequestOptions): Promise<SnapshotOperation>;
      /** Starts going back to it: the desktop is STARTING; waitUntil(id, 'RUNNING') for the end. */
      restore(id: string, name: string, options?: RequestOptions): Promise<Desktop>;
      /** Scheduled snapshots (auto-<time>, kept per retention; outside the quota): its own setting wins over its template's. */
      schedule: {
        get(id: string, options?: RequestOptions): Promise<SnapshotScheduleView>;
        /** Sets the desktop's own: a schedule, or `{ off: true }`. */
        set(id: string, setting: SnapshotScheduleSetting, options?: RequestOptions): Promise<SnapshotScheduleView>;
        /** Clears the desktop's own: its template's applies again. */
        clear(id: string, options?: RequestOptions): Promise<SnapshotScheduleView>;
      };
    };
  };
  templates: {
    list(options?: RequestOptions): Promise<Template[]>;
  };
  /** Warm pools, for admins (others get ForbiddenError): a create for a pooled template is answered by a ready desktop. */
  pools: {
    list(options?: RequestOptions): Promise<Pool[]>;
    get(id: string, options?: RequestOptions): Promise<PoolView>;
    /** Creates or replaces the pool `id`; `paused: true` stops it building. */
    put(id: string, input: PoolInput, options?: RequestOptions): Promise<Pool>;
    /** Removes it; its unclaimed members are destroyed. */
    remove(id: string, options?: RequestOptions): Promise<Pool>;
  };
}

type Answer<T> = { data?: { data: T }; error?: unknown; response: Response };

export function createClient(options: ClientOptions): CdaasClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const fetchImpl: Fetch = options.fetch ?? ((request) => globalThis.fetch(request));
  const fetch = retryingFetch(async (request) => {
    try {
      return await fetchImpl(request);
    } catch (err) {
      if (request.signal.aborted) throw err;
      throw new ConnectionError(`could not reach ${baseUrl}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  }, options.retry);
  const authorization = async () => `Bearer ${typeof options.token === 'function' ? await options.token() : options.token}`;

  const api = createOpenApiClient<paths>({ baseUrl, fetch });
  api.use({
    async onRequest({ request }) {
      request.headers.set('authorization', await authorization());
      return request;
    },
  });

  async function data<T>(call: Promise<Answer<T>>): Promise<T> {
    const { data: envelope, error, response } = await call;
    if (!response.ok || !envelope) throw errorFromResponse(response, error ?? null);
    return envelope.data;
  }

  const path = (id: string) => ({ params: { path: { id } } });

  const desktops: CdaasClient['desktops'] = {
    create: (input = {}, opts = {}) =>
      data(
        api.POST('/api/v1/desktops', {
          body: input,
          params: { header: { 'idempotency-key': opts.idempotencyKey ?? crypto.randomUUID() } },
          signal: opts.signal,
        }),
      ),
    get: (id, opts = {}) => data(api.GET('/api/v1/desktops/{id}', { ...path(id), signal: opts.signal })),
    status: (id, opts = {}) => data(api.GET('/api/v1/desktops/{id}/status', { ...path(id), signal: opts.signal })),
    list: (query = {}, opts = {}) => data(api.GET('/api/v1/desktops', { params: { query }, signal: opts.signal })),
    start: (id, opts = {}) => data(api.POST('/api/v1/desktops/{id}/start', { ...path(id), signal: opts.signal })),
    stop: (id, opts = {}) => data(api.POST('/api/v1/desktops/{id}/stop', { ...path(id), signal: opts.signal })),
    delete: (id, opts = {}) => data(api.DELETE('/api/v1/desktops/{id}', { ...path(id), signal: opts.signal })),
    rebuild: (id, opts = {}) => data(api.POST('/api/v1/desktops/{id}/rebuild', { ...path(id), signal: opts.signal })),
    connect: (id, opts = {}) => data(api.GET('/api/v1/desktops/{id}/connect', { ...path(id), signal: opts.signal })),
    waitUntil: (id, status, opts) =>
      waitForStatus({ baseUrl, fetch, authorization, get: (desktopId, signal) => desktops.get(desktopId, { signal }) }, id, status, opts),
    snapshots: {
      list: (id, opts = {}) => data(api.GET('/api/v1/desktops/{id}/snapshots', { ...path(id), signal: opts.signal })),
      create: (id, input = {}, opts = {}) =>
        data(api.POST('/api/v1/desktops/{id}/snapshots', { ...path(id), body: input, signal: opts.signal })),
      remove: (id, name, opts = {}) =>
        data(api.DELETE('/api/v1/desktops/{id}/snapshots/{name}', { params: { path: { id, name } }, signal: opts.signal })),
      restore: (id, name, opts = {}) =>
        data(api.POST('/api/v1/desktops/{id}/snapshots/{name}/restore', { params: { path: { id, name } }, signal: opts.signal })),
      schedule: {
        get: (id, opts = {}) => data(api.GET('/api/v1/desktops/{id}/snapshot-schedule', { ...path(id), signal: opts.signal })),
        set: (id, setting, opts = {}) =>
          data(api.PUT('/api/v1/desktops/{id}/snapshot-schedule', { ...path(id), body: setting, signal: opts.signal })),
        clear: (id, opts = {}) => data(api.DELETE('/api/v1/desktops/{id}/snapshot-schedule', { ...path(id), signal: opts.signal })),
      },
    },
  };

  return {
    desktops,
    templates: { list: (opts = {}) => data(api.GET('/api/v1/templates', { signal: opts.signal })) },
    pools: {
      list: (opts = {}) => data(api.GET('/api/v1/admin/pools', { signal: opts.signal })),
      get: (poolId, opts = {}) => data(api.GET('/api/v1/admin/pools/{poolId}', { params: { path: { poolId } }, signal: opts.signal })),
      put: (poolId, input, opts = {}) =>
        data(api.PUT('/api/v1/admin/pools/{poolId}', { params: { path: { poolId } }, body: input, signal: opts.signal })),
      remove: (poolId, opts = {}) =>
        data(api.DELETE('/api/v1/admin/pools/{poolId}', { params: { path: { poolId } }, signal: opts.signal })),
    },
  };
}
