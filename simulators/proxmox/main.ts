/**
 * `npm run sim:proxmox`: the Proxmox VE simulator with realistic task durations.
 * PROXMOX_SIM_PORT (default 8006), PROXMOX_SIM_HOST (default 127.0.0.1) and
 * PROXMOX_SIM_DELAY_SCALE (multiplier for the delays below; 0 = instant, default 1).
 */
import { envNumber } from '../shared/env';
import { startProxmoxSimulator } from './server';

const scale = envNumber('PROXMOX_SIM_DELAY_SCALE', 1);
const ms = (base: number) => Math.round(base * scale);

const sim = await startProxmoxSimulator({
  host: process.env.PROXMOX_SIM_HOST || '127.0.0.1',
  port: envNumber('PROXMOX_SIM_PORT', 8006),
  // Orders of magnitude seen on a small LVM-thin node: linked clone seconds, boot a few seconds more.
  cloneDelayMs: ms(3000),
  configDelayMs: ms(500),
  startDelayMs: ms(1500),
  bootDelayMs: ms(4000),
  ipDelayMs: ms(2000),
  shutdownDelayMs: ms(2000),
  stopDelayMs: ms(500),
  destroyDelayMs: ms(1000),
  // NOTES §2: pveproxy delays every 401 by about 3 s.
  authFailureDelayMs: ms(3000),
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
