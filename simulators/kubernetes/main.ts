/**
 * `npm run sim:kubernetes`: the Kubernetes (K3s + Selkies) simulator with realistic delays.
 * KUBERNETES_SIM_PORT (default 6443), KUBERNETES_SIM_HOST (default 127.0.0.1), KUBERNETES_SIM_TOKEN (default
 * dev-token), KUBERNETES_SIM_ROUTE_DOMAIN (default desk.localhost) and KUBERNETES_SIM_DELAY_SCALE (multiplier
 * for the delays below; 0 = instant, default 1), SIM_TLS_CERT / SIM_TLS_KEY (PEM files: HTTPS, as K3s serves it),
 * KUBERNETES_SIM_ROUTE_TLS_CERT / _KEY (PEM files: seeded as the `desk-wildcard-tls` secret in `desktops`, the
 * certificate of the session hosts; without it Traefik answers with its default certificate).
 */
import { readFileSync } from 'node:fs';
import { simTlsFromEnv } from '../shared/certificates';
import { envNumber } from '../shared/env';
import { startKubernetesSimulator } from './server';

const scale = envNumber('KUBERNETES_SIM_DELAY_SCALE', 1);
const ms = (base: number) => Math.round(base * scale);

const sim = await startKubernetesSimulator({
  host: process.env.KUBERNETES_SIM_HOST || '127.0.0.1',
  port: envNumber('KUBERNETES_SIM_PORT', 6443),
  token: process.env.KUBERNETES_SIM_TOKEN || 'dev-token',
  routeDomain: process.env.KUBERNETES_SIM_ROUTE_DOMAIN || 'desk.localhost',
  tls: simTlsFromEnv(),
  ...(process.env.KUBERNETES_SIM_ROUTE_TLS_CERT && process.env.KUBERNETES_SIM_ROUTE_TLS_KEY
    ? {
        routeTls: {
          namespace: 'desktops',
          secretName: 'desk-wildcard-tls',
          cert: readFileSync(process.env.KUBERNETES_SIM_ROUTE_TLS_CERT, 'utf8'),
          key: readFileSync(process.env.KUBERNETES_SIM_ROUTE_TLS_KEY, 'utf8'),
        },
      }
    : {}),
  // Orders of magnitude on a small K3s node with the image already pulled: scheduling is quick, the container
  // needs a few seconds, and the desktop (Xvfb, KDE, selkies, then nginx) a couple more before 8080 accepts.
  scheduleDelayMs: ms(200),
  containerStartDelayMs: ms(3000),
  readyDelayMs: ms(2000),
  deletionGraceMs: ms(1000),
  // The first pull of a multi-GB desktop image on a node; later sessions there start from the cache.
  imagePullMs: ms(8000),
  rescheduleIntervalMs: 5000,
});
console.log(`kubernetes simulator listening on ${sim.url}`);
console.log(`session routes: Host: <name>.${sim.routeDomain} to ${sim.url} (bearer token '${sim.token}')`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // A second signal exits at once, without waiting for connections to drain.
    if (stopping) process.exit(1);
    stopping = true;
    void sim.stop().then(() => process.exit(0));
  });
}
