/**
 * The per-session objects as the Kubernetes REST API takes them, built from the driver's parameters and nothing else:
 * the driver decides no policy here.
 */
import type { V1EnvVar, V1Ingress, V1NetworkPolicy, V1PersistentVolumeClaim, V1Pod, V1Secret, V1Service } from '@kubernetes/client-node';
import type { SelkiesEnvVar, SelkiesPodSpec } from './types';

export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'cdaas' } as const;
/** nginx on 8080 is the only port the Selkies desktop images serve (their selkies-gstreamer-entrypoint.sh). */
export const DESKTOP_PORT = 8080;
export const TRAEFIK_GROUP = 'traefik.io';
export const TRAEFIK_VERSION = 'v1alpha1';
export const INGRESS_ROUTES = 'ingressroutes';

export interface RouteOptions {
  /** Traefik entry points, e.g. ['websecure']. */
  entryPoints: string[];
  /** Secret with the wildcard certificate; no TLS section when absent. */
  tlsSecretName?: string;
}

function labelled(labels: Record<string, string> | undefined): Record<string, string> {
  return { ...labels, ...MANAGED_BY };
}

function envVar(e: SelkiesEnvVar): V1EnvVar {
  return 'secretKeyRef' in e
    ? { name: e.name, valueFrom: { secretKeyRef: { name: e.secretKeyRef.name, key: e.secretKeyRef.key } } }
    : { name: e.name, value: e.value };
}

/** Quantities go over the wire as strings (the API's resource.Quantity); cores as millicores so 0.5 stays exact. */
function cpuQuantity(cores: number): string {
  return Number.isInteger(cores) ? String(cores) : `${Math.round(cores * 1000)}m`;
}

export function secretManifest(name: string, data: Record<string, string>, labels: Record<string, string>): V1Secret {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, labels: labelled(labels) }, type: 'Opaque', stringData: data };
}

export function pvcManifest(name: string, storageGi: number, labels: Record<string, string>): V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, labels: labelled(labels) },
    // No storageClassName: the cluster's default class (K3s: local-path, WaitForFirstConsumer).
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: `${storageGi}Gi` } } },
  };
}

export function podManifest(spec: SelkiesPodSpec): V1Pod {
  const gpu = spec.gpuSlots > 0;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: spec.name, labels: labelled(spec.labels) },
    spec: {
      // K3s (docs/advanced.md, NVIDIA runtime): only the `nvidia` runtime class gets the GPU into the container; GPUs
      // go in limits only.
      ...(gpu ? { runtimeClassName: 'nvidia' } : {}),
      ...(spec.nodeName ? { nodeSelector: { 'kubernetes.io/hostname': spec.nodeName } } : {}),
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 10,
      // A desktop's user owns the session: no API credentials inside it.
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      // The image's entrypoint runs as its `ubuntu` user (uid 1000) and needs no root; /dev/shm and the home volume
      // must be writable by it (fsGroup).
      securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'desktop',
          image: spec.image,
          env: spec.env.map(envVar),
          ports: [{ name: 'http', containerPort: DESKTOP_PORT, protocol: 'TCP' }],
          resources: {
            limits: {
              ...(gpu ? { 'nvidia.com/gpu': String(spec.gpuSlots) } : {}),
              cpu: cpuQuantity(spec.cpu),
              memory: `${spec.memoryMi}Mi`,
            },
            requests: { cpu: cpuQuantity(spec.cpuRequest ?? spec.cpu), memory: `${spec.memoryRequestMi ?? spec.memoryMi}Mi` },
          },
          // The image's supervisord starts nginx only once selkies listens, so TCP 8080 accepting ⇒ X and signalling
          // are up; an httpGet would meet nginx's Basic auth, which covers /health too.
          readinessProbe: { tcpSocket: { port: DESKTOP_PORT }, periodSeconds: 2, failureThreshold: 150 },
          securityContext: { allowPrivilegeEscalation: false, privileged: false, capabilities: { drop: ['ALL'] } },
          volumeMounts: [
            { name: 'home', mountPath: '/home/ubuntu' },
            { name: 'dshm', mountPath: '/dev/shm' },
          ],
        },
      ],
      volumes: [
        spec.pvcName ? { name: 'home', persistentVolumeClaim: { claimName: spec.pvcName } } : { name: 'home', emptyDir: {} },
        { name: 'dshm', emptyDir: { medium: 'Memory' } },
      ],
    },
  };
}

export function serviceManifest(name: string, selector: Record<string, string>, labels: Record<string, string> | undefined): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, labels: labelled(labels) },
    spec: { type: 'ClusterIP', selector, ports: [{ name: 'http', port: DESKTOP_PORT, targetPort: DESKTOP_PORT, protocol: 'TCP' }] },
  };
}

/** A dedicated host at `/` (selkies v1.6.2's gst-web app.js asks for /turn at the root); pathType is required (networking/v1). */
export function ingressManifest(
  name: string,
  host: string,
  serviceName: string,
  labels: Record<string, string> | undefined,
  route: RouteOptions,
): V1Ingress {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      name,
      labels: labelled(labels),
      annotations: { 'traefik.ingress.kubernetes.io/router.entrypoints': route.entryPoints.join(',') },
    },
    spec: {
      ingressClassName: 'traefik',
      ...(route.tlsSecretName ? { tls: [{ hosts: [host], secretName: route.tlsSecretName }] } : {}),
      rules: [
        {
          host,
          http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: serviceName, port: { number: DESKTOP_PORT } } } }] },
        },
      ],
    },
  };
}

/** Traefik v3 IngressRoute (group traefik.io; v3 rules take one value per matcher). */
export function ingressRouteManifest(
  name: string,
  host: string,
  serviceName: string,
  labels: Record<string, string> | undefined,
  route: RouteOptions,
): Record<string, unknown> {
  return {
    apiVersion: `${TRAEFIK_GROUP}/${TRAEFIK_VERSION}`,
    kind: 'IngressRoute',
    metadata: { name, labels: labelled(labels) },
    spec: {
      entryPoints: route.entryPoints,
      routes: [{ match: `Host(\`${host}\`)`, kind: 'Rule', services: [{ name: serviceName, port: DESKTOP_PORT }] }],
      ...(route.tlsSecretName ? { tls: { secretName: route.tlsSecretName } } : {}),
    },
  };
}

export const NETWORK_POLICY = 'cdaas-desktops';

/**
 * The desktop pods' network (networking.k8s.io/v1): in, only the desktop port (Traefik reaches it); out, DNS to
 * kube-system and anything but the blocked networks (the cluster's pod and service ranges, link-local metadata
 * addresses). The TURN relay and the internet stay reachable; the API server, kubelets and other pods do not.
 */
export function networkPolicyManifest(blockedCidrs: string[]): V1NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: NETWORK_POLICY, labels: { ...MANAGED_BY } },
    spec: {
      podSelector: { matchLabels: { ...MANAGED_BY } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ ports: [{ protocol: 'TCP', port: DESKTOP_PORT }] }],
      egress: [
        {
          to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
        { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: blockedCidrs } }] },
      ],
    },
  };
}
