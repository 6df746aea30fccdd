/**
 * `npm run sim:guacamole`: the Guacamole simulator on GUACAMOLE_SIM_PORT (default 8080) until SIGINT/SIGTERM.
 * SIM_TLS_CERT / SIM_TLS_KEY (PEM files) serve HTTPS, as a Guacamole behind a TLS proxy answers;
 * GUACAMOLE_SIM_PASSWORD_POLICY=strict turns on a security-minded JDBC password policy (complexity, history of 6,
 * 90 days), `none` leaves it off (default strict: sites usually have one).
 */
import { simTlsFromEnv } from '../shared/certificates';
import { NO_POLICY, STRICT_POLICY } from './password-policy';
import { startGuacamoleSimulator } from './server';

const port = Number(process.env.GUACAMOLE_SIM_PORT ?? 8080);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`GUACAMOLE_SIM_PORT must be a port number, got ${process.env.GUACAMOLE_SIM_PORT}`);
  process.exit(1);
}
const policyName = process.env.GUACAMOLE_SIM_PASSWORD_POLICY ?? 'strict';
if (policyName !== 'strict' && policyName !== 'none') {
  console.error(`GUACAMOLE_SIM_PASSWORD_POLICY must be strict or none, got ${policyName}`);
  process.exit(1);
}

const simulator = await startGuacamoleSimulator({
  port,
  tls: simTlsFromEnv(),
  passwordPolicy: policyName === 'strict' ? STRICT_POLICY : NO_POLICY,
});
console.log(`guacamole simulator listening on ${simulator.url}`);

let stopping = false;
const stop = (signal: string) => {
  // A second signal means "now": do not wait for open tunnels or keep-alive sockets.
  if (stopping) process.exit(1);
  stopping = true;
  console.log(`guacamole simulator: ${signal}, stopping`);
  simulator.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
