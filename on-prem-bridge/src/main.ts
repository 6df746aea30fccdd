/**
 * `npm run bridge`: configuration → drivers → start checks → runner → edge link. The bridge
 * only dials out; Proxmox, Guacamole and Kubernetes credentials stay in this process.
 * `npm run bridge -- doctor` runs the checks alone, prints them, and exits 0 only when none failed.
 */
import { join } from 'node:path';
import { createBridge } from './bridge';
import { type BridgeConfig, ConfigError, configSummary, loadConfig } from './config';
import { certificateFix, type DoctorTargets, formatChecks, runDoctor, tlsProblem } from './doctor';
import { createGuacamoleDriver } from './drivers/guacamole';
import { createSelkiesDriver } from './drivers/kubernetes';
import { createProxmoxDriver } from './drivers/proxmox';
import { createLogger } from './logger';
import { createMetrics, serveMetrics } from './metrics';
import { onShutdownSignals } from './shutdown';
import { DEFAULT_TIMING } from './tasks/context';
import { taskSettings } from './tasks';
import { type Trust, trustedApiFetch, trustedFetch } from './tls-trust';
import { fileLedger } from './vm-ledger';

function readConfig(): BridgeConfig {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Plain text on stderr: this is read by a person starting the service, not a log shipper.
    process.stderr.write(`${err.message}\n`);
    process.exit(78); // EX_CONFIG
  }
}

function drivers(config: BridgeConfig) {
  const proxmox = createProxmoxDriver({
    url: config.proxmox.url,
    tokenId: config.proxmox.tokenId,
    tokenSecret: config.proxmox.tokenSecret,
    fetch: trustedApiFetch(config.proxmox.trust),
  });
  const guacamole = createGuacamoleDriver({
    url: config.guacamole.url,
    publicUrl: config.guacamole.publicUrl,
    username: config.guacamole.username,
    password: config.guacamole.password,
    dataSource: config.guacamole.dataSource,
    fetch: trustedApiFetch(config.guacamole.trust),
  });
  const s = config.selkies;
  const selkies = s
    ? createSelkiesDriver({
        url: s.kubernetesUrl,
        token: s.token,
        namespace: s.namespace,
        routeDomain: s.routeDomain,
        routeOrigin: s.routeOrigin,
        routeTlsSecretName: s.routeTlsSecretName,
        useIngressRoute: s.useIngressRoute,
        routeTrust: s.routeTrust,
        fetch: trustedFetch(s.trust),
      })
    : undefined;
  return { proxmox, guacamole, selkies };
}

function doctorTargets(config: BridgeConfig, d: ReturnType<typeof drivers>): DoctorTargets {
  return {
    config,
    ...d,
    edgeHealth: async () => (await fetch(`${config.edgeUrl.replace(/^ws/, 'http')}/healthz`, { signal: AbortSignal.timeout(5000) })).status,
  };
}

async function doctor(): Promise<void> {
  const config = readConfig();
  const checks = await runDoctor(doctorTargets(config, drivers(config)));
  process.stdout.write(`${formatChecks(checks)}\n`);
  const failed = checks.filter((c) => c.verdict === 'fail');
  if (failed.length) process.stdout.write(`\n${failed.length} check${failed.length === 1 ? '' : 's'} failed.\n`);
  process.exit(failed.length ? 1 : 0);
}

async function main(): Promise<void> {
  const config = readConfig();
  const log = createLogger({ level: config.logLevel });
  log.info('on-prem bridge starting', { config: configSummary(config) });
  // A bug that escapes every handler still ends as one JSON line, then a restart by the
  // supervisor; leases make that safe.
  const crash = (kind: string) => (err: unknown) => {
    log.error(`${kind}; exiting`, { error: err, stack: err instanceof Error ? err.stack : undefined });
    process.exit(70); // EX_SOFTWARE
  };
  process.on('uncaughtException', crash('uncaught exception'));
  process.on('unhandledRejection', crash('unhandled rejection'));

  const d = drivers(config);
  // A certificate that does not verify will not verify later either: the bridge stops here, with the fix. The
  // handshakes run side by side and take milliseconds, so a restarted bridge is back at once.
  const backends: Array<[string, string, Trust]> = [
    ['Proxmox', config.proxmox.url, config.proxmox.trust],
    ['Guacamole', config.guacamole.url, config.guacamole.trust],
    ...(config.selkies ? [['Kubernetes', config.selkies.kubernetesUrl, config.selkies.trust] as [string, string, Trust]] : []),
  ];
  const problems = await Promise.all(backends.map(async ([name, url, trust]) => ({ name, url, problem: await tlsProblem(url, trust) })));
  const untrusted = problems.filter((p) => p.problem?.kind === 'untrusted');
  if (untrusted.length) {
    for (const p of untrusted) process.stderr.write(`${certificateFix(p.name, p.url, p.problem?.reason ?? '')}\n`);
    process.exit(78);
  }

  const metrics = createMetrics();
  if (config.metricsListen) {
    const { host, port } = config.metricsListen;
    await serveMetrics(metrics, config.metricsListen).then(
      (server) => {
        server.unref();
        log.info('metrics listening', { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics` });
      },
      (err: unknown) => log.warn('could not listen for metrics; running without them', { listen: `${host}:${port}`, error: err }),
    );
  }

  const bridge = createBridge({
    edgeUrl: config.edgeUrl,
    siteId: config.siteId,
    siteKey: config.siteKey,
    concurrency: config.concurrency,
    deps: {
      proxmox: d.proxmox,
      guacamole: d.guacamole,
      selkies: d.selkies
        ? {
            driver: d.selkies,
            publicScheme: config.selkies?.publicScheme ?? 'https',
            publicPort: config.selkies?.publicPort ?? 443,
            blockedCidrs: config.selkies?.blockedCidrs ?? [],
            pullDeadlineMs: (config.selkies?.pullDeadlineSeconds ?? 900) * 1000,
          }
        : undefined,
      settings: taskSettings(config),
      timing: DEFAULT_TIMING,
      ledger: fileLedger(join(config.stateDir, config.siteId)),
      owner: () => ({ siteId: config.siteId, deploymentId: bridge.link.deploymentId }),
    },
    log,
    metrics,
  });

  onShutdownSignals(async () => {
    const { unfinished } = await bridge.stop(config.drainTimeoutSeconds * 1000);
    if (unfinished.length > 0) {
      // Safe to abandon: their leases lapse and the edge hands them out again to resume.
      log.warn('exiting with commands unfinished; they resume when handed out again', { unfinished });
    }
    log.info('on-prem bridge stopped');
  }, log);

  bridge.start();
  // The rest of doctor's checks, in the background: a backend that is down or a missing privilege is logged, and
  // the bridge works on (a backend may come up later; a command that needs what is missing fails naming it).
  void runDoctor(doctorTargets(config, d)).then(
    (checks) => {
      for (const c of checks.filter((c) => c.verdict !== 'ok'))
        log.warn(`start check: ${c.backend} ${c.check}`, { result: c.verdict, detail: c.detail });
    },
    (err: unknown) => log.warn('start checks failed to run', { error: err }),
  );
}

if (process.argv[2] === 'doctor') void doctor();
else void main();
