/**
 * Selkies desktops on the site's Kubernetes: per session a Secret (its Basic password), a Pod from the template's
 * pinned image, a Service and a route with its own hostname; per user a home PVC that outlives sessions and is mounted
 * again by the next one.
 *
 * Steps report the same progression as a VM (PRD 3.1): `clone` (objects created) → PROVISIONING, `start_vm` (pod
 * scheduled) → STARTING, `wait_ip` (pod Ready: TCP 8080, the image opens it once X and signalling run) →
 * WAITING_FOR_IP, `connection` (the route answers /health with the session's credentials) → CONFIGURING. Every step is
 * an idempotent "ensure", so a resumed or redelivered command carries on where the last run got to.
 */
import { createHmac } from 'node:crypto';
import type { DesktopSpec } from '../../../src/schemas/bridge-protocol';
import type { SelkiesDriver, SelkiesEnvVar, SelkiesPodState } from '../drivers/types';
import { TaskError, describeFailure } from '../errors';
import type { Logger } from '../logger';
import { formatDuration } from '../retry';
import type { Task, TaskDeps } from './context';
import { type Reporter, createReporter } from './reporter';
import { type Tools, toolsFor } from './tools';

export interface SelkiesSettings {
  driver: SelkiesDriver;
  /** How browsers reach session routes: https://desk-<id>.<domain>[:port]/ */
  publicScheme: 'https' | 'http';
  publicPort: number;
  /** What the desktop pods may not reach (their NetworkPolicy). */
  blockedCidrs: string[];
  /** How long the kubelet may keep retrying the image pull (ErrImagePull → ImagePullBackOff → …) before the start fails. */
  pullDeadlineMs: number;
}

export type SelkiesDeps = TaskDeps & { selkies: SelkiesSettings };

/** The web client's Basic user; the password is derived per session (never stored). */
export const SESSION_USER = 'desktop';
const SCHEDULE_WAIT_MS = 60_000;
const READY_WAIT_MS = 5 * 60_000;
const GONE_WAIT_MS = 30_000;

export const sessionName = (desktopId: string) => `desk-${desktopId}`;

/**
 * The user's home volume: named by a full-length HMAC-SHA256, keyed with the bridge's own
 * secret, of the tenant (the platform's users, or the service whose namespace the user id
 * is in) and the user id. Nobody without BRIDGE_SECRET can derive another user's volume
 * name, two user ids (or the same id in two tenants) never share one, and the name says
 * nothing of whose it is. Rotating BRIDGE_SECRET therefore starts every user on an empty
 * home (copy the old volumes first, see `legacyHomeVolumeName`).
 */
export function homeVolumeName(bridgeSecret: string, tenant: string | undefined, userId: string): string {
  const mac = createHmac('sha256', bridgeSecret)
    .update(JSON.stringify(['home-volume', tenant ?? 'users', userId]))
    .digest('hex');
  return `home-${mac}`;
}

/**
 * The name releases before this one gave a user's home: readable user id plus 40 bits of a
 * hash anyone can compute. Such a volume is not mounted any more, because the name alone
 * cannot tell which tenant made it (a service could have made it for the same user id);
 * the bridge logs it when it first creates the new home, so an operator can copy the data
 * over (a Job mounting both) and delete it.
 */
export function legacyHomeVolumeName(userId: string): string {
  const readable = userId
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  const hash = createHmac('sha256', 'home-volume').update(userId).digest('hex').slice(0, 10);
  return `home-${readable || 'user'}-${hash}`;
}

export function sessionPassword(bridgeSecret: string, desktopId: string): string {
  return createHmac('sha256', bridgeSecret).update(`selkies-password:${desktopId}`).digest('base64url').slice(0, 24);
}

export function sessionUrl(s: SelkiesSettings, desktopId: string): string {
  const port =
    (s.publicScheme === 'https' && s.publicPort === 443) || (s.publicScheme === 'http' && s.publicPort === 80) ? '' : `:${s.publicPort}`;
  return `${s.publicScheme}://${s.driver.routeHost(sessionName(desktopId))}${port}/`;
}

function podEnv(spec: DesktopSpec, name: string): SelkiesEnvVar[] {
  const turn = spec.turn;
  // Without TURN settings the image starts its own coturn, or selkies falls back to a public relay (the image's
  // entrypoint; selkies' __main__.py defaults): refuse instead.
  if (!turn)
    throw new TaskError('No TURN credentials came with the command; a WebRTC desktop is not started without the site’s TURN server');
  return [
    { name: 'PASSWD', secretKeyRef: { name, key: 'password' } },
    { name: 'SELKIES_BASIC_AUTH_USER', value: SESSION_USER },
    { name: 'SELKIES_BASIC_AUTH_PASSWORD', secretKeyRef: { name, key: 'password' } },
    // NVENC when the session has GPU slots, x264 on the CPU otherwise.
    { name: 'SELKIES_ENCODER', value: (spec.gpuSlots ?? 0) > 0 ? 'nvh264enc' : 'x264enc' },
    { name: 'SELKIES_ENABLE_RESIZE', value: 'true' },
    { name: 'SELKIES_TURN_HOST', value: turn.host },
    { name: 'SELKIES_TURN_PORT', value: String(turn.port) },
    { name: 'SELKIES_TURN_PROTOCOL', value: 'udp' },
    { name: 'SELKIES_TURN_USERNAME', value: turn.username },
    { name: 'SELKIES_TURN_PASSWORD', secretKeyRef: { name, key: 'turn-credential' } },
    { name: 'SELKIES_STUN_HOST', value: turn.host },
    { name: 'SELKIES_STUN_PORT', value: String(turn.port) },
    { name: 'NVIDIA_DRIVER_CAPABILITIES', value: 'all' },
  ];
}

/** Brings a session up (create and start alike): every object ensured, then waited for through the route. */
async function bringUp(deps: SelkiesDeps, t: Tools, spec: DesktopSpec, r: Reporter, log: Logger): Promise<void> {
  const { driver } = deps.selkies;
  const name = sessionName(spec.desktopId);
  const owner = deps.owner();
  // Reconciliation acts only on sessions carrying this site's and this deployment's labels.
  const labels = {
    'app.kubernetes.io/instance': name,
    'cdaas/desktop': spec.desktopId,
    'cdaas/site': owner.siteId,
    ...(owner.deploymentId ? { 'cdaas/deployment': owner.deploymentId } : {}),
  };
  const password = sessionPassword(deps.settings.bridgeSecret, spec.desktopId);
  const gpuSlots = spec.gpuSlots ?? 0;
  if (gpuSlots > 0 && !spec.gpu) throw new TaskError('The command asks for GPU slots but carries no GPU booking');
  if (!spec.image) throw new TaskError('The command carries no desktop image');
  const env = podEnv(spec, name);
  // A warm pool's unclaimed member is nobody's: a throwaway home, no volume made for the pool's owner id.
  const pvc = spec.scratchHome ? null : homeVolumeName(deps.settings.bridgeSecret, spec.tenant, spec.userId);

  r.report('allocate', gpuSlots > 0 ? `${gpuSlots} GPU slots booked on ${spec.gpu?.node}` : 'no GPU: CPU encoding', {
    node: spec.gpu?.node,
  });
  r.report('clone', `creating the session's pod ${name} from ${spec.image}`);
  await t.attempt('keep desktop pods off the cluster network', () => driver.ensureNetworkPolicy(deps.selkies.blockedCidrs));
  await t.attempt(`store the session secret ${name}`, () =>
    driver.ensureSecret(name, { password, 'turn-credential': spec.turn?.credential ?? '' }, labels),
  );
  if (pvc) {
    const home = await t.attempt(`create the home volume ${pvc}`, () =>
      driver.ensurePvc(pvc, spec.storageGb ?? 10, { 'app.kubernetes.io/component': 'home', 'app.kubernetes.io/managed-by': 'cdaas' }),
    );
    if (home === 'created') await noteLegacyHome(deps, t, log, spec, pvc);
  }
  const nodeName = await placePod(deps, t, spec, pvc, r);
  await t.attempt(`create the pod ${name}`, () =>
    driver.ensurePod({
      name,
      labels,
      image: spec.image as string,
      env,
      gpuSlots,
      cpu: spec.cpuCores,
      memoryMi: spec.memoryMb,
      cpuRequest: Math.max(1, Math.floor(spec.cpuCores / 4)),
      memoryRequestMi: Math.min(spec.memoryMb, 2048),
      pvcName: pvc,
      nodeName,
    }),
  );

  const scheduled = await t.pollFor(
    `see the pod ${name} scheduled`,
    async () => {
      const pod = await driver.getPod(name);
      return pod?.node ? pod : null;
    },
    SCHEDULE_WAIT_MS,
  );
  if (!scheduled) {
    const pod = await driver.getPod(name);
    throw new TaskError(
      `The session's pod was not scheduled within ${SCHEDULE_WAIT_MS / 1000} s: ${podTrouble(pod) ?? 'no node accepted it'}`,
    );
  }
  r.report('start_vm', `pod ${name} scheduled on ${scheduled.node}; starting the desktop`, { node: scheduled.node ?? undefined });

  r.report('wait_ip', 'waiting for the desktop and its signalling server (TCP 8080)');
  await waitUntilReady(deps, t, name, spec.image as string, r);

  const host = driver.routeHost(name);
  const url = sessionUrl(deps.selkies, spec.desktopId);
  r.report('connection', `publishing the session at ${url}`, { sessionUrl: url });
  await t.attempt(`create the service ${name}`, () => driver.ensureService(name, labels, labels));
  await t.attempt(`create the route ${host}`, () => driver.ensureRoute(name, host, name, labels));
  await t.pollUntil(
    `check the route ${host}`,
    async () => {
      const check = await driver.checkRoute(host, SESSION_USER, password);
      if (check === 'unauthorized') throw new TaskError(`The session's web client at ${url} refused its own credentials`);
      return check === 'ready' ? check : null;
    },
    READY_WAIT_MS,
    `The session's address ${url} did not answer within ${READY_WAIT_MS / 1000} s`,
  );
}

/**
 * The node the session's pod goes to, with a pod of another home out of its way. A pod's volumes cannot change once
 * it exists (the API server refuses the update), so a claimed pool member's pod, which has a throwaway home, is
 * replaced by one that mounts the claimer's home: on the member's node (the command's `node`), whose kubelet has the
 * image, so the new pod skips the pull and costs a container start. A GPU booking names the node itself. A home that
 * already lives on another node (local-path volumes stay on theirs) wins over the warm node, and refuses a GPU
 * booked elsewhere at once rather than leaving the pod unschedulable.
 */
async function placePod(deps: SelkiesDeps, t: Tools, spec: DesktopSpec, pvc: string | null, r: Reporter): Promise<string | undefined> {
  const { driver } = deps.selkies;
  const name = sessionName(spec.desktopId);
  const existing = await t.attempt(`look for the pod ${name}`, () => driver.getPod(name));
  const node = spec.gpu?.node ?? spec.node ?? existing?.node ?? undefined;
  if (existing && (existing.deleting || existing.homeClaim !== pvc)) {
    if (!existing.deleting) {
      const where = node ? ` on ${node}, whose kubelet has the image` : '';
      r.report('clone', `replacing the pod ${name} with one that mounts ${pvc ? 'the user’s home' : 'a throwaway home'}${where}`);
      await t.attempt(`delete the pod ${name}`, () => driver.deletePod(name, { gracePeriodSeconds: 5 }));
    }
    await t.pollUntil(
      `see the pod ${name} gone`,
      async () => ((await driver.getPod(name)) ? null : true),
      GONE_WAIT_MS,
      `The pod ${name} is still terminating after ${GONE_WAIT_MS / 1000} s`,
    );
  }
  if (!pvc || !node) return node;
  const home = await t.attempt(`read the home volume ${pvc}`, () => driver.getPvc(pvc));
  if (!home?.node || home.node === node) return node;
  if (spec.gpu)
    throw new TaskError(
      `The user's home volume lives on node ${home.node} (local volumes stay on their node), but the session's GPU is booked on ${node}`,
    );
  r.report('clone', `the user's home lives on ${home.node}: the desktop runs there (its image is pulled there if that node lacks it)`);
  return home.node;
}

/** Container states that retrying will not cure (kubelet reasons). Image pulls are retried by the kubelet. */
const FATAL_CONTAINER_REASONS = new Set(['InvalidImageName', 'CreateContainerConfigError', 'StartError', 'CrashLoopBackOff']);
const PULLING_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff']);

/**
 * Until the pod is Ready. The first ErrImagePull is not final: the kubelet retries with back-off and a cold node may
 * need minutes for a multi-GB image, so pulls are given the pull deadline and reported as they go (the kubelet's
 * own words from the pod's events). A pod the kubelet refused (phase Failed: UnexpectedAdmissionError, OutOf…)
 * fails at once.
 */
async function waitUntilReady(deps: SelkiesDeps, t: Tools, name: string, image: string, r: Reporter): Promise<void> {
  const { driver, pullDeadlineMs } = deps.selkies;
  const started = Date.now();
  let lastNote = '';
  const ready = await t.pollFor(
    `wait for the pod ${name} to be ready`,
    async () => {
      const pod = await driver.getPod(name);
      if (pod?.phase === 'Failed') throw new TaskError(`The kubelet refused the session's pod: ${podTrouble(pod) ?? 'Failed'}`);
      const trouble = podTrouble(pod);
      if (trouble && pod?.containerReason && FATAL_CONTAINER_REASONS.has(pod.containerReason))
        throw new TaskError(`The desktop could not start: ${trouble}`);
      if (pod?.ready) return pod;
      const pulling = pod?.containerReason ? PULLING_REASONS.has(pod.containerReason) : false;
      const events = await driver.podEvents(name).catch(() => []);
      const latest = events.filter((e) => /Pull|BackOff|Failed/.test(e.reason)).at(-1);
      if (latest || pulling) {
        const seconds = Math.round((Date.now() - started) / 1000);
        const progress = /(\d+(?:\.\d+)?\s*[KMGT]?i?B?) of (\d+(?:\.\d+)?\s*[KMGT]?i?B)/.exec(latest?.message ?? '');
        const note = progress
          ? `pulling image, ${progress[1]} of ${progress[2]}`
          : latest?.reason === 'Pulled'
            ? 'image pulled; starting the desktop'
            : `pulling image ${image} (${seconds} s so far${pulling ? `; the kubelet retries after: ${pod?.containerMessage ?? pod?.containerReason}` : ''})`;
        if (note !== lastNote) {
          r.report('wait_ip', note.slice(0, 480));
          lastNote = note;
        }
        if (pulling && Date.now() - started > pullDeadlineMs)
          throw new TaskError(
            `The image ${image} could not be pulled within ${formatDuration(pullDeadlineMs)}: ${trouble ?? 'ImagePullBackOff'}`,
          );
      }
      return null;
    },
    pullDeadlineMs + READY_WAIT_MS,
  );
  if (!ready) throw new TaskError(`The desktop did not become ready within ${formatDuration(pullDeadlineMs + READY_WAIT_MS)}`);
}

/** A home of an older release for this user id: left alone, but named for the operator (see legacyHomeVolumeName). */
async function noteLegacyHome(deps: SelkiesDeps, t: Tools, log: Logger, spec: DesktopSpec, pvc: string): Promise<void> {
  const legacy = legacyHomeVolumeName(spec.userId);
  const found = await t.attempt(`look for an older home volume ${legacy}`, () => deps.selkies.driver.getPvc(legacy)).catch(() => null);
  if (found) {
    log.warn('an older home volume exists for this user and is not mounted; copy its data to the new one if it is theirs', {
      desktopId: spec.desktopId,
      legacyVolume: legacy,
      homeVolume: pvc,
    });
  }
}

function podTrouble(pod: SelkiesPodState | null): string | null {
  if (!pod) return null;
  if (pod.schedulingMessage) return pod.schedulingMessage;
  if (pod.containerReason) return `${pod.containerReason}${pod.containerMessage ? `: ${pod.containerMessage}` : ''}`;
  return null;
}

/** Ends a session: pod, service and route go (and, on delete, the secret); the user's home volume stays. */
async function tearDown(deps: SelkiesDeps, t: Tools, spec: DesktopSpec, r: Reporter, removeSecret: boolean): Promise<void> {
  const { driver } = deps.selkies;
  const name = sessionName(spec.desktopId);
  r.report('shutdown', `ending the session ${name}`);
  await t.attempt(`delete the route of ${name}`, () => driver.deleteRoute(name));
  await t.attempt(`delete the service ${name}`, () => driver.deleteService(name));
  await t.attempt(`delete the pod ${name}`, () => driver.deletePod(name, { gracePeriodSeconds: 5 }));
  await t.pollUntil(
    `see the pod ${name} gone`,
    async () => ((await driver.getPod(name)) ? null : true),
    GONE_WAIT_MS,
    `The pod ${name} is still terminating after ${GONE_WAIT_MS / 1000} s`,
  );
  if (removeSecret) {
    r.report('destroy', "removing the session's secret; the home volume stays");
    await t.attempt(`delete the secret ${name}`, () => driver.deleteSecret(name));
  }
}

export function selkiesTasks(deps: SelkiesDeps): Record<'create' | 'start' | 'stop' | 'delete', Task> {
  const up: Task = async (spec, ctx) => {
    const t = toolsFor(deps, ctx.signal, ctx.log);
    const r = createReporter(ctx);
    try {
      await bringUp(deps, t, spec, r, ctx.log);
      return { ...r.facts };
    } catch (err) {
      const reason = describeFailure(err, `start the session of desktop ${spec.desktopId}`);
      // A session that did not come up must not hold its GPU slots or a half-made pod.
      const cleanUp = toolsFor(deps, AbortSignal.timeout(deps.timing.cleanupTimeoutMs), ctx.log);
      const cleaned = await tearDown(deps, cleanUp, spec, createReporter({ ...ctx, progress: () => {} }), false).then(
        () => 'its pod, service and route were removed',
        (e: unknown) => `removing its pod failed: ${describeFailure(e, 'remove the pod')}`,
      );
      throw new TaskError(`${reason}; ${cleaned}`, { cause: err });
    }
  };
  const down =
    (removeSecret: boolean): Task =>
    async (spec, ctx) => {
      const t = toolsFor(deps, ctx.signal, ctx.log);
      const r = createReporter(ctx);
      await tearDown(deps, t, spec, r, removeSecret);
      return { ...r.facts };
    };
  return { create: up, start: up, stop: down(false), delete: down(true) };
}

/** The session's address and Basic credentials (the `session_credentials` request). */
export function selkiesCredentials(deps: SelkiesDeps, desktopId: string): { ok: true; url: string; username: string; password: string } {
  return {
    ok: true,
    url: sessionUrl(deps.selkies, desktopId),
    username: SESSION_USER,
    password: sessionPassword(deps.settings.bridgeSecret, desktopId),
  };
}

/** The Selkies sessions of this site and deployment, by their labels (reconciliation's view). */
export async function sessionInventory(
  deps: SelkiesDeps,
): Promise<Array<{ desktopId: string; phase: string | null; node: string | null; gpuSlots: number }>> {
  const owner = deps.owner();
  if (!owner.deploymentId) return [];
  return deps.selkies.driver.listSessions({ 'cdaas/site': owner.siteId, 'cdaas/deployment': owner.deploymentId });
}

/** The site's GPUs as the edge books them: one entry per physical GPU, with its time-slicing replicas as slots. */
export async function gpuInventory(driver: SelkiesDriver): Promise<{ id: string; node: string; model: string; slots: number }[]> {
  const nodes = await driver.listGpuNodes();
  return nodes
    .filter((n) => n.ready && n.gpus > 0)
    .flatMap((n) =>
      Array.from({ length: n.gpus }, (_, i) => ({ id: `${n.node}/gpu${i}`, node: n.node, model: n.model, slots: n.slotsPerGpu })),
    );
}
