/**
 * The wire format of kube-apiserver as clients see it: JSON bodies, failures as a `Status` object whose `reason` and
 * `code` clients switch on, bearer-token authentication, and the plain-text "404 page not found" of paths no API group
 * serves.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ResourceInfo } from './resources';

export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** A failure as kube-apiserver reports it: HTTP status = `code`, body = the Status object. */
export class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  toStatus(): Record<string, unknown> {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

/** Not a Status: what the API server's mux answers for a path no group/version/resource matches. */
export class PageNotFound extends Error {}

/** `pods` for the core group, `ingresses.networking.k8s.io` otherwise (schema.GroupResource.String()). */
export function qualifiedResource(r: ResourceInfo): string {
  return r.group === '' ? r.plural : `${r.plural}.${r.group}`;
}

function resourceDetails(r: ResourceInfo, name?: string): StatusDetails {
  return { ...(name !== undefined ? { name } : {}), ...(r.group ? { group: r.group } : {}), kind: r.plural };
}

export function notFound(r: ResourceInfo, name: string): StatusError {
  return new StatusError(404, 'NotFound', `${qualifiedResource(r)} "${name}" not found`, resourceDetails(r, name));
}

/** A create in a namespace that does not exist is refused by the NamespaceLifecycle admission plugin. */
export function namespaceNotFound(namespace: string): StatusError {
  return new StatusError(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' });
}

/** The API server's Status reasons; the "object is being deleted" prefix is what a create gets while a same-named object terminates. */
export function alreadyExists(r: ResourceInfo, name: string, beingDeleted = false): StatusError {
  const text = `${qualifiedResource(r)} "${name}" already exists`;
  return new StatusError(409, 'AlreadyExists', beingDeleted ? `object is being deleted: ${text}` : text, resourceDetails(r, name));
}

/** Optimistic concurrency: the resourceVersion of an update is not the current one. */
export function conflict(r: ResourceInfo, name: string): StatusError {
  return new StatusError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedResource(r)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    resourceDetails(r, name),
  );
}

export function badRequest(message: string): StatusError {
  return new StatusError(400, 'BadRequest', message);
}

export function methodNotAllowed(): StatusError {
  return new StatusError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
}

export function unauthorized(): StatusError {
  return new StatusError(401, 'Unauthorized', 'Unauthorized');
}

export function forbidden(r: ResourceInfo, user: string, verb: string, namespace: string | undefined, name?: string): StatusError {
  const subject = name !== undefined ? `${qualifiedResource(r)} "${name}"` : qualifiedResource(r);
  const scope = namespace !== undefined ? ` in the namespace "${namespace}"` : ' at the cluster scope';
  return new StatusError(
    403,
    'Forbidden',
    `${subject} is forbidden: User "${user}" cannot ${verb} resource "${r.plural}" in API group "${r.group}"${scope}`,
    resourceDetails(r, name),
  );
}

/** An admission webhook or plugin refusing a request (403, reason Forbidden, details of the object). */
export function admissionForbidden(r: ResourceInfo, name: string, why: string): StatusError {
  return new StatusError(403, 'Forbidden', `${qualifiedResource(r)} "${name}" is forbidden: ${why}`, resourceDetails(r, name));
}

// --- field errors (k8s.io/apimachinery/pkg/util/validation/field) -------------------------------

export type FieldErrorType = 'Required' | 'Invalid' | 'NotSupported' | 'Forbidden' | 'Duplicate' | 'NotFound' | 'TooLong';

export interface FieldError {
  type: FieldErrorType;
  field: string;
  value?: unknown;
  detail?: string;
  supported?: string[];
}

function renderValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value) ?? 'null';
}

/** field.Error.ErrorBody(): the text after `<field>: `. */
export function fieldErrorBody(e: FieldError): string {
  switch (e.type) {
    case 'Required':
      return `Required value${e.detail ? `: ${e.detail}` : ''}`;
    case 'Forbidden':
      return `Forbidden${e.detail ? `: ${e.detail}` : ''}`;
    case 'Invalid':
      return `Invalid value: ${renderValue(e.value)}${e.detail ? `: ${e.detail}` : ''}`;
    case 'NotSupported':
      return `Unsupported value: ${renderValue(e.value)}${e.supported ? `: supported values: ${e.supported.map((s) => `"${s}"`).join(', ')}` : ''}`;
    case 'Duplicate':
      return `Duplicate value: ${renderValue(e.value)}`;
    case 'NotFound':
      return `Not found: ${renderValue(e.value)}`;
    case 'TooLong':
      return `Too long: ${e.detail ?? 'value is too long'}`;
  }
}

const CAUSE_REASON: Record<FieldErrorType, string> = {
  Required: 'FieldValueRequired',
  Invalid: 'FieldValueInvalid',
  NotSupported: 'FieldValueNotSupported',
  Forbidden: 'FieldValueForbidden',
  Duplicate: 'FieldValueDuplicate',
  NotFound: 'FieldValueNotFound',
  TooLong: 'FieldValueTooLong',
};

/**
 * 422 Invalid. The message names the *kind* (`Pod "x" is invalid: …`, `Ingress.networking.k8s.io "x" …`) where
 * NotFound/AlreadyExists name the resource; several errors are listed in brackets.
 */
export function invalid(r: ResourceInfo, name: string, errors: FieldError[]): StatusError {
  const qualifiedKind = r.group === '' ? r.kind : `${r.kind}.${r.group}`;
  const texts = errors.map((e) => `${e.field}: ${fieldErrorBody(e)}`);
  const joined = texts.length === 1 ? (texts[0] ?? '') : `[${texts.join(', ')}]`;
  return new StatusError(422, 'Invalid', `${qualifiedKind} "${name}" is invalid: ${joined}`, {
    name,
    ...(r.group ? { group: r.group } : {}),
    kind: r.kind,
    causes: errors.map((e) => ({ reason: CAUSE_REASON[e.type], message: fieldErrorBody(e), field: e.field })),
  });
}

// --- sending ------------------------------------------------------------------------------------

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendStatus(res: ServerResponse, error: StatusError): void {
  sendJson(res, error.code, error.toStatus(), error.headers);
}

export interface SimToken {
  token: string;
  /** The user as RBAC messages name it, e.g. `system:serviceaccount:cdaas:bridge`. */
  user: string;
  /** Namespaces this token may act in (an RBAC Role per namespace); every namespace when absent. */
  namespaces?: string[];
  /** Only get/list (a `view` binding). */
  readOnly?: boolean;
  /** `<verb> <plural>` pairs the token's Role lacks, e.g. `create networkpolicies`. */
  deny?: string[];
}

/** `Authorization: Bearer <token>`; anything else is a 401 (the anonymous user is disabled on K3s). */
export function authenticate(req: IncomingMessage, tokens: SimToken[]): SimToken | null {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization?.trim() ?? '');
  if (!m) return null;
  return tokens.find((t) => t.token === m[1]) ?? null;
}
