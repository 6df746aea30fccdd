/**
 * `npm run sim:proxmox`: the Proxmox VE simulator with realistic task durations.
 * PROXMOX_SIM_PORT (default 8006), PROXMOX_SIM_HOST (default 127.0.0.1),
 * PROXMOX_SIM_DELAY_SCALE (multiplier for the delays below; 0 = instant, default 1),
 * PROXMOX_SIM_STATUS_CACHE_MS (pvestatd's interval, default 10 s × scale; 0 = live /cluster/resources),
 * PROXMOX_SIM_PRIVILEGES (comma-separated: the token becomes privilege-separated with just these),
 * PROXMOX_SIM_SITE_VMS (other teams' stopped VMs on the node, to run against a large site; default 0),
 * PROXMOX_SIM_IP_PREFIX (guest addresses `<prefix>.x.y`; default a random 127.N: loopback, so guests' desktops are reachable),
 * SIM_TLS_CERT / SIM_TLS_KEY (PEM files: serve HTTPS, as pveproxy does).
 * Templates: 9000 (the bridge's default) and 9001 with a data disk (DEV_TEMPLATES).
 */
import { randomInt } from 'node:crypto';
import { simTlsFromEnv } from '../shared/certificates';
import { envNumber } from '../shared/env';
import { DEFAULT_TOKEN, DEV_TEMPLATES, startProxmoxSimulator } from './server';

const scale = envNumber('PROXMOX_SIM_DELAY_SCALE', 1);
const ms = (base: number) => Math.round(base * scale);
const privileges = process.env.PROXMOX_SIM_PRIVILEGES?.split(',')
  .map((p) => p.trim())
  .filter(Boolean);

const sim = await startProxmoxSimulator({
  host: process.env.PROXMOX_SIM_HOST || '127.0.0.1',
  port: envNumber('PROXMOX_SIM_PORT', 8006),
  tls: simTlsFromEnv(),
  tokens: [{ ...DEFAULT_TOKEN, ...(privileges ? { privileges } : {}) }],
  templates: DEV_TEMPLATES,
  ipPrefix: process.env.PROXMOX_SIM_IP_PREFIX || `127.${randomInt(64, 255)}`,
  // Orders of magnitude seen on a small LVM-thin node: linked clone seconds, boot a few seconds more.
  cloneDelayMs: ms(3000),
  configDelayMs: ms(500),
  startDelayMs: ms(1500),
  bootDelayMs: ms(4000),
  ipDelayMs: ms(2000),
  // xrdp / the VNC server start after the network is up.
  desktopDelayMs: ms(3000),
  shutdownDelayMs: ms(2000),
  stopDelayMs: ms(500),
  destroyDelayMs: ms(1000),
  // Thin snapshots are quick; saving RAM writes the guest's memory (~1 GiB/s on local SSD).
  snapshotDelayMs: ms(1000),
  vmstateDelayMsPerGiB: ms(1000),
  rollbackDelayMs: ms(1500),
  delsnapshotDelayMs: ms(800),
  // pve-http-server's AnyEvent.pm delays every 401 by about 3 s.
  authFailureDelayMs: ms(3000),
  // pvestatd broadcasts every 10 s; lock_file_full waits 10 s.
  statusCacheMs: envNumber('PROXMOX_SIM_STATUS_CACHE_MS', ms(10_000)),
  lockWaitMs: Math.max(200, ms(10_000)),
  siteVms: envNumber('PROXMOX_SIM_SITE_VMS', 0),
});
console.log(`proxmox simulator listening on ${sim.url}`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // A second signal exits at once, without waiting for connections to drain.
    if (stopping) process.exit(1);
    stopping = true;
    void sim.stop().then(() => process.exit(0));
  });
}
