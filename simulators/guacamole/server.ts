/**
 * A contract-faithful Apache Guacamole simulator (web app + JDBC/PostgreSQL auth, no guacd): the REST API under
 * `<base>/api`, the stand-in web client at `<base>/`, the WebSocket tunnel at `<base>/websocket-tunnel`, and
 * simulator-only control endpoints under `<base>/__sim/`. Behaviour follows guacamole-client's REST services
 * (guacamole/src/main/java/org/apache/guacamole/rest/), named in the comments.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { listen, readBodyBytes, type SimTls, simulatorServer } from '../shared/http-server';
import { CLIENT_PAGE_HTML } from './client-page';
import { apiErrorBody, GuacError, internalError, notFound, sessionDenied, unknownDataSource } from './errors';
import { type FaultConfig, FaultConfigSchema, FaultInjector } from './faults';
import { isObjectPermissionType, type ObjectPermissionType } from './permissions';
import type { PasswordPolicy } from './password-policy';
import { type DataContext, GuacamoleState, type Session } from './state';
import { attachTunnel } from './tunnel';

export interface GuacamoleSimOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Where the web app is mounted, without a trailing slash. */
  basePath: string;
  adminUsername: string;
  adminPassword: string;
  /** Identifier of the JDBC auth provider, reported as `dataSource` on login. */
  dataSource: string;
  availableDataSources: string[];
  /** api-session-timeout (HashTokenSessionMap). */
  sessionTimeoutMinutes: number;
  /** Added latency for every /api request. */
  requestDelayMs: number;
  /** api-max-request-size (RequestSizeFilter). */
  maxRequestBytes: number;
  /** Clock for session expiry; tests pass a fake one instead of sleeping. */
  now: () => number;
  /** HTTPS with this certificate (plain HTTP stays possible on a loopback address). */
  tls?: SimTls;
  /** The JDBC password policy (guacamole.properties `postgresql-user-password-*`); none by default. */
  passwordPolicy?: PasswordPolicy;
}

export interface GuacamoleSimStats {
  requests: number;
  apiRequests: number;
  /** API requests per endpoint, e.g. `{"GET /session/data/{dataSource}/connections": 3}`. */
  apiRequestsByRoute: Record<string, number>;
  logins: number;
  failedLogins: number;
  faults: FaultConfig | null;
  faultsInjected: Record<string, number>;
  /** Faults per endpoint, e.g. `{"POST /session/data/{dataSource}/connections": {"http_500": 1, "http_403": 0}}`. */
  faultsInjectedByRoute: Record<string, Record<string, number>>;
  sessions: number;
  connections: number;
  users: number;
  activeConnections: number;
  tunnelsOpened: number;
  tunnelsRefused: number;
}

type Snapshot = ReturnType<GuacamoleState['snapshot']>;

export interface GuacamoleSimulator {
  /** e.g. http://127.0.0.1:8080/guacamole */
  url: string;
  port: number;
  stop(): Promise<void>;
  /** Stored connections, parameters included. */
  connections(): Snapshot['connections'];
  users(): Snapshot['users'];
  /** Open tunnels, i.e. what GET …/activeConnections lists for an admin. */
  activeTunnels(): Snapshot['activeConnections'];
  sessions(): Snapshot['sessions'];
  /** What a web-app restart does: every token and tunnel is gone, the database stays. */
  restart(): void;
  /** Back to a fresh database (admin only), no sessions, no faults, counters zeroed. */
  reset(): void;
  setFaults(config: FaultConfig | null): void;
  stats(): GuacamoleSimStats;
}

const DEFAULTS: GuacamoleSimOptions = {
  host: '127.0.0.1',
  port: 0,
  basePath: '/guacamole',
  adminUsername: 'guacadmin',
  adminPassword: 'guacadmin',
  dataSource: 'postgresql',
  availableDataSources: ['postgresql', 'postgresql-shared'],
  sessionTimeoutMinutes: 60,
  requestDelayMs: 0,
  maxRequestBytes: 2 * 1024 * 1024,
  now: Date.now,
};

class PlainHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Reads the whole body; past the limit it keeps draining (so the client can read the answer) but keeps nothing. */
function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new GuacError(400, 'BAD_REQUEST', 'The request body is not valid JSON.');
  }
}

/**
 * The endpoint of an /api request with its variable parts named, for the per-endpoint fault counts:
 * `PATCH /session/data/{dataSource}/users/{id}/permissions`, `DELETE /tokens/{token}`.
 */
function routeLabel(method: string, segments: string[]): string {
  const [first, second, third, ...rest] = segments;
  let parts: string[];
  if (first === 'session' && second === 'data' && third !== undefined) {
    const [collection, id, ...sub] = rest;
    parts = [first, second, '{dataSource}', ...(collection ? [collection] : []), ...(id ? ['{id}'] : []), ...sub];
  } else if (first === 'tokens' && second !== undefined) {
    parts = [first, '{token}'];
  } else if (first === 'session' && second === 'tunnels' && third !== undefined) {
    const [sub, what, id] = rest;
    parts = [first, second, '{tunnel}', ...(sub ? [sub] : []), ...(what ? [what] : []), ...(id ? ['{id}'] : [])];
  } else {
    parts = segments;
  }
  return `${method} /${parts.join('/')}`;
}

/** `?permission=READ&permission=UPDATE`; a value that is no ObjectPermission.Type fails JAX-RS param conversion → 404. */
function permissionFilter(query: URLSearchParams): ObjectPermissionType[] {
  const values = query.getAll('permission');
  if (!values.every(isObjectPermissionType)) throw new PlainHttpError(404, 'Not Found');
  return values;
}

function basicCredentials(header: string | undefined): { username: string; password: string } | null {
  const match = /^Basic\s+(.+)$/i.exec(header ?? '');
  if (!match?.[1]) return null;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export async function startGuacamoleSimulator(options: Partial<GuacamoleSimOptions> = {}): Promise<GuacamoleSimulator> {
  const config: GuacamoleSimOptions = { ...DEFAULTS, ...options };
  const base = config.basePath.replace(/\/+$/, '');
  const state = new GuacamoleState({
    adminUsername: config.adminUsername,
    adminPassword: config.adminPassword,
    dataSource: config.dataSource,
    availableDataSources: config.availableDataSources.includes(config.dataSource)
      ? config.availableDataSources
      : [config.dataSource, ...config.availableDataSources],
    sessionTimeoutMs: config.sessionTimeoutMinutes * 60_000,
    now: config.now,
    passwordPolicy: config.passwordPolicy,
  });
  const faults = new FaultInjector();
  const counters = { requests: 0, apiRequests: 0, byRoute: new Map<string, number>() };

  const stats = (): GuacamoleSimStats => {
    const snapshot = state.snapshot();
    return {
      requests: counters.requests,
      apiRequests: counters.apiRequests,
      apiRequestsByRoute: Object.fromEntries(counters.byRoute),
      logins: state.counters.logins,
      failedLogins: state.counters.failedLogins,
      faults: faults.current(),
      faultsInjected: { ...faults.injected },
      faultsInjectedByRoute: Object.fromEntries([...faults.injectedByRoute].map(([route, counts]) => [route, { ...counts }])),
      sessions: snapshot.sessions.length,
      connections: snapshot.connections.length,
      users: snapshot.users.length,
      activeConnections: snapshot.activeConnections.length,
      tunnelsOpened: state.counters.tunnelsOpened,
      tunnelsRefused: state.counters.tunnelsRefused,
    };
  };

  const reset = () => {
    state.reset();
    faults.configure(null);
    faults.resetCounters();
    counters.requests = 0;
    counters.apiRequests = 0;
    counters.byRoute.clear();
  };

  /** `data/{dataSource}/…` of a session. Returns the response to send. */
  function dataRoute(method: string, ctx: DataContext, session: Session, path: string[], query: URLSearchParams, body: () => unknown) {
    const username = session.username;
    const [collection, id, sub, ...extra] = path;
    if (collection === undefined) throw new PlainHttpError(404, 'Not Found');
    // ActiveConnectionResource: …/activeConnections/{id}/sharingCredentials/{sharingProfile}.
    if (collection === 'activeConnections' && sub === 'sharingCredentials' && extra.length === 1 && ctx === 'primary') {
      if (method !== 'GET') throw new PlainHttpError(405, 'Method Not Allowed');
      return { status: 200, body: state.sharingCredentials(username, id ?? '', extra[0] ?? '') };
    }
    if (extra.length > 0) throw new PlainHttpError(404, 'Not Found');

    if (ctx === 'secondary') {
      // The `-shared` context holds the connections of the share keys this session was given (SharedUserContext).
      if (method !== 'GET') throw new GuacError(403, 'PERMISSION_DENIED', 'Permission denied.');
      if (collection === 'connections' && sub === undefined)
        return { status: 200, body: id === undefined ? state.sharedConnections(session) : state.getSharedConnection(session, id) };
      if (id === undefined) return { status: 200, body: {} };
      throw notFound(id);
    }

    const allow = (...methods: string[]) => {
      if (!methods.includes(method)) throw new PlainHttpError(405, 'Method Not Allowed');
    };

    switch (collection) {
      case 'connections':
        if (id === undefined) {
          allow('GET', 'POST');
          if (method === 'GET') return { status: 200, body: state.listConnections(username, permissionFilter(query)) };
          return { status: 200, body: state.createConnection(username, body()) };
        }
        if (sub === 'parameters') {
          allow('GET');
          return { status: 200, body: state.connectionParameters(username, id) };
        }
        if (sub === 'history') {
          allow('GET');
          return { status: 200, body: state.connectionHistory(username, id) };
        }
        if (sub !== undefined) break;
        allow('GET', 'PUT', 'DELETE');
        if (method === 'GET') return { status: 200, body: state.getConnection(username, id) };
        if (method === 'PUT') {
          state.updateConnection(username, id, body());
          return { status: 204 };
        }
        state.deleteConnection(username, id);
        return { status: 204 };

      case 'connectionGroups':
        allow('GET');
        if (id === undefined) return { status: 200, body: {} };
        if (sub !== undefined && sub !== 'tree') break;
        return { status: 200, body: state.connectionGroup(username, id, sub === 'tree') };

      case 'users':
        if (id === undefined) {
          allow('GET', 'POST');
          if (method === 'GET') return { status: 200, body: state.listUsers(username, permissionFilter(query)) };
          return { status: 200, body: state.createUser(username, body()) };
        }
        if (sub === 'permissions' || sub === 'effectivePermissions') {
          allow(...(sub === 'permissions' ? ['GET', 'PATCH'] : ['GET']));
          if (method === 'GET') return { status: 200, body: state.getPermissions(username, id) };
          state.patchPermissions(username, id, body());
          return { status: 204 };
        }
        if (sub !== undefined) break;
        allow('GET', 'PUT', 'DELETE');
        if (method === 'GET') return { status: 200, body: state.getUser(username, id) };
        if (method === 'PUT') {
          state.updateUser(username, id, body());
          return { status: 204 };
        }
        state.deleteUser(username, id);
        return { status: 204 };

      case 'activeConnections':
        if (sub !== undefined) break;
        if (id === undefined && method === 'PATCH') return { status: 200, body: state.killActiveConnections(username, body()) };
        allow('GET');
        if (id !== undefined) return { status: 200, body: state.getActiveConnection(username, id) };
        return { status: 200, body: state.listActiveConnections(username) };

      case 'sharingProfiles':
        if (id === undefined) {
          allow('GET', 'POST');
          if (method === 'GET') return { status: 200, body: state.listSharingProfiles(username, permissionFilter(query)) };
          return { status: 200, body: state.createSharingProfile(username, body()) };
        }
        if (sub === 'parameters') {
          allow('GET');
          return { status: 200, body: state.sharingProfileParameters(username, id) };
        }
        if (sub !== undefined) break;
        allow('GET', 'DELETE');
        if (method === 'GET') return { status: 200, body: state.getSharingProfile(username, id) };
        state.deleteSharingProfile(username, id);
        return { status: 204 };

      case 'self':
        // `self` is the caller's own UserResource (SessionResource#getSelf): the user, or its permission sets.
        if (id === 'permissions' || id === 'effectivePermissions') {
          if (sub !== undefined) break;
          allow('GET');
          return { status: 200, body: state.getPermissions(username, username) };
        }
        if (id !== undefined) break;
        allow('GET');
        return { status: 200, body: state.getUser(username, username) };
    }
    throw new PlainHttpError(404, 'Not Found');
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, url: URL, rest: string): Promise<void> {
    counters.apiRequests++;
    if (config.requestDelayMs > 0) await sleep(config.requestDelayMs);
    const method = req.method ?? 'GET';
    const { body: raw, tooLarge } = await readBodyBytes(req, config.maxRequestBytes);
    const isForm = (req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded');
    const form = isForm ? new URLSearchParams(raw.toString('utf8')) : new URLSearchParams();
    const headerToken = req.headers['guacamole-token'];
    // AuthenticationService#getAuthenticationToken: the header wins over the query parameter.
    const token = (typeof headerToken === 'string' && headerToken !== '' ? headerToken : null) ?? url.searchParams.get('token');
    // RESTExceptionMapper only looks at the `token` request parameter (query or form) when invalidating.
    const tokenParameter = url.searchParams.get('token') ?? form.get('token');

    let segments: string[];
    try {
      segments = rest
        .split('/')
        .filter((segment) => segment !== '')
        .map(decodeURIComponent);
    } catch {
      sendText(res, 400, 'Bad Request');
      return;
    }

    try {
      if (tooLarge) throw new GuacError(413, 'BAD_REQUEST', 'Request body/entity too large.');

      const isSession = segments[0] === 'session';
      const label = routeLabel(method, segments);
      counters.byRoute.set(label, (counters.byRoute.get(label) ?? 0) + 1);
      const fault = faults.draw((kind) => kind === 'http_500' || (isSession && token !== null), label);
      if (fault === 'http_500') throw internalError();
      if (fault === 'http_403' && token !== null) {
        state.destroySession(token);
        throw sessionDenied();
      }

      const result = route(method, segments, { token, form, req, url, raw });
      if (result.status === 204) sendEmpty(res, 204);
      else sendJson(res, result.status, result.body);
    } catch (error) {
      if (error instanceof GuacError) {
        if (error.details.unauthorized && tokenParameter) state.destroySession(tokenParameter);
        sendJson(res, error.status, apiErrorBody(error));
      } else if (error instanceof PlainHttpError) {
        sendText(res, error.status, error.message);
      } else {
        console.error('guacamole simulator: unexpected error', error);
        sendJson(res, 500, apiErrorBody(internalError()));
      }
    }
  }

  function route(
    method: string,
    segments: string[],
    request: { token: string | null; form: URLSearchParams; req: IncomingMessage; url: URL; raw: Buffer },
  ): { status: number; body?: unknown } {
    const [first, second, third, fourth, ...rest] = segments;

    if (first === 'tokens' && second === undefined) {
      if (method !== 'POST') throw new PlainHttpError(405, 'Method Not Allowed');
      let username = request.form.get('username');
      let password = request.form.get('password');
      // TokenRESTService: without posted credentials the Basic header is used.
      if (username === null && password === null) {
        const basic = basicCredentials(request.req.headers.authorization);
        username = basic?.username ?? null;
        password = basic?.password ?? null;
      }
      const token = request.form.get('token') ?? request.url.searchParams.get('token');
      const newPassword = request.form.get('new-password');
      const confirmNewPassword = request.form.get('confirm-new-password');
      const key = request.form.get('key') ?? request.url.searchParams.get('key');
      return { status: 200, body: state.login({ username, password, token, newPassword, confirmNewPassword, key }) };
    }

    if (first === 'tokens' && second !== undefined && third === undefined) {
      if (method !== 'DELETE') throw new PlainHttpError(405, 'Method Not Allowed');
      if (!state.destroySession(second)) throw new GuacError(404, 'NOT_FOUND', 'No such token.');
      return { status: 204 };
    }

    if (first === 'session') {
      const session = state.session(request.token);
      if (second === undefined) {
        if (method !== 'DELETE') throw new PlainHttpError(405, 'Method Not Allowed');
        state.destroySession(session.token);
        return { status: 204 };
      }
      if (second === 'data' && third !== undefined) {
        const ctx = state.context(third);
        // A share-key session has only the `-shared` provider's context.
        if (session.username === '' && third !== state.sharedDataSource) throw unknownDataSource(third);
        const path = fourth === undefined ? [] : [fourth, ...rest];
        return dataRoute(method, ctx, session, path, request.url.searchParams, () => parseJsonBody(request.raw));
      }
      // TunnelCollectionResource / TunnelResource: this session's own tunnels.
      if (second === 'tunnels') {
        if (method !== 'GET') throw new PlainHttpError(405, 'Method Not Allowed');
        if (third === undefined) return { status: 200, body: state.listTunnels(session) };
        const [what, sub, profile, ...more] = [fourth, ...rest];
        if (what === 'activeConnection' && sub === 'sharingCredentials' && profile !== undefined && more.length === 0)
          return { status: 200, body: state.tunnelSharingCredentials(session, third, profile) };
      }
    }
    throw new PlainHttpError(404, 'Not Found');
  }

  /** Simulator-only control surface: never used by product code, only by tests and the dev tooling. */
  async function handleSim(req: IncomingMessage, res: ServerResponse, rest: string): Promise<void> {
    const method = req.method ?? 'GET';
    const { body } = await readBodyBytes(req, config.maxRequestBytes);
    if (rest === '/stats' && method === 'GET') return sendJson(res, 200, stats());
    if (rest === '/state' && method === 'GET') return sendJson(res, 200, state.snapshot());
    if (rest === '/faults' && method === 'POST') {
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        return sendJson(res, 400, { error: 'body must be JSON' });
      }
      const parsed = FaultConfigSchema.safeParse(json);
      if (!parsed.success) return sendJson(res, 400, { error: parsed.error.message });
      faults.configure(parsed.data);
      return sendEmpty(res, 204);
    }
    if (rest === '/faults' && method === 'DELETE') {
      faults.configure(null);
      return sendEmpty(res, 204);
    }
    if (rest === '/reset' && method === 'POST') {
      reset();
      return sendEmpty(res, 204);
    }
    if (rest === '/restart' && method === 'POST') {
      state.destroyAllSessions();
      return sendEmpty(res, 204);
    }
    sendText(res, 404, 'Not Found');
  }

  const server = simulatorServer(
    async (req, res) => {
      counters.requests++;
      const url = new URL(req.url ?? '/', 'http://localhost');
      const path = url.pathname;
      if (path === base) {
        // Tomcat redirects the bare context path to the directory form, keeping the query (relocateParameters.js needs
        // it).
        res.writeHead(302, { Location: `${base}/${url.search}` });
        res.end();
        return;
      }
      if (!path.startsWith(`${base}/`)) return sendText(res, 404, 'Not Found');
      const rest = path.slice(base.length);
      if (rest === '/' || rest === '/index.html') {
        if (req.method !== 'GET' && req.method !== 'HEAD') return sendText(res, 405, 'Method Not Allowed');
        res.writeHead(200, {
          'Content-Type': 'text/html; charset=utf-8',
          'Content-Length': Buffer.byteLength(CLIENT_PAGE_HTML),
          'Cache-Control': 'no-store',
        });
        res.end(req.method === 'HEAD' ? undefined : CLIENT_PAGE_HTML);
        return;
      }
      if (rest.startsWith('/api/')) return handleApi(req, res, url, rest.slice('/api/'.length));
      if (rest.startsWith('/__sim/')) return handleSim(req, res, rest.slice('/__sim'.length));
      sendText(res, 404, 'Not Found');
    },
    (res, error) => {
      console.error('guacamole simulator: request failed', error);
      sendText(res, 500, 'Internal Server Error');
    },
  );

  const tunnel = attachTunnel(server, base, state);
  const listening = await listen(server, config.host, config.port, config.tls);
  const port = listening.port;

  return {
    url: `${listening.scheme}://${config.host}:${port}${base}`,
    port,
    async stop() {
      tunnel.closeAll();
      await listening.close();
    },
    connections: () => state.snapshot().connections,
    users: () => state.snapshot().users,
    activeTunnels: () => state.snapshot().activeConnections,
    sessions: () => state.snapshot().sessions,
    restart: () => state.destroyAllSessions(),
    reset,
    setFaults: (faultConfig) => faults.configure(faultConfig === null ? null : FaultConfigSchema.parse(faultConfig)),
    stats,
  };
}
