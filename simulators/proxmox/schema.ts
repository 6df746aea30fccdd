/**
 * Request parameter validation the way PVE::JSONSchema does it (pve-common src/PVE/JSONSchema.pm: check_prop,
 * check_type, check_format, parse_property_string), against api-schema.json — a trimmed extract of the PVE API schema
 * (pve-docs' api-viewer/apidata.js) kept here. Error texts are PVE's own, because clients (and our driver) classify
 * errors by text.
 */
import { readFileSync } from 'node:fs';

export interface PropSchema {
  type?: string;
  optional?: number;
  enum?: string[];
  minimum?: number | string;
  maximum?: number | string;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  default?: unknown;
  default_key?: number;
  alias?: string;
  keyAlias?: string;
  /** A registered format name, or a property-string format (key=value,...). */
  format?: string | Record<string, PropSchema>;
}

export interface EndpointSchema {
  method: string;
  path: string;
  name: string;
  parameters: { additionalProperties: number; properties?: Record<string, PropSchema> };
}

/** A parameter as it arrives: query/form values are strings (a repeated key becomes a list), JSON bodies keep their types. */
export type RawValue = string | number | boolean | null | RawValue[] | { [key: string]: RawValue };
/** A validated parameter: integers and booleans as numbers (booleans 1/0, like Perl), everything else as strings. */
export type ParamValue = string | number;
export type Params = Record<string, ParamValue>;

export type ValidationResult = { ok: true; params: Params } | { ok: false; errors: Record<string, string> };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function loadEndpointSchemas(): EndpointSchema[] {
  const raw: unknown = JSON.parse(readFileSync(new URL('./api-schema.json', import.meta.url), 'utf8'));
  if (!isRecord(raw) || !Array.isArray(raw.endpoints)) throw new Error('api-schema.json: no endpoints');
  return raw.endpoints.map((e: unknown) => {
    if (!isRecord(e) || typeof e.method !== 'string' || typeof e.path !== 'string' || !isRecord(e.parameters)) {
      throw new Error('api-schema.json: malformed endpoint');
    }
    // Shape checked above; the property schemas are data copied from PVE's own schema.
    return e as unknown as EndpointSchema;
  });
}

// Highest index per indexed option (qemu-server QemuServer.pm MAX_NETS, Drive.pm MAX_*_DISKS, Cloudinit ipconfig = nets).
const INDEX_LIMITS: Record<string, number> = { net: 31, ipconfig: 31, scsi: 30, ide: 3, sata: 5, virtio: 15, hostpci: 15, unused: 255 };

function schemaFor(props: Record<string, PropSchema>, key: string): PropSchema | undefined {
  const direct = props[key];
  if (direct) return direct;
  const m = /^([a-z]+)(\d+)$/.exec(key);
  if (!m) return undefined;
  const [, base = '', index = ''] = m;
  const indexed = props[`${base}[n]`];
  if (!indexed) return undefined;
  if (String(Number(index)) !== index || Number(index) > (INDEX_LIMITS[base] ?? 255)) return undefined;
  return indexed;
}

const IS_NUMBER = /^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$/;
const IS_INTEGER = /^[+-]?\d+$/;
const NODE_RE = /^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)$/;
const DNS_LABEL = '([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)';
const DNS_RE = new RegExp(`^(${DNS_LABEL}\\.)*${DNS_LABEL}$`);
const CONFIGID_RE = /^[a-z][a-z0-9_-]+$/i;
const TAG_RE = /^[a-z0-9_][a-z0-9_\-+.]*$/i;

function splitList(v: string): string[] {
  return v.split(/[,;\s\0]+/).filter((s) => s !== '');
}

/** Registered string formats the simulator checks; unknown ones pass, as they only guard inputs we never interpret. */
const NAMED_FORMATS: Record<string, (v: string) => string | null> = {
  'pve-vmid': (v) => (/^[1-9][0-9]{2,8}$/.test(v) ? null : 'value does not look like a valid VM ID'),
  'pve-node': (v) => (NODE_RE.test(v) ? null : 'value does not look like a valid node name'),
  'dns-name': (v) => (DNS_RE.test(v) ? null : 'value does not look like a valid DNS name'),
  'pve-configid': (v) => (CONFIGID_RE.test(v) ? null : `invalid configuration ID '${v}'`),
  'pve-configid-list': (v) =>
    splitList(v)
      .map((id) => (CONFIGID_RE.test(id) ? null : `invalid configuration ID '${id}'`))
      .find((e) => e) ?? null,
  'pve-storage-id': (v) => (/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(v) ? null : `storage ID '${v}' contains illegal characters`),
  'pve-bridge-id': (v) => (/^[-_.\w\d]+$/.test(v) ? null : `invalid bridge ID '${v}'`),
  'mac-addr': (v) => (/^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$/i.test(v) ? null : 'value does not look like a valid unicast MAC address'),
  'pve-tag-list': (v) => (splitList(v).every((t) => TAG_RE.test(t)) ? null : 'invalid characters in tag'),
  'pve-qm-ipconfig': (v) =>
    v
      .split(',')
      .filter((p) => p.trim() !== '')
      .map((p) => {
        const key = /^([^=]+)=(.+)$/.exec(p)?.[1];
        if (!key) return 'missing key in comma-separated list property';
        return ['ip', 'gw', 'ip6', 'gw6'].includes(key) ? null : `invalid key in comma-separated list property: ${key}`;
      })
      .find((e) => e) ?? null,
};

function typeName(v: RawValue): string | null {
  if (Array.isArray(v)) return 'ARRAY';
  if (v !== null && typeof v === 'object') return 'HASH';
  if (typeof v === 'boolean') return 'JSON::PP::Boolean';
  return null;
}

function addError(errors: Record<string, string>, path: string, msg: string): void {
  const key = path || '_root';
  errors[key] = errors[key] ? `${errors[key]}\\n${msg}` : msg;
}

/** parse_property_string + check_object: returns the error text of a bad property string, or null. */
function checkPropertyString(format: Record<string, PropSchema>, data: string, path: string): string | null {
  const res: Record<string, string> = {};
  let defaultKey: string | undefined;
  for (const part of data.split(',')) {
    if (/^\s*$/.test(part)) continue;
    const kv = /^([^=]+)=(.+)$/.exec(part);
    if (kv) {
      let k = kv[1] ?? '';
      let v = kv[2] ?? '';
      if (res[k] !== undefined) return `duplicate key in comma-separated list property: ${k}`;
      let schema = format[k];
      if (schema?.alias) {
        if (schema.keyAlias) {
          if (res[schema.keyAlias] !== undefined) return `key alias '${schema.keyAlias}' is already defined`;
          res[schema.keyAlias] = k;
        }
        k = schema.alias;
        schema = format[k];
      }
      if (!schema) return `invalid key in comma-separated list property: ${k}`;
      if (schema.type === 'boolean') {
        if (/^(1|on|yes|true)$/i.test(v)) v = '1';
        else if (/^(0|off|no|false)$/i.test(v)) v = '0';
      }
      res[k] = v;
    } else if (!part.includes('=')) {
      if (defaultKey) return `duplicate key in comma-separated list property: ${defaultKey}`;
      defaultKey = Object.keys(format).find((key) => format[key]?.default_key);
      if (!defaultKey) return 'value without key, but schema does not define a default key';
      if (res[defaultKey]) return `duplicate key in comma-separated list property: ${defaultKey}`;
      res[defaultKey] = part;
    } else {
      return 'missing key in comma-separated list property';
    }
  }
  const errors: Record<string, string> = {};
  for (const [k, schema] of Object.entries(format)) {
    const v = res[k];
    if (v === undefined) {
      if (!schema.optional && !schema.alias) addError(errors, `${path}.${k}`, 'property is missing and it is not optional');
      continue;
    }
    checkProp(v, schema, `${path}.${k}`, errors);
  }
  for (const k of Object.keys(res)) {
    if (!format[k])
      addError(errors, `${path}.${k}`, 'property is not defined in schema and the schema does not allow additional properties');
  }
  const lines = Object.entries(errors).map(([k, msg]) => `${k}: ${msg}\n`);
  // PVE::Exception stringification: the message, then one "key: error" line per entry.
  return lines.length ? `format error\n${lines.join('')}` : null;
}

function checkProp(value: RawValue, schema: PropSchema, path: string, errors: Record<string, string>): void {
  const type = schema.type;
  const refType = typeName(value);
  if (type && type !== 'any') {
    if (refType && !(type === 'boolean' && typeof value === 'boolean')) {
      addError(errors, path, `type check ('${type}') failed - got ${refType}`);
      return;
    }
    const s = String(value);
    if (type === 'boolean' && typeof value !== 'boolean' && s !== '1' && s !== '0') {
      addError(errors, path, `type check ('${type}') failed - got '${s}'`);
      return;
    }
    if ((type === 'integer' && !IS_INTEGER.test(s)) || (type === 'number' && !IS_NUMBER.test(s))) {
      addError(errors, path, `type check ('${type}') failed - got '${s}'`);
      return;
    }
  }
  if (refType) return;
  const s = String(value);
  const format = schema.format;
  if (format) {
    const err = typeof format === 'string' ? (NAMED_FORMATS[format]?.(s) ?? null) : checkPropertyString(format, s, path);
    if (err) {
      // die "...\n" keeps its newline inside "invalid format - $@".
      addError(errors, path, `invalid format - ${err.endsWith('\n') ? err : `${err}\n`}`);
      return;
    }
  }
  if (schema.pattern && !new RegExp(`^(?:${schema.pattern})$`).test(s)) {
    addError(errors, path, 'value does not match the regex pattern');
    return;
  }
  if (schema.maxLength !== undefined && s.length > schema.maxLength) {
    addError(errors, path, `value may only be ${schema.maxLength} characters long`);
    return;
  }
  if (schema.minLength !== undefined && s.length < schema.minLength) {
    addError(errors, path, `value must be at least ${schema.minLength} characters long`);
    return;
  }
  if (IS_NUMBER.test(s)) {
    if (schema.maximum !== undefined && Number(s) > Number(schema.maximum)) {
      addError(errors, path, `value must have a maximum value of ${schema.maximum}`);
      return;
    }
    if (schema.minimum !== undefined && Number(s) < Number(schema.minimum)) {
      addError(errors, path, `value must have a minimum value of ${schema.minimum}`);
      return;
    }
  }
  if (schema.enum && !schema.enum.includes(s)) {
    addError(errors, path, `value '${s}' does not have a value in the enumeration '${schema.enum.join(', ')}'`);
  }
}

/** Validates all parameters (path placeholders included) of one call; unknown parameters are errors (additionalProperties 0). */
export function validateParams(endpoint: EndpointSchema, raw: Record<string, RawValue>): ValidationResult {
  const props = endpoint.parameters.properties ?? {};
  const errors: Record<string, string> = {};
  const params: Params = {};
  for (const [key, schema] of Object.entries(props)) {
    if (key.endsWith('[n]')) continue;
    const v = raw[key];
    if ((v === undefined || v === null) && !schema.optional) addError(errors, key, 'property is missing and it is not optional');
  }
  for (const [key, value] of Object.entries(raw)) {
    if (value === null) continue;
    const schema = schemaFor(props, key);
    if (!schema) {
      if (!endpoint.parameters.additionalProperties) {
        addError(errors, key, 'property is not defined in schema and the schema does not allow additional properties');
      }
      continue;
    }
    const before = Object.keys(errors).length;
    checkProp(value, schema, key, errors);
    if (Object.keys(errors).length !== before) continue;
    if (schema.type === 'integer') params[key] = Number(value);
    else if (schema.type === 'boolean') params[key] = value === true || String(value) === '1' ? 1 : 0;
    else params[key] = String(value);
  }
  return Object.keys(errors).length ? { ok: false, errors } : { ok: true, params };
}
