/**
 * `npm run bridge -- doctor`: can this bridge work against this site? Per backend it checks,
 * and prints as one table: reachable, TLS verified, the version, the Proxmox token's
 * privileges against the exact list the bridge needs (GET /access/permissions), the
 * template (a template, a cloud-init drive where its login needs one, storage that can
 * make linked clones), Guacamole ≥ 1.4 (the Guacamole-Token header) and its admin's
 * permissions, and the Kubernetes RBAC verbs the Selkies driver uses
 * (SelfSubjectAccessReview). The bridge runs it at start too: a certificate that does not
 * verify stops the bridge there, with the fix; anything else is logged and the bridge
 * goes on, since a backend may come up later.
 */
import { connect as tlsConnect } from 'node:tls';
import type { BridgeConfig } from './config';
import type { GuacamoleDriver, ProxmoxDriver, ProxmoxProbe, SelkiesDriver } from './drivers/types';
import { describeFailure } from './errors';
import { checkPinned, type Trust, tlsOptions } from './tls-trust';

export type Verdict = 'ok' | 'warn' | 'fail';

export interface Check {
  backend: string;
  check: string;
  verdict: Verdict;
  detail: string;
}

/**
 * What qemu-server checks for each call the bridge makes (the permission checks of qemu-server's PVE/API2/Qemu.pm
 * clone_vm and update_vm_api, PVE/API2/Qemu/Agent.pm).
 */
export const PROXMOX_VM_PRIVILEGES = [
  'VM.Audit',
  'VM.Clone',
  'VM.Allocate',
  'VM.Config.CPU',
  'VM.Config.Memory',
  'VM.Config.Options',
  'VM.Config.Cloudinit',
  'VM.PowerMgmt',
  'VM.GuestAgent.Audit',
] as const;
export const PROXMOX_STORAGE_PRIVILEGES = ['Datastore.AllocateSpace', 'Datastore.Audit'] as const;
export const PROXMOX_SDN_PRIVILEGES = ['SDN.Use'] as const;

/** Storage types whose volumes Proxmox can clone linked (PVE::Storage plugins with the `clone` feature on images). */
const LINKED_CLONE_STORAGE = new Set(['lvmthin', 'zfspool', 'zfs', 'rbd', 'dir', 'nfs', 'cifs', 'glusterfs', 'btrfs', 'cephfs']);

/** Every Kubernetes call the Selkies driver makes, as RBAC sees it. */
export function selkiesRbacChecks(
  useIngressRoute: boolean,
): Array<{ verb: string; resource: string; group?: string; namespaced: boolean }> {
  const rw = (resource: string, verbs: string[], group?: string) => verbs.map((verb) => ({ verb, resource, group, namespaced: true }));
  return [
    ...rw('pods', ['create', 'get', 'list', 'delete']),
    ...rw('services', ['create', 'list', 'delete']),
    ...rw('secrets', ['create', 'get', 'list', 'update', 'delete']),
    ...rw('persistentvolumeclaims', ['create', 'get', 'delete']),
    ...rw('events', ['list']),
    ...rw('networkpolicies', ['create'], 'networking.k8s.io'),
    ...(useIngressRoute
      ? rw('ingressroutes', ['create', 'delete'], 'traefik.io')
      : rw('ingresses', ['create', 'delete'], 'networking.k8s.io')),
    { verb: 'list', resource: 'nodes', namespaced: false },
  ];
}

/** A TLS handshake with `url`'s host under `trust`: null when it verifies (or the URL is plain), else why not. */
export function tlsProblem(
  url: string,
  trust: Trust,
  timeoutMs = 5000,
): Promise<{ kind: 'untrusted' | 'unreachable'; reason: string } | null> {
  const u = new URL(url);
  if (u.protocol === 'http:' || u.protocol === 'ws:') return Promise.resolve(null);
  const port = Number(u.port) || 443;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = tlsConnect({ host, port, servername: /^[\d.:]+$/.test(host) ? undefined : host, ...tlsOptions(trust) });
    const done = (r: { kind: 'untrusted' | 'unreachable'; reason: string } | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ kind: 'unreachable', reason: `no TLS handshake within ${timeoutMs} ms` }), timeoutMs);
    socket.once('secureConnect', () => {
      const pinned = checkPinned(socket, trust);
      done(pinned ? { kind: 'untrusted', reason: pinned.message } : null);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? '';
      const untrusted = /CERT|SELF_SIGNED|UNABLE_TO|HOSTNAME|ALTNAME|ERR_TLS/.test(code);
      done({
        kind: untrusted ? 'untrusted' : 'unreachable',
        reason: `${err.message}${code && !err.message.includes(code) ? ` (${code})` : ''}`,
      });
    });
  });
}

/** The sentence the bridge stops with when a backend's certificate does not verify. */
export function certificateFix(backend: string, url: string, reason: string): string {
  const fixes: Record<string, string> = {
    Proxmox:
      'set PROXMOX_CA_FILE to the cluster CA (/etc/pve/pve-root-ca.pem on any node), or PROXMOX_FINGERPRINT to the SHA-256 fingerprint the GUI shows under Node → System → Certificates',
    Guacamole: 'set GUACAMOLE_CA_FILE to the CA that signed its proxy’s certificate, or GUACAMOLE_FINGERPRINT to the certificate’s SHA-256',
    Kubernetes:
      'set KUBERNETES_CA_FILE to the cluster CA (certificate-authority-data of the kubeconfig, base64-decoded; /var/lib/rancher/k3s/server/tls/server-ca.crt on K3s), or KUBERNETES_FINGERPRINT',
  };
  return `${backend} at ${url} presented a certificate the bridge does not trust (${reason}); ${fixes[backend] ?? 'configure its CA'}.`;
}

export interface DoctorTargets {
  config: BridgeConfig;
  proxmox: ProxmoxDriver & ProxmoxProbe;
  guacamole: GuacamoleDriver;
  selkies?: SelkiesDriver;
  /** The edge's /healthz over the bridge's fetch. */
  edgeHealth: () => Promise<number>;
}

async function attempt<T>(fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    return {
      ok: false,
      error: describeFailure(err, 'answer').replace(
        /^.*? (could not be reached to|refused to|rejected the bridge's credentials while trying to) answer: /,
        '',
      ),
    };
  }
}

async function tlsCheck(checks: Check[], backend: string, url: string, trust: Trust): Promise<boolean> {
  const problem = await tlsProblem(url, trust);
  const plain = url.startsWith('http:') || url.startsWith('ws:');
  if (!problem) {
    checks.push({
      backend,
      check: 'TLS verified',
      verdict: 'ok',
      detail: plain
        ? `plain HTTP to ${new URL(url).hostname} (loopback only)`
        : `certificate verified (${trust.kind === 'system' ? 'system CAs' : trust.kind === 'ca' ? `CA ${trust.file}` : 'pinned SHA-256'})`,
    });
    return true;
  }
  checks.push({
    backend,
    check: problem.kind === 'untrusted' ? 'TLS verified' : 'reachable',
    verdict: 'fail',
    detail: problem.kind === 'untrusted' ? certificateFix(backend, url, problem.reason) : problem.reason,
  });
  return false;
}

export async function runDoctor(t: DoctorTargets): Promise<Check[]> {
  const { config } = t;
  const checks: Check[] = [];

  // Edge
  const edgeHttp = config.edgeUrl.replace(/^ws/, 'http');
  const edge = await attempt(t.edgeHealth);
  checks.push({
    backend: 'Edge',
    check: 'reachable',
    verdict: edge.ok && edge.value < 500 ? 'ok' : 'fail',
    detail: edge.ok ? `${edgeHttp}/healthz answered ${edge.value}` : edge.error,
  });
  checks.push({
    backend: 'Edge',
    check: 'link encrypted',
    verdict: 'ok',
    detail: /^(https|wss):/.test(config.edgeUrl) ? 'wss://' : `ws:// to ${new URL(config.edgeUrl).hostname} (loopback only)`,
  });

  // Proxmox
  if (await tlsCheck(checks, 'Proxmox', config.proxmox.url, config.proxmox.trust)) {
    const version = await attempt(() => t.proxmox.version());
    checks.push({
      backend: 'Proxmox',
      check: 'reachable, token accepted',
      verdict: version.ok ? 'ok' : 'fail',
      detail: version.ok ? `Proxmox VE ${version.value.version} (${config.proxmox.tokenId})` : version.error,
    });
    if (version.ok) await proxmoxChecks(t, checks);
  }

  // Guacamole
  if (await tlsCheck(checks, 'Guacamole', config.guacamole.url, config.guacamole.trust)) {
    const probe = await attempt(() => t.guacamole.probe());
    checks.push({
      backend: 'Guacamole',
      check: 'version ≥ 1.4',
      verdict: probe.ok ? 'ok' : 'fail',
      detail: probe.ok ? `admin ${config.guacamole.username} logged in; the Guacamole-Token header is accepted` : probe.error,
    });
    if (probe.ok) {
      const need = ['CREATE_USER', 'CREATE_CONNECTION'];
      const has = new Set(probe.value.systemPermissions);
      const missing = has.has('ADMINISTER') ? [] : need.filter((p) => !has.has(p));
      checks.push({
        backend: 'Guacamole',
        check: 'admin permissions',
        verdict: missing.length ? 'fail' : 'ok',
        detail: missing.length
          ? `${config.guacamole.username} lacks ${missing.join(', ')}`
          : `${[...has].sort().join(', ') || '(none listed)'}`,
      });
      // Share links read and end other users' active connections, which Guacamole shows only to administrators;
      // desktops work without it, so this warns rather than fails.
      checks.push({
        backend: 'Guacamole',
        check: 'share links',
        verdict: has.has('ADMINISTER') ? 'ok' : 'warn',
        detail: has.has('ADMINISTER')
          ? 'ADMINISTER: owners’ live sessions can be shared and guests disconnected'
          : `${config.guacamole.username} lacks ADMINISTER: desktops work, share links will be refused (grant it under Settings → Users)`,
      });
    }
  }

  // Kubernetes (Selkies)
  const selkies = config.selkies;
  if (selkies && t.selkies) {
    if (await tlsCheck(checks, 'Kubernetes', selkies.kubernetesUrl, selkies.trust)) {
      const probe = await attempt(() => t.selkies!.probe(selkiesRbacChecks(selkies.useIngressRoute)));
      checks.push({
        backend: 'Kubernetes',
        check: 'reachable, token accepted',
        verdict: probe.ok ? 'ok' : 'fail',
        detail: probe.ok ? `${probe.value.gitVersion}` : probe.error,
      });
      if (probe.ok)
        checks.push({
          backend: 'Kubernetes',
          check: `RBAC in ${selkies.namespace}`,
          verdict: probe.value.denied.length ? 'fail' : 'ok',
          detail: probe.value.denied.length
            ? `the token may not: ${probe.value.denied.join(', ')}`
            : `${selkiesRbacChecks(selkies.useIngressRoute).length} verbs allowed (SelfSubjectAccessReview)`,
        });
    }
    const routeTls = selkies.publicScheme === 'https' && !selkies.routeTlsSecretName;
    checks.push({
      backend: 'Selkies routes',
      check: 'certificate',
      verdict: routeTls ? 'warn' : 'ok',
      detail: routeTls
        ? "no SELKIES_ROUTE_CERTIFICATE: Traefik answers https routes with its self-signed default certificate unless it has a default of the site's own"
        : selkies.routeTlsSecretName
          ? `routes name the secret ${selkies.routeTlsSecretName}`
          : `plain ${selkies.publicScheme} routes`,
    });
  }
  return checks;
}

async function proxmoxChecks(t: DoctorTargets, checks: Check[]): Promise<void> {
  const { proxmox: cfg } = t.config;
  const templates = [...new Set([cfg.templateVmid, ...Object.values(cfg.templates)])];
  // The template: where it is, that it is one, its disk's storage and its cloud-init drive.
  let storage = 'local-lvm';
  for (const vmid of templates) {
    const config = await attempt(() => t.proxmox.getVmConfig(cfg.node, vmid));
    if (!config.ok) {
      checks.push({ backend: 'Proxmox', check: `template ${vmid}`, verdict: 'fail', detail: config.error });
      continue;
    }
    const c = config.value;
    const disk = Object.entries(c).find(([k, v]) => /^(scsi|virtio|sata|ide)\d+$/.test(k) && !String(v).includes('media=cdrom'));
    storage = String(disk?.[1] ?? '').split(':')[0] || storage;
    const cloudInit = Object.values(c).some((v) => /cloudinit/.test(String(v)));
    const login = cfg.logins[vmid] ?? cfg.defaultLogin;
    const problems = [
      ...(c.template === 1 || c.template === '1' ? [] : ['is not a template (linked clones need one)']),
      ...(cloudInit ? [] : ['has no cloud-init drive (ciuser/cipassword would be ignored)']),
    ];
    checks.push({
      backend: 'Proxmox',
      check: `template ${vmid}`,
      verdict: problems.length ? (cloudInit ? 'warn' : 'fail') : 'ok',
      detail: problems.length
        ? `${String(c.name ?? vmid)} ${problems.join('; ')}`
        : `${String(c.name ?? vmid)}: a template with a cloud-init drive; login ${login}`,
    });
  }
  const type = await attempt(() => t.proxmox.storageType(storage));
  const linkedOk = type.ok && LINKED_CLONE_STORAGE.has(type.value);
  checks.push({
    backend: 'Proxmox',
    check: 'linked-clone storage',
    verdict: !cfg.linkedClone ? 'ok' : linkedOk ? 'ok' : 'fail',
    detail: type.ok
      ? `${storage} is ${type.value}${cfg.linkedClone ? (linkedOk ? ', which makes linked clones' : ', which cannot make linked clones: set PROXMOX_LINKED_CLONE=false or move the template') : ' (full clones)'}`
      : type.error,
  });
  // The token's privileges, where each is checked.
  const wanted: Array<[string, readonly string[]]> = [
    [`/vms/${cfg.templateVmid}`, PROXMOX_VM_PRIVILEGES],
    [`/storage/${storage}`, PROXMOX_STORAGE_PRIVILEGES],
    ['/sdn/zones/localnetwork/vmbr0', PROXMOX_SDN_PRIVILEGES],
  ];
  const missing: string[] = [];
  for (const [path, privileges] of wanted) {
    const perms = await attempt(() => t.proxmox.permissions(path));
    if (!perms.ok) {
      missing.push(`(could not read ${path}: ${perms.error})`);
      continue;
    }
    const has = new Set(perms.value[path] ?? Object.values(perms.value).flat());
    for (const p of privileges) if (!has.has(p)) missing.push(`${p} on ${path}`);
  }
  const all = [...PROXMOX_VM_PRIVILEGES, ...PROXMOX_STORAGE_PRIVILEGES, ...PROXMOX_SDN_PRIVILEGES];
  checks.push({
    backend: 'Proxmox',
    check: 'token privileges',
    verdict: missing.length ? 'fail' : 'ok',
    detail: missing.length ? `missing ${missing.join(', ')}` : `all ${all.length}: ${all.join(', ')}`,
  });
  checks.push({
    backend: 'Proxmox',
    check: 'guest networks',
    verdict: cfg.guestNetworks.length ? 'ok' : 'warn',
    detail: cfg.guestNetworks.length
      ? `guest addresses must lie in ${cfg.guestNetworks.map((n) => n.text).join(', ')}`
      : 'PROXMOX_GUEST_NETWORKS unset: any routable address a guest reports becomes Guacamole’s target',
  });
}

const MARK: Record<Verdict, string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL' };

export function formatChecks(checks: Check[]): string {
  const rows = checks.map((c) => [c.backend, c.check, MARK[c.verdict], c.detail]);
  const head = ['backend', 'check', 'result', 'detail'];
  const widths = [0, 1, 2].map((i) => Math.max(head[i]?.length ?? 0, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i] ?? 0) : cell)).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w)).concat('------')), ...rows.map(line)].join('\n');
}
