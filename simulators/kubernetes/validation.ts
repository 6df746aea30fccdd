/**
 * Semantic validation with the API server's field paths and texts (422 Invalid with `details.causes`), for the fields a
 * desktop session uses. Quantities that do not parse are a 400 (they fail in the JSON decoder, before validation), like
 * the real server.
 */
import { badRequest, type FieldError } from './http';
import { parseQuantity, QUANTITY_PATTERN } from './quantity';
import type { ResourceInfo } from './resources';
import type {
  Container,
  Deployment,
  Ingress,
  IngressRoute,
  NetworkPolicy,
  ObjectMeta,
  Pod,
  PodSpec,
  Pvc,
  Secret,
  Service,
} from './schemas';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG =
  "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_MSG =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const QUALIFIED_NAME_MSG =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const CONFIG_KEY_MSG =
  "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

export type NameRule = 'subdomain' | 'label' | 'dns1035';

export function checkName(value: string, field: string, rule: NameRule, errors: FieldError[]): void {
  const [re, msg, max] =
    rule === 'subdomain'
      ? [DNS1123_SUBDOMAIN, SUBDOMAIN_MSG, 253]
      : rule === 'label'
        ? [DNS1123_LABEL, LABEL_MSG, 63]
        : [DNS1035_LABEL, DNS1035_MSG, 63];
  if (value.length > max) errors.push({ type: 'Invalid', field, value, detail: `must be no more than ${max} characters` });
  if (!re.test(value)) errors.push({ type: 'Invalid', field, value, detail: msg });
}

function checkLabels(labels: Record<string, string> | undefined, field: string, errors: FieldError[]): void {
  for (const [key, value] of Object.entries(labels ?? {})) {
    const slash = key.lastIndexOf('/');
    const prefix = slash >= 0 ? key.slice(0, slash) : '';
    const name = slash >= 0 ? key.slice(slash + 1) : key;
    if (slash >= 0 && !DNS1123_SUBDOMAIN.test(prefix))
      errors.push({ type: 'Invalid', field, value: key, detail: `prefix part ${SUBDOMAIN_MSG}` });
    if (name.length > 63 || !QUALIFIED_NAME.test(name)) errors.push({ type: 'Invalid', field, value: key, detail: QUALIFIED_NAME_MSG });
    if (value.length > 63) errors.push({ type: 'Invalid', field, value, detail: 'must be no more than 63 characters' });
    else if (!LABEL_VALUE.test(value)) errors.push({ type: 'Invalid', field, value, detail: LABEL_VALUE_MSG });
  }
}

/** Name (already resolved from generateName) and labels. */
export function validateMeta(r: ResourceInfo, meta: ObjectMeta, errors: FieldError[]): void {
  const name = meta.name ?? '';
  if (name === '') errors.push({ type: 'Required', field: 'metadata.name', detail: 'name or generateName is required' });
  else checkName(name, 'metadata.name', r.plural === 'services' ? 'dns1035' : r.plural === 'namespaces' ? 'label' : 'subdomain', errors);
  checkLabels(meta.labels, 'metadata.labels', errors);
}

/** 400, as a quantity fails in the decoder (resource.ParseQuantity) before any validation runs. */
export function checkQuantities(r: ResourceInfo, values: Record<string, string | number> | undefined): void {
  for (const v of Object.values(values ?? {})) {
    if (parseQuantity(v) === null)
      throw badRequest(
        `${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: quantities must match the regular expression '${QUANTITY_PATTERN}'`,
      );
  }
}

/** Extended resources (`nvidia.com/gpu`) cannot be overcommitted: integer, requests = limits. */
function isExtendedResource(name: string): boolean {
  return name.includes('/') && !name.startsWith('kubernetes.io/') && !name.startsWith('requests.');
}

function validateContainer(c: Container, field: string, volumeNames: Set<string>, names: Set<string>, errors: FieldError[]): void {
  if (!c.name) errors.push({ type: 'Required', field: `${field}.name` });
  else {
    checkName(c.name, `${field}.name`, 'label', errors);
    if (names.has(c.name)) errors.push({ type: 'Duplicate', field: `${field}.name`, value: c.name });
    names.add(c.name);
  }
  if (!c.image) errors.push({ type: 'Required', field: `${field}.image` });
  for (const [i, env] of (c.env ?? []).entries()) {
    const f = `${field}.env[${i}]`;
    if (!env.name) errors.push({ type: 'Required', field: `${f}.name` });
    const from = env.valueFrom;
    if (from) {
      if (env.value !== undefined && env.value !== '')
        errors.push({ type: 'Invalid', field: `${f}.valueFrom`, value: '', detail: 'may not be specified when `value` is not empty' });
      const refs = [from.secretKeyRef, from.configMapKeyRef, from.fieldRef].filter((x) => x !== undefined).length;
      if (refs !== 1)
        errors.push({
          type: 'Invalid',
          field: `${f}.valueFrom`,
          value: '',
          detail: 'must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`',
        });
      for (const [key, ref] of [
        ['secretKeyRef', from.secretKeyRef],
        ['configMapKeyRef', from.configMapKeyRef],
      ] as const) {
        if (!ref) continue;
        if (!ref.name) errors.push({ type: 'Required', field: `${f}.valueFrom.${key}.name` });
        if (!ref.key) errors.push({ type: 'Required', field: `${f}.valueFrom.${key}.key` });
      }
    }
  }
  const limits = c.resources?.limits ?? {};
  const requests = c.resources?.requests ?? {};
  for (const [name, raw] of Object.entries(limits)) {
    const limit = parseQuantity(raw) ?? 0;
    if (isExtendedResource(name) && !Number.isInteger(limit))
      errors.push({ type: 'Invalid', field: `${field}.resources.limits[${name}]`, value: String(raw), detail: 'must be an integer' });
  }
  for (const [name, raw] of Object.entries(requests)) {
    const request = parseQuantity(raw) ?? 0;
    const limitRaw = limits[name];
    if (isExtendedResource(name)) {
      if (limitRaw === undefined)
        errors.push({ type: 'Required', field: `${field}.resources.limits`, detail: 'Limit must be set for non overcommitable resources' });
      else if ((parseQuantity(limitRaw) ?? 0) !== request)
        errors.push({
          type: 'Invalid',
          field: `${field}.resources.requests[${name}]`,
          value: String(raw),
          detail: `must be equal to ${name} limit of ${String(limitRaw)}`,
        });
    } else if (limitRaw !== undefined && request > (parseQuantity(limitRaw) ?? 0)) {
      errors.push({
        type: 'Invalid',
        field: `${field}.resources.requests`,
        value: String(raw),
        detail: `must be less than or equal to ${name} limit of ${String(limitRaw)}`,
      });
    }
  }
  for (const [i, m] of (c.volumeMounts ?? []).entries()) {
    const f = `${field}.volumeMounts[${i}]`;
    if (!m.name) errors.push({ type: 'Required', field: `${f}.name` });
    else if (!volumeNames.has(m.name)) errors.push({ type: 'NotFound', field: `${f}.name`, value: m.name });
    if (!m.mountPath) errors.push({ type: 'Required', field: `${f}.mountPath` });
  }
  for (const [i, p] of (c.ports ?? []).entries()) {
    const n = p.containerPort;
    if (n === undefined || n < 1 || n > 65535)
      errors.push({
        type: 'Invalid',
        field: `${field}.ports[${i}].containerPort`,
        value: n ?? 0,
        detail: 'must be between 1 and 65535, inclusive',
      });
  }
  const probe = c.readinessProbe;
  if (probe) {
    const handlers = [probe.tcpSocket, probe.httpGet, probe.exec].filter((x) => x !== undefined).length;
    if (handlers !== 1) errors.push({ type: 'Required', field: `${field}.readinessProbe`, detail: 'must specify a handler type' });
    const port = probe.tcpSocket?.port ?? probe.httpGet?.port;
    if ((probe.tcpSocket || probe.httpGet) && (port === undefined || (typeof port === 'number' && (port < 1 || port > 65535))))
      errors.push({
        type: 'Invalid',
        field: `${field}.readinessProbe.${probe.tcpSocket ? 'tcpSocket' : 'httpGet'}.port`,
        value: port ?? 0,
        detail: 'must be between 1 and 65535, inclusive',
      });
  }
}

const RESTART_POLICIES = ['Always', 'OnFailure', 'Never'];

export function validatePodSpec(spec: PodSpec | undefined, field: string, errors: FieldError[]): void {
  const volumes = spec?.volumes ?? [];
  const volumeNames = new Set<string>();
  for (const [i, v] of volumes.entries()) {
    const f = `${field}.volumes[${i}]`;
    if (!v.name) errors.push({ type: 'Required', field: `${f}.name` });
    else {
      if (volumeNames.has(v.name)) errors.push({ type: 'Duplicate', field: `${f}.name`, value: v.name });
      volumeNames.add(v.name);
    }
    const sources = [v.persistentVolumeClaim, v.emptyDir, v.secret, v.configMap, v.hostPath].filter((x) => x !== undefined).length;
    if (sources === 0) errors.push({ type: 'Required', field: f, detail: 'must specify a volume type' });
    else if (sources > 1) errors.push({ type: 'Forbidden', field: f, detail: 'may not specify more than 1 volume type' });
    if (v.persistentVolumeClaim && !v.persistentVolumeClaim.claimName)
      errors.push({ type: 'Required', field: `${f}.persistentVolumeClaim.claimName` });
  }
  const containers = spec?.containers ?? [];
  if (containers.length === 0) errors.push({ type: 'Required', field: `${field}.containers` });
  const names = new Set<string>();
  for (const [i, c] of containers.entries()) validateContainer(c, `${field}.containers[${i}]`, volumeNames, names, errors);
  if (spec?.restartPolicy !== undefined && !RESTART_POLICIES.includes(spec.restartPolicy))
    errors.push({ type: 'NotSupported', field: `${field}.restartPolicy`, value: spec.restartPolicy, supported: RESTART_POLICIES });
  if (spec?.runtimeClassName != null) checkName(spec.runtimeClassName, `${field}.runtimeClassName`, 'subdomain', errors);
  checkLabels(spec?.nodeSelector, `${field}.nodeSelector`, errors);
}

export function podQuantities(r: ResourceInfo, spec: PodSpec | undefined): void {
  for (const c of [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])]) {
    checkQuantities(r, c.resources?.limits);
    checkQuantities(r, c.resources?.requests);
  }
  for (const v of spec?.volumes ?? []) if (v.emptyDir?.sizeLimit !== undefined) checkQuantities(r, { sizeLimit: v.emptyDir.sizeLimit });
}

export function validatePod(pod: Pod, errors: FieldError[]): void {
  validatePodSpec(pod.spec, 'spec', errors);
}

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];
const PROTOCOLS = ['TCP', 'UDP', 'SCTP'];

export function validateService(svc: Service, errors: FieldError[]): void {
  const spec = svc.spec;
  const type = spec?.type ?? 'ClusterIP';
  if (!SERVICE_TYPES.includes(type)) errors.push({ type: 'NotSupported', field: 'spec.type', value: type, supported: SERVICE_TYPES });
  const ports = spec?.ports ?? [];
  if (ports.length === 0 && type !== 'ExternalName') errors.push({ type: 'Required', field: 'spec.ports' });
  const names = new Set<string>();
  for (const [i, p] of ports.entries()) {
    const f = `spec.ports[${i}]`;
    if (ports.length > 1 && !p.name) errors.push({ type: 'Required', field: `${f}.name` });
    if (p.name) {
      if (names.has(p.name)) errors.push({ type: 'Duplicate', field: `${f}.name`, value: p.name });
      names.add(p.name);
    }
    if (p.port === undefined || p.port < 1 || p.port > 65535)
      errors.push({ type: 'Invalid', field: `${f}.port`, value: p.port ?? 0, detail: 'must be between 1 and 65535, inclusive' });
    if (p.protocol !== undefined && !PROTOCOLS.includes(p.protocol))
      errors.push({ type: 'NotSupported', field: `${f}.protocol`, value: p.protocol, supported: PROTOCOLS });
  }
  checkLabels(spec?.selector, 'spec.selector', errors);
}

const ACCESS_MODES = ['ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOnce', 'ReadWriteOncePod'];

export function validatePvc(pvc: Pvc, errors: FieldError[]): void {
  const modes = pvc.spec?.accessModes ?? [];
  if (modes.length === 0) errors.push({ type: 'Required', field: 'spec.accessModes', detail: 'at least 1 access mode is required' });
  for (const mode of modes)
    if (!ACCESS_MODES.includes(mode))
      errors.push({ type: 'NotSupported', field: 'spec.accessModes', value: mode, supported: ACCESS_MODES });
  const storage = pvc.spec?.resources?.requests?.storage;
  if (storage === undefined) errors.push({ type: 'Required', field: 'spec.resources[storage]' });
  else if ((parseQuantity(storage) ?? 0) <= 0)
    errors.push({ type: 'Invalid', field: 'spec.resources[storage]', value: String(storage), detail: 'must be greater than zero' });
}

export function validateConfigKeys(data: Record<string, string> | undefined, field: string, errors: FieldError[]): void {
  for (const key of Object.keys(data ?? {})) {
    if (!CONFIG_KEY.test(key)) errors.push({ type: 'Invalid', field: `${field}[${key}]`, value: key, detail: CONFIG_KEY_MSG });
  }
}

/** Secret `data` is base64; anything else fails in the decoder (400), as in the real server. */
export function checkSecretData(r: ResourceInfo, secret: Secret): void {
  for (const value of Object.values(secret.data ?? {})) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0)
      throw badRequest(`${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: illegal base64 data at input byte 0`);
  }
}

const PATH_TYPES = ['Exact', 'ImplementationSpecific', 'Prefix'];
const WILDCARD_HOST = /^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function validateBackend(b: NonNullable<NonNullable<Ingress['spec']>['defaultBackend']>, field: string, errors: FieldError[]): void {
  const svc = b.service;
  if (!svc && !b.resource)
    errors.push({ type: 'Invalid', field, value: b, detail: 'one backend (`service` or `resource`) must be specified' });
  if (!svc) return;
  if (!svc.name) errors.push({ type: 'Required', field: `${field}.service.name` });
  else checkName(svc.name, `${field}.service.name`, 'dns1035', errors);
  const port = svc.port;
  if (!port || (port.number === undefined && !port.name))
    errors.push({ type: 'Invalid', field: `${field}.service.port`, value: port ?? {}, detail: 'port name or number is required' });
  else if (port.number !== undefined && port.name)
    errors.push({ type: 'Invalid', field: `${field}.service.port`, value: port, detail: 'cannot set both port name & port number' });
}

/** networking.k8s.io/v1: `pathType` is required; backend is `service.name` + `service.port.number|name`. */
export function validateIngress(ing: Ingress, errors: FieldError[]): void {
  const spec = ing.spec;
  const rules = spec?.rules ?? [];
  if (rules.length === 0 && !spec?.defaultBackend)
    errors.push({ type: 'Invalid', field: 'spec', value: spec ?? {}, detail: 'either `defaultBackend` or `rules` must be specified' });
  if (spec?.defaultBackend) validateBackend(spec.defaultBackend, 'spec.defaultBackend', errors);
  for (const [i, rule] of rules.entries()) {
    const f = `spec.rules[${i}]`;
    if (rule.host !== undefined && rule.host !== '') {
      if (rule.host.startsWith('*')) {
        if (!WILDCARD_HOST.test(rule.host))
          errors.push({
            type: 'Invalid',
            field: `${f}.host`,
            value: rule.host,
            detail: "a wildcard DNS-1123 subdomain must start with '*.'",
          });
      } else checkName(rule.host, `${f}.host`, 'subdomain', errors);
    }
    const paths = rule.http?.paths;
    if (rule.http && (!paths || paths.length === 0)) errors.push({ type: 'Required', field: `${f}.http.paths` });
    for (const [j, p] of (paths ?? []).entries()) {
      const pf = `${f}.http.paths[${j}]`;
      if (!p.pathType) errors.push({ type: 'Required', field: `${pf}.pathType`, detail: 'pathType must be specified' });
      else if (!PATH_TYPES.includes(p.pathType))
        errors.push({ type: 'NotSupported', field: `${pf}.pathType`, value: p.pathType, supported: PATH_TYPES });
      if ((p.pathType === 'Exact' || p.pathType === 'Prefix') && !(p.path ?? '').startsWith('/'))
        errors.push({ type: 'Invalid', field: `${pf}.path`, value: p.path ?? '', detail: 'must be an absolute path' });
      if (!p.backend) errors.push({ type: 'Required', field: `${pf}.backend` });
      else validateBackend(p.backend, `${pf}.backend`, errors);
    }
  }
  for (const [i, tls] of (spec?.tls ?? []).entries()) {
    for (const [j, host] of (tls.hosts ?? []).entries()) {
      if (!host.startsWith('*')) checkName(host, `spec.tls[${i}].hosts[${j}]`, 'subdomain', errors);
    }
  }
}

/** The structural schema of Traefik v3's IngressRoute CRD: `routes` and each route's `match` are required; kind is `Rule`. */
export function validateIngressRoute(route: IngressRoute, errors: FieldError[]): void {
  const routes = route.spec?.routes;
  if (!route.spec) errors.push({ type: 'Required', field: 'spec' });
  else if (!routes) errors.push({ type: 'Required', field: 'spec.routes' });
  for (const [i, r] of (routes ?? []).entries()) {
    if (!r.match) errors.push({ type: 'Required', field: `spec.routes[${i}].match` });
    if (r.kind !== undefined && r.kind !== 'Rule')
      errors.push({ type: 'NotSupported', field: `spec.routes[${i}].kind`, value: r.kind, supported: ['Rule'] });
    for (const [j, s] of (r.services ?? []).entries())
      if (!s.name) errors.push({ type: 'Required', field: `spec.routes[${i}].services[${j}].name` });
  }
}

const STRATEGIES = ['Recreate', 'RollingUpdate'];

export function validateDeployment(dep: Deployment, errors: FieldError[]): void {
  const spec = dep.spec;
  const selector = spec?.selector?.matchLabels ?? {};
  if (!spec?.selector || Object.keys(selector).length === 0) errors.push({ type: 'Required', field: 'spec.selector' });
  const labels = spec?.template?.metadata?.labels ?? {};
  if (Object.entries(selector).some(([k, v]) => labels[k] !== v))
    errors.push({
      type: 'Invalid',
      field: 'spec.template.metadata.labels',
      value: labels,
      detail: '`selector` does not match template `labels`',
    });
  if (spec?.replicas !== undefined && spec.replicas < 0)
    errors.push({ type: 'Invalid', field: 'spec.replicas', value: spec.replicas, detail: 'must be greater than or equal to 0' });
  const type = spec?.strategy?.type;
  if (type !== undefined && !STRATEGIES.includes(type))
    errors.push({ type: 'NotSupported', field: 'spec.strategy.type', value: type, supported: STRATEGIES });
  if (spec?.template?.spec?.restartPolicy !== undefined && spec.template.spec.restartPolicy !== 'Always')
    errors.push({
      type: 'NotSupported',
      field: 'spec.template.spec.restartPolicy',
      value: spec.template.spec.restartPolicy,
      supported: ['Always'],
    });
  validatePodSpec(spec?.template?.spec, 'spec.template.spec', errors);
}

function validCidr(cidr: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m) return false;
  return m.slice(1, 5).every((o) => Number(o) <= 255) && Number(m[5]) <= 32;
}

/**
 * networking/validation ValidateNetworkPolicySpec, as far as clients meet it: policyTypes are Ingress/Egress,
 * ports have a known protocol and a port in range, an ipBlock's cidr is valid and its `except` entries lie inside it.
 */
export function validateNetworkPolicy(policy: NetworkPolicy, errors: FieldError[]): void {
  const spec = policy.spec;
  if (!spec?.podSelector) errors.push({ type: 'Required', field: 'spec.podSelector', detail: 'Required value' });
  for (const [i, t] of (spec?.policyTypes ?? []).entries())
    if (t !== 'Ingress' && t !== 'Egress')
      errors.push({
        type: 'NotSupported',
        field: `spec.policyTypes[${i}]`,
        detail: `Unsupported value: "${t}": supported values: "Ingress", "Egress"`,
        value: t,
      });
  const ports = (list: NonNullable<NonNullable<NetworkPolicy['spec']>['ingress']>[number]['ports'], field: string) => {
    for (const [j, p] of (list ?? []).entries()) {
      if (p.protocol !== undefined && !['TCP', 'UDP', 'SCTP'].includes(p.protocol))
        errors.push({
          type: 'NotSupported',
          field: `${field}[${j}].protocol`,
          detail: `Unsupported value: "${p.protocol}": supported values: "SCTP", "TCP", "UDP"`,
          value: p.protocol,
        });
      if (typeof p.port === 'number' && (p.port < 1 || p.port > 65535))
        errors.push({ type: 'Invalid', field: `${field}[${j}].port`, detail: 'must be between 1 and 65535, inclusive', value: p.port });
    }
  };
  const peers = (list: Array<{ ipBlock?: { cidr?: string; except?: string[] } }> | undefined, field: string) => {
    for (const [j, peer] of (list ?? []).entries()) {
      const block = peer.ipBlock;
      if (!block) continue;
      if (!block.cidr || !validCidr(block.cidr))
        errors.push({ type: 'Invalid', field: `${field}[${j}].ipBlock.cidr`, detail: 'must be a valid CIDR', value: block.cidr ?? '' });
      for (const [k, e] of (block.except ?? []).entries())
        if (!validCidr(e))
          errors.push({ type: 'Invalid', field: `${field}[${j}].ipBlock.except[${k}]`, detail: 'must be a valid CIDR', value: e });
    }
  };
  for (const [i, rule] of (spec?.ingress ?? []).entries()) {
    ports(rule.ports, `spec.ingress[${i}].ports`);
    peers(rule.from, `spec.ingress[${i}].from`);
  }
  for (const [i, rule] of (spec?.egress ?? []).entries()) {
    ports(rule.ports, `spec.egress[${i}].ports`);
    peers(rule.to, `spec.egress[${i}].to`);
  }
}
