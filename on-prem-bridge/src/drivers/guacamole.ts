/**
 * The Guacamole driver: a thin client of the web app's REST API over fetch, logged in lazily as the admin. Behaviour as
 * guacamole-client's REST services implement it (guacamole/src/main/java/org/apache/guacamole/rest/, named below where
 * a quirk is relied on). Failures become InfraError (system 'guacamole'), classified once here: network, time-out and
 * 5xx are retryable; other 4xx are not.
 */
import { z } from 'zod';
import { type GuacamoleDriver, type GuacConnection, InfraError } from './types';

export interface GuacamoleDriverOptions {
  /** Base of the web app as the bridge reaches it, e.g. http://127.0.0.1:8080/guacamole */
  url: string;
  /** Base as browsers reach it (for clientUrl); defaults to `url`. */
  publicUrl?: string;
  username: string;
  password: string;
  /** Auth provider to manage objects in; defaults to the one that authenticated the admin (`dataSource` of the login). */
  dataSource?: string;
  fetch?: typeof fetch;
  /** Per request, default 15 s. */
  timeoutMs?: number;
}

const TokenSchema = z.object({
  authToken: z.string().min(1),
  username: z.string(),
  dataSource: z.string().min(1),
  availableDataSources: z.array(z.string()).optional(),
});

const AttributesSchema = z.record(z.string(), z.string().nullable());

const ConnectionSchema = z.object({
  identifier: z.string(),
  name: z.string(),
  protocol: z.string(),
  parentIdentifier: z.string().optional(),
  activeConnections: z.number().optional(),
  attributes: AttributesSchema.optional(),
});
type ApiConnection = z.infer<typeof ConnectionSchema>;

const SharingProfileSchema = z.object({ identifier: z.string(), name: z.string(), primaryConnectionIdentifier: z.string() });

const ActiveConnectionSchema = z.object({
  identifier: z.string(),
  connectionIdentifier: z.string(),
  username: z.string().nullable().default(null),
  startDate: z.number(),
});

const ConnectionRecordSchema = z.object({
  uuid: z.string().nullable().default(null),
  username: z.string().nullable().default(null),
  sharingProfileIdentifier: z.string().nullable().default(null),
  sharingProfileName: z.string().nullable().default(null),
  startDate: z.number(),
  endDate: z.number().nullable().default(null),
});

const CredentialsSchema = z.object({ values: z.object({ key: z.string().min(1) }) });

const UserSchema = z.object({ username: z.string(), attributes: AttributesSchema.optional() });

const ApiErrorSchema = z.object({ message: z.string().nullish(), type: z.string().nullish() });

const ROOT = 'ROOT';
/**
 * RESTExceptionMapper and GuacamoleStatus: the text of a 403 for an unknown or expired token; a missing permission
 * reads "Permission denied.".
 */
const SESSION_GONE = 'Permission Denied.';

interface HttpResult {
  status: number;
  body: unknown;
}

interface RequestSpec {
  json?: unknown;
  form?: URLSearchParams;
  /** Statuses handed back to the caller; anything else becomes an InfraError. */
  accept: number[];
}

const trimSlashes = (url: string) => url.replace(/\/+$/, '');

const errorOf = (body: unknown) => {
  const parsed = ApiErrorSchema.safeParse(body);
  return parsed.success ? { type: parsed.data.type ?? null, message: parsed.data.message ?? null } : { type: null, message: null };
};

/**
 * 5xx are server or proxy trouble worth retrying, except 501: Guacamole uses it for requests it will never
 * support (e.g. deleting the calling user). 408/429 are transient client-side statuses.
 */
const isRetryableStatus = (status: number) => (status >= 500 && status !== 501) || status === 408 || status === 429;

/** Attribute values read back as null when unset; PUT wants strings, and a missing key means "unset" anyway. */
const definedAttributes = (attributes: Record<string, string | null> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(attributes ?? {}).filter((entry): entry is [string, string] => entry[1] !== null));

/**
 * The web client's ClientIdentifier.js: unpadded base64url of `identifier NUL c NUL dataSource`, encoded like the UI's
 * btoa (Latin-1 only).
 */
export function guacamoleClientId(identifier: string, dataSource: string, type: 'c' | 'g' | 'a' = 'c'): string {
  const raw = `${identifier}\0${type}\0${dataSource}`;
  if ([...raw].some((char) => (char.codePointAt(0) ?? 0) > 0xff))
    throw new InfraError(`client identifier of "${identifier}" is not Latin-1`, 'guacamole', 0, false);
  return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function createGuacamoleDriver(opts: GuacamoleDriverOptions): GuacamoleDriver {
  const base = trimSlashes(opts.url);
  const publicBase = trimSlashes(opts.publicUrl ?? opts.url);
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 15_000;

  let adminToken: string | null = null;
  let pendingLogin: Promise<string> | null = null;
  let dataSource: string | null = opts.dataSource ?? null;

  const failure = (method: string, path: string, result: HttpResult): InfraError => {
    const { type, message } = errorOf(result.body);
    const detail = message ?? (typeof result.body === 'string' && result.body !== '' ? result.body.slice(0, 200) : 'no message');
    return new InfraError(
      `guacamole ${method} ${path} → ${result.status}${type ? ` ${type}` : ''}: ${detail}`,
      'guacamole',
      result.status,
      isRetryableStatus(result.status),
    );
  };

  const parse = <T>(schema: z.ZodType<T>, method: string, path: string, result: HttpResult): T => {
    const parsed = schema.safeParse(result.body);
    if (!parsed.success)
      throw new InfraError(`guacamole ${method} ${path} → ${result.status}: unexpected response body`, 'guacamole', result.status, false);
    return parsed.data;
  };

  /** One HTTP exchange; only network failures and time-outs throw. Never logs or embeds the token. */
  async function send(method: string, path: string, spec: Omit<RequestSpec, 'accept'>, token: string | null): Promise<HttpResult> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    let body: string | undefined;
    if (spec.form) {
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      body = spec.form.toString();
    } else if (spec.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(spec.json);
    }
    // AuthenticationService.java: the header form exists since 1.4.0 and keeps the token out of URLs and access logs.
    if (token) headers['Guacamole-Token'] = token;
    try {
      const response = await doFetch(`${base}/api${path}`, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
      const text = await response.text();
      let parsed: unknown = text;
      if (text !== '') {
        try {
          parsed = JSON.parse(text);
        } catch {
          // Proxies answer with HTML or plain text; keep it for the error message.
        }
      }
      return { status: response.status, body: parsed };
    } catch (error) {
      const reason =
        error instanceof Error ? (error.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : error.message) : String(error);
      throw new InfraError(`guacamole ${method} ${path}: ${reason}`, 'guacamole', 0, true);
    }
  }

  async function login(username: string, password: string): Promise<z.infer<typeof TokenSchema>> {
    // TokenRESTService.java: form-encoded, answered with 200 or 403 INVALID_CREDENTIALS.
    const result = await send('POST', '/tokens', { form: new URLSearchParams({ username, password }) }, null);
    if (result.status !== 200) throw failure('POST', '/tokens', result);
    return parse(TokenSchema, 'POST', '/tokens', result);
  }

  /** Concurrent callers share one login. */
  function currentAdminToken(): Promise<string> {
    if (adminToken) return Promise.resolve(adminToken);
    pendingLogin ??= login(opts.username, opts.password)
      .then((session) => {
        adminToken = session.authToken;
        dataSource ??= session.dataSource;
        return session.authToken;
      })
      .finally(() => {
        pendingLogin = null;
      });
    return pendingLogin;
  }

  /**
   * A call under /api/session/data/{dataSource}. Tokens die on web-app restart and after the idle timeout, and
   * Guacamole answers that with 403 PERMISSION_DENIED (not 401: GuacamoleStatus maps CLIENT_UNAUTHORIZED to 403): log
   * in again once and retry. After a fresh login, a 403 for a session that is gone again ("Permission Denied.",
   * AuthenticationService#getGuacamoleSession) is still transient (the web app may be restarting) and is left to the
   * caller's backoff; a missing permission ("Permission denied.") is permanent.
   */
  async function call(method: string, subPath: string, spec: RequestSpec): Promise<HttpResult> {
    for (let attempt = 0; ; attempt++) {
      const token = await currentAdminToken();
      const path = `/session/data/${encodeURIComponent(dataSource ?? '')}${subPath}`;
      const result = await send(method, path, spec, token);
      const { type, message } = errorOf(result.body);
      if (result.status === 403 && type === 'PERMISSION_DENIED') {
        if (adminToken === token) adminToken = null;
        if (attempt === 0) continue;
        if (message === SESSION_GONE) {
          throw new InfraError(
            `guacamole ${method} ${path} → 403 ${type}: the session ended again right after a fresh login`,
            'guacamole',
            403,
            true,
          );
        }
      }
      if (spec.accept.includes(result.status)) return result;
      throw failure(method, path, result);
    }
  }

  const connectionPath = (identifier: string) => `/connections/${encodeURIComponent(identifier)}`;
  const userPath = (username: string) => `/users/${encodeURIComponent(username)}`;
  const toGuacConnection = (connection: ApiConnection): GuacConnection => ({
    identifier: connection.identifier,
    name: connection.name,
    protocol: connection.protocol,
    ...(connection.activeConnections === undefined ? {} : { activeConnections: connection.activeConnections }),
  });

  async function listApiConnections(): Promise<ApiConnection[]> {
    const result = await call('GET', '/connections', { accept: [200] });
    return Object.values(parse(z.record(z.string(), ConnectionSchema), 'GET', '/connections', result));
  }

  async function findConnectionByName(name: string): Promise<GuacConnection | null> {
    const match = (await listApiConnections()).find(
      (connection) => connection.name === name && (connection.parentIdentifier ?? ROOT) === ROOT,
    );
    return match ? toGuacConnection(match) : null;
  }

  async function updateConnection(identifier: string, opts: { name: string; protocol: string; parameters: Record<string, string> }) {
    // ConnectionObjectTranslator#applyExternalChanges: PUT replaces everything, so carry over what we do not manage
    // (parent, attributes).
    const current = parse(
      ConnectionSchema,
      'GET',
      connectionPath(identifier),
      await call('GET', connectionPath(identifier), { accept: [200] }),
    );
    await call('PUT', connectionPath(identifier), {
      json: {
        identifier,
        parentIdentifier: current.parentIdentifier ?? ROOT,
        name: opts.name,
        protocol: opts.protocol,
        parameters: opts.parameters,
        attributes: definedAttributes(current.attributes),
      },
      accept: [204],
    });
  }

  return {
    findConnectionByName,

    async getConnection(identifier) {
      const result = await call('GET', connectionPath(identifier), { accept: [200, 404] });
      if (result.status === 404) return null;
      const connection = parse(ConnectionSchema, 'GET', connectionPath(identifier), result);
      return { ...toGuacConnection(connection), parentIdentifier: connection.parentIdentifier ?? ROOT };
    },

    async listConnections() {
      return (await listApiConnections()).map(toGuacConnection);
    },

    async createConnection(opts) {
      // The JDBC ModeledDirectoryObjectService: POST answers 200 with the body plus the DB-assigned identifier;
      // attributes must be present (the REST layer dereferences the map).
      const result = await call('POST', '/connections', {
        json: { parentIdentifier: ROOT, name: opts.name, protocol: opts.protocol, parameters: opts.parameters, attributes: {} },
        accept: [200, 400],
      });
      if (result.status === 200) return parse(z.object({ identifier: z.string() }), 'POST', '/connections', result).identifier;

      // Names are unique per parent (400 "The connection "x" already exists."). A POST that succeeded before a
      // lost answer lands here on retry, so adopt the existing connection and bring it up to date.
      const { message } = errorOf(result.body);
      if (!message?.includes('already exists')) throw failure('POST', '/connections', result);
      const existing = await findConnectionByName(opts.name);
      if (!existing)
        throw new InfraError(
          `guacamole: connection "${opts.name}" was reported as existing but is gone; try again`,
          'guacamole',
          409,
          true,
        );
      await updateConnection(existing.identifier, opts);
      return existing.identifier;
    },

    updateConnection,

    async deleteConnection(identifier) {
      await call('DELETE', connectionPath(identifier), { accept: [204, 404] });
    },

    async ensureUser(username, password, attributes, ensureOpts) {
      if (!ensureOpts?.expectNew) {
        const found = await call('GET', userPath(username), { accept: [200, 404] });
        if (found.status === 200) {
          await keepAttributes(username, found, attributes);
          return 'exists';
        }
      }
      // Guacamole checks the name before the password policy (UserService#beforeCreate), so a taken name is
      // refused as such and the existing user's password is never touched.
      const created = await call('POST', '/users', { json: { username, password, attributes }, accept: [200, 400] });
      if (created.status === 200) return 'created';
      // It exists (400 "User "x" already exists."), made meanwhile or before: its password stays.
      const { message } = errorOf(created.body);
      if (!message?.includes('already exists')) throw failure('POST', '/users', created);
      const again = await call('GET', userPath(username), { accept: [200] });
      await keepAttributes(username, again, attributes);
      return 'exists';
    },

    async setUserPassword(username, password) {
      const found = await call('GET', userPath(username), { accept: [200] });
      const user = parse(UserSchema, 'GET', userPath(username), found);
      await call('PUT', userPath(username), {
        json: { username, password, attributes: definedAttributes(user.attributes) },
        accept: [204],
      });
    },

    async listUsers() {
      const result = await call('GET', '/users', { accept: [200] });
      return Object.values(parse(z.record(z.string(), UserSchema), 'GET', '/users', result)).map((u) => ({
        username: u.username,
        attributes: definedAttributes(u.attributes),
      }));
    },

    async deleteUser(username) {
      await call('DELETE', userPath(username), { accept: [204, 404] });
    },

    async grantConnectionRead(username, identifier) {
      // PermissionSetResource.java: JSON Patch array, values are case-sensitive enums ("read" is a 500), answered with
      // 204.
      await call('PATCH', `${userPath(username)}/permissions`, {
        json: [{ op: 'add', path: `/connectionPermissions/${identifier}`, value: 'READ' }],
        accept: [204],
      });
    },

    async loginAs(username, password) {
      const session = await login(username, password);
      return { authToken: session.authToken, dataSource: session.dataSource };
    },

    async probe() {
      // An admin call with the token only in the `Guacamole-Token` header, which Guacamole reads since 1.4.0.
      const result = await call('GET', '/self/effectivePermissions', { accept: [200] });
      const body = z.object({ systemPermissions: z.array(z.string()).optional() }).safeParse(result.body);
      return { headerAccepted: true, systemPermissions: body.success ? (body.data.systemPermissions ?? []) : [] };
    },

    clientUrl(identifier, clientDataSource, authToken) {
      return `${publicBase}/#/client/${guacamoleClientId(identifier, clientDataSource)}?token=${encodeURIComponent(authToken)}`;
    },

    async listSharingProfiles() {
      const result = await call('GET', '/sharingProfiles', { accept: [200] });
      return Object.values(parse(z.record(z.string(), SharingProfileSchema), 'GET', '/sharingProfiles', result));
    },

    async createSharingProfile(opts) {
      // SharingProfileService: 200 with the body plus the identifier; names are unique per primary connection.
      const result = await call('POST', '/sharingProfiles', { json: { ...opts, attributes: {} }, accept: [200] });
      return parse(z.object({ identifier: z.string() }), 'POST', '/sharingProfiles', result).identifier;
    },

    async listActiveConnections() {
      const result = await call('GET', '/activeConnections', { accept: [200] });
      return Object.values(parse(z.record(z.string(), ActiveConnectionSchema), 'GET', '/activeConnections', result));
    },

    async sharingCredentials(activeConnectionIdentifier, sharingProfileIdentifier) {
      // APIUserCredentials: {"expected":[{"name":"key","type":"QUERY_PARAMETER"}],"values":{"key":"<share key>"}}.
      const path = `/activeConnections/${encodeURIComponent(activeConnectionIdentifier)}/sharingCredentials/${encodeURIComponent(sharingProfileIdentifier)}`;
      const result = await call('GET', path, { accept: [200] });
      return parse(CredentialsSchema, 'GET', path, result).values.key;
    },

    shareUrl(shareKey) {
      return `${publicBase}/#/?key=${encodeURIComponent(shareKey)}`;
    },

    async deleteSharingProfile(identifier) {
      await call('DELETE', `/sharingProfiles/${encodeURIComponent(identifier)}`, { accept: [204, 404] });
    },

    async connectionHistory(connectionIdentifier) {
      // ConnectionResource#getConnectionHistory: an array of APIConnectionRecord, newest first, at most 1000.
      const path = `/connections/${encodeURIComponent(connectionIdentifier)}/history`;
      const result = await call('GET', path, { accept: [200] });
      return parse(z.array(ConnectionRecordSchema), 'GET', path, result);
    },

    async killActiveConnections(identifiers) {
      if (identifiers.length === 0) return;
      // DirectoryResource#patchObjects, as the web client's activeConnectionService.deleteActiveConnections sends it.
      await call('PATCH', '/activeConnections', {
        json: identifiers.map((identifier) => ({ op: 'remove', path: `/${identifier}` })),
        accept: [200, 204],
      });
    },
  };

  /**
   * Adds the wanted attributes where they differ, without a password in the body: the password stays as it is
   * (UserObjectTranslator only applies a given one), so no password policy, history or age rule is involved.
   */
  async function keepAttributes(username: string, current: HttpResult, wanted: Record<string, string>): Promise<void> {
    const user = parse(UserSchema, 'GET', userPath(username), current);
    const have = definedAttributes(user.attributes);
    if (Object.entries(wanted).every(([k, v]) => have[k] === v)) return;
    await call('PUT', userPath(username), { json: { username, attributes: { ...have, ...wanted } }, accept: [204] });
  }
}
