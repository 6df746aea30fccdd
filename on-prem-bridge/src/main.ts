/**
 * `npm run bridge`: configuration → drivers → runner → edge link. The bridge only dials
 * out; Proxmox and Guacamole credentials stay in this process.
 */
import { createBridge } from './bridge';
import { ConfigError, configSummary, loadConfig } from './config';
import { createGuacamoleDriver } from './drivers/guacamole';
import { createSelkiesDriver } from './drivers/kubernetes';
import { createProxmoxDriver } from './drivers/proxmox';
import { createLogger } from './logger';
import { onShutdownSignals } from './shutdown';
import { DEFAULT_TIMING, newCloneRegistry } from './tasks/context';
import { taskSettings } from './tasks';

function main(): void {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Plain text on stderr: this is read by a person starting the service, not a log shipper.
    process.stderr.write(`${err.message}\n`);
    process.exit(78); // EX_CONFIG
  }

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

  const proxmox = createProxmoxDriver({
    url: config.proxmox.url,
    tokenId: config.proxmox.tokenId,
    tokenSecret: config.proxmox.tokenSecret,
  });
  const guacamole = createGuacamoleDriver({
    url: config.guacamole.url,
    publicUrl: config.guacamole.publicUrl,
    username: config.guacamole.username,
    password: config.guacamole.password,
    dataSource: config.guacamole.dataSource,
  });

  const selkies = config.selkies
    ? {
        driver: createSelkiesDriver({
          url: config.selkies.kubernetesUrl,
          token: config.selkies.token,
          namespace: config.selkies.namespace,
          routeDomain: config.selkies.routeDomain,
          routeOrigin: config.selkies.routeOrigin,
        }),
        publicScheme: config.selkies.publicScheme,
        publicPort: config.selkies.publicPort,
      }
    : undefined;

  const bridge = createBridge({
    edgeUrl: config.edgeUrl,
    siteId: config.siteId,
    siteKey: config.siteKey,
    concurrency: config.concurrency,
    deps: { proxmox, guacamole, selkies, settings: taskSettings(config), timing: DEFAULT_TIMING, clones: newCloneRegistry() },
    log,
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
}

main();
