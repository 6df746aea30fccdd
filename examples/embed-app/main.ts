/**
 * `npm run example:embed`: the embed example app on http://127.0.0.1:8090 (./server.ts),
 * against the edge of `npm run dev`. A real app holds a service token from its identity
 * provider (SERVICE_TOKEN); locally, without one, it signs its own short-lived service
 * tokens with the JWT_SECRET of .dev.vars, as `npm run token -- … --role service` does.
 * The edge must list this page's origin in CORS_ORIGINS (npm run dev does).
 */
import { ensureLocalConfig, LOCAL } from '../../scripts/lib/local-config';
import { signToken } from '../../scripts/lib/tokens';
import { startEmbedExample } from './server';

const SERVICE = 'streaming-app-example';

function devServiceTokens(): () => Promise<string> {
  const { jwtSecret } = ensureLocalConfig();
  let current: { token: string; renewAt: number } | null = null;
  return async () => {
    if (!current || Date.now() > current.renewAt) {
      current = { token: await signToken(jwtSecret, SERVICE, { roles: ['service'], ttl: '1h' }), renewAt: Date.now() + 30 * 60_000 };
    }
    return current.token;
  };
}

const fixed = process.env.SERVICE_TOKEN;
const app = await startEmbedExample({
  port: Number(process.env.EMBED_EXAMPLE_PORT ?? LOCAL.embedExamplePort),
  edgeUrl: process.env.EDGE_URL ?? `http://127.0.0.1:${LOCAL.edgePort}`,
  serviceToken: fixed ? async () => fixed : devServiceTokens(),
  // Local Guacamole and Selkies sessions are plain http on loopback (Selkies: http://desk-<id>.desk.localhost:6443).
  userNamespace: process.env.USER_NAMESPACE ?? `${SERVICE}:`,
  frameSources: (process.env.FRAME_SOURCES ?? 'http://127.0.0.1:* http://localhost:* http://*.localhost:*').split(/\s+/).filter(Boolean),
});
console.log(`[embed-app] listening on ${app.url}`);
