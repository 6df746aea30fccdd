/**
 * The JSON shapes the simulator reads, as zod schemas. Every field is optional here, like Go's JSON
 * decoding: a wrong *type* is a 400 decode error (see decodeError), a missing or malformed *value* is
 * a 422 from validation.ts. Unknown fields pass through and are stored as sent.
 */
import { z } from 'zod';
import { badRequest, type StatusError } from './http';
import type { ResourceInfo } from './resources';

const StrMap = z.record(z.string(), z.string());
const Quantity = z.union([z.string(), z.number()]);
const IntOrString = z.union([z.number(), z.string()]);

export const OwnerReferenceSchema = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  name: z.string().optional(),
  uid: z.string().optional(),
  controller: z.boolean().optional(),
});

export const MetaSchema = z.looseObject({
  name: z.string().optional(),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().optional(),
  creationTimestamp: z.string().nullable().optional(),
  deletionTimestamp: z.string().nullable().optional(),
  deletionGracePeriodSeconds: z.number().optional(),
  labels: StrMap.optional(),
  annotations: StrMap.optional(),
  finalizers: z.array(z.string()).optional(),
  ownerReferences: z.array(OwnerReferenceSchema).optional(),
});
export type ObjectMeta = z.infer<typeof MetaSchema>;

const KeyRefSchema = z.looseObject({ name: z.string().optional(), key: z.string().optional(), optional: z.boolean().optional() });

export const EnvVarSchema = z.looseObject({
  name: z.string().optional(),
  value: z.string().optional(),
  valueFrom: z
    .looseObject({
      secretKeyRef: KeyRefSchema.optional(),
      configMapKeyRef: KeyRefSchema.optional(),
      fieldRef: z.looseObject({ fieldPath: z.string().optional() }).optional(),
    })
    .optional(),
});
export type EnvVar = z.infer<typeof EnvVarSchema>;

const ProbeSchema = z.looseObject({
  tcpSocket: z.looseObject({ port: IntOrString.optional(), host: z.string().optional() }).optional(),
  httpGet: z.looseObject({ port: IntOrString.optional(), path: z.string().optional(), scheme: z.string().optional() }).optional(),
  exec: z.looseObject({ command: z.array(z.string()).optional() }).optional(),
  periodSeconds: z.number().optional(),
  failureThreshold: z.number().optional(),
  initialDelaySeconds: z.number().optional(),
});
export type Probe = z.infer<typeof ProbeSchema>;

const ResourcesSchema = z.looseObject({
  limits: z.record(z.string(), Quantity).optional(),
  requests: z.record(z.string(), Quantity).optional(),
});

export const ContainerSchema = z.looseObject({
  name: z.string().optional(),
  image: z.string().optional(),
  imagePullPolicy: z.string().optional(),
  env: z.array(EnvVarSchema).optional(),
  ports: z
    .array(z.looseObject({ name: z.string().optional(), containerPort: z.number().optional(), protocol: z.string().optional() }))
    .optional(),
  resources: ResourcesSchema.optional(),
  readinessProbe: ProbeSchema.optional(),
  volumeMounts: z
    .array(z.looseObject({ name: z.string().optional(), mountPath: z.string().optional(), readOnly: z.boolean().optional() }))
    .optional(),
});
export type Container = z.infer<typeof ContainerSchema>;

export const VolumeSchema = z.looseObject({
  name: z.string().optional(),
  persistentVolumeClaim: z.looseObject({ claimName: z.string().optional(), readOnly: z.boolean().optional() }).optional(),
  emptyDir: z.looseObject({ medium: z.string().optional(), sizeLimit: Quantity.optional() }).optional(),
  secret: z.looseObject({ secretName: z.string().optional() }).optional(),
  configMap: z.looseObject({ name: z.string().optional() }).optional(),
  hostPath: z.looseObject({ path: z.string().optional() }).optional(),
});
export type Volume = z.infer<typeof VolumeSchema>;

export const PodSpecSchema = z.looseObject({
  containers: z.array(ContainerSchema).optional(),
  initContainers: z.array(ContainerSchema).optional(),
  volumes: z.array(VolumeSchema).optional(),
  nodeSelector: StrMap.optional(),
  nodeName: z.string().optional(),
  runtimeClassName: z.string().nullable().optional(),
  restartPolicy: z.string().optional(),
  terminationGracePeriodSeconds: z.number().optional(),
  schedulerName: z.string().optional(),
});
export type PodSpec = z.infer<typeof PodSpecSchema>;

const TemplateSchema = z.looseObject({ metadata: MetaSchema.optional(), spec: PodSpecSchema.optional() });

const ServiceSpecSchema = z.looseObject({
  type: z.string().optional(),
  selector: StrMap.optional(),
  clusterIP: z.string().optional(),
  ports: z
    .array(
      z.looseObject({
        name: z.string().optional(),
        port: z.number().optional(),
        targetPort: IntOrString.optional(),
        protocol: z.string().optional(),
      }),
    )
    .optional(),
});

const PvcSpecSchema = z.looseObject({
  accessModes: z.array(z.string()).optional(),
  storageClassName: z.string().nullable().optional(),
  volumeName: z.string().optional(),
  volumeMode: z.string().optional(),
  resources: ResourcesSchema.optional(),
});

const BackendSchema = z.looseObject({
  service: z
    .looseObject({
      name: z.string().optional(),
      port: z.looseObject({ number: z.number().optional(), name: z.string().optional() }).optional(),
    })
    .optional(),
  resource: z.looseObject({ kind: z.string().optional(), name: z.string().optional() }).optional(),
});

const IngressSpecSchema = z.looseObject({
  ingressClassName: z.string().optional(),
  defaultBackend: BackendSchema.optional(),
  tls: z.array(z.looseObject({ hosts: z.array(z.string()).optional(), secretName: z.string().optional() })).optional(),
  rules: z
    .array(
      z.looseObject({
        host: z.string().optional(),
        http: z
          .looseObject({
            paths: z
              .array(z.looseObject({ path: z.string().optional(), pathType: z.string().optional(), backend: BackendSchema.optional() }))
              .optional(),
          })
          .optional(),
      }),
    )
    .optional(),
});

const IngressRouteSpecSchema = z.looseObject({
  entryPoints: z.array(z.string()).optional(),
  routes: z
    .array(
      z.looseObject({
        match: z.string().optional(),
        kind: z.string().optional(),
        priority: z.number().optional(),
        services: z
          .array(
            z.looseObject({
              name: z.string().optional(),
              port: IntOrString.optional(),
              namespace: z.string().optional(),
              kind: z.string().optional(),
            }),
          )
          .optional(),
      }),
    )
    .optional(),
  tls: z.looseObject({ secretName: z.string().optional() }).optional(),
});

const DeploymentSpecSchema = z.looseObject({
  replicas: z.number().optional(),
  selector: z.looseObject({ matchLabels: StrMap.optional() }).optional(),
  template: TemplateSchema.optional(),
  strategy: z.looseObject({ type: z.string().optional() }).optional(),
});

const base = { apiVersion: z.string().optional(), kind: z.string().optional(), metadata: MetaSchema.optional() };

export const PodSchema = z.looseObject({ ...base, spec: PodSpecSchema.optional() });
export type Pod = z.infer<typeof PodSchema>;
export const ServiceSchema = z.looseObject({ ...base, spec: ServiceSpecSchema.optional() });
export type Service = z.infer<typeof ServiceSchema>;
export const PvcSchema = z.looseObject({ ...base, spec: PvcSpecSchema.optional() });
export type Pvc = z.infer<typeof PvcSchema>;
export const SecretSchema = z.looseObject({
  ...base,
  type: z.string().optional(),
  data: StrMap.optional(),
  stringData: StrMap.optional(),
  immutable: z.boolean().optional(),
});
export type Secret = z.infer<typeof SecretSchema>;
export const ConfigMapSchema = z.looseObject({
  ...base,
  data: StrMap.optional(),
  binaryData: StrMap.optional(),
  immutable: z.boolean().optional(),
});
export type ConfigMap = z.infer<typeof ConfigMapSchema>;
export const IngressSchema = z.looseObject({ ...base, spec: IngressSpecSchema.optional() });
export type Ingress = z.infer<typeof IngressSchema>;
export const IngressRouteSchema = z.looseObject({ ...base, spec: IngressRouteSpecSchema.optional() });
export type IngressRoute = z.infer<typeof IngressRouteSchema>;
const PeerSchema = z.looseObject({
  podSelector: z.looseObject({}).optional(),
  namespaceSelector: z.looseObject({}).optional(),
  ipBlock: z.looseObject({ cidr: z.string().optional(), except: z.array(z.string()).optional() }).optional(),
});
const NetworkPolicyPortSchema = z.looseObject({
  protocol: z.string().optional(),
  port: z.union([z.number(), z.string()]).optional(),
  endPort: z.number().optional(),
});
const NetworkPolicySpecSchema = z.looseObject({
  podSelector: z.looseObject({}).optional(),
  policyTypes: z.array(z.string()).optional(),
  ingress: z.array(z.looseObject({ from: z.array(PeerSchema).optional(), ports: z.array(NetworkPolicyPortSchema).optional() })).optional(),
  egress: z.array(z.looseObject({ to: z.array(PeerSchema).optional(), ports: z.array(NetworkPolicyPortSchema).optional() })).optional(),
});
export const NetworkPolicySchema = z.looseObject({ ...base, spec: NetworkPolicySpecSchema.optional() });
export type NetworkPolicy = z.infer<typeof NetworkPolicySchema>;
export const DeploymentSchema = z.looseObject({ ...base, spec: DeploymentSpecSchema.optional() });
export type Deployment = z.infer<typeof DeploymentSchema>;
export const GenericSchema = z.looseObject({ ...base });

export const SCHEMA_BY_KIND: Record<string, z.ZodType<Record<string, unknown>>> = {
  Pod: PodSchema,
  Service: ServiceSchema,
  PersistentVolumeClaim: PvcSchema,
  Secret: SecretSchema,
  ConfigMap: ConfigMapSchema,
  Ingress: IngressSchema,
  IngressRoute: IngressRouteSchema,
  Deployment: DeploymentSchema,
  NetworkPolicy: NetworkPolicySchema,
};

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'boolean') return 'bool';
  return typeof value;
}

const GO_TYPE: Record<string, string> = {
  string: 'string',
  number: 'int32',
  boolean: 'bool',
  object: 'map[string]interface {}',
  array: '[]interface {}',
};

function at(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur = root;
  for (const key of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

/**
 * The 400 a type mismatch gets from the API server's JSON decoder, e.g.
 * `Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal number into Go struct field Container.spec.containers.image of type string`.
 */
export function decodeError(r: ResourceInfo, body: unknown, error: z.ZodError): StatusError {
  const issue = error.issues[0];
  const path = issue?.path ?? [];
  const field = path.filter((p) => typeof p === 'string').join('.');
  const expected = issue && 'expected' in issue && typeof issue.expected === 'string' ? issue.expected : 'string';
  return badRequest(
    `${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: json: cannot unmarshal ${jsonType(at(body, path))} into Go struct field ${r.kind}.${field} of type ${GO_TYPE[expected] ?? expected}`,
  );
}
