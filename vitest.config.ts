import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';
import { TEST_JWT_SECRET } from './test/support/test-secrets.ts';

export default defineConfig({
  test: {
    projects: [
      {
        // The edge inside workerd: Hono routes, Durable Objects, queue consumers.
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                DATABASE_URL: inject('dbUrl'),
                DB_WS_PROXY: inject('dbProxy'),
                JWT_SECRET: TEST_JWT_SECRET,
                HEARTBEAT_SECONDS: '2',
                LEASE_SECONDS: '5',
                JOB_RETRY_BASE_SECONDS: '1',
              },
            },
          })),
        ],
        test: {
          name: 'edge',
          include: ['test/edge/**/*.test.ts'],
          globalSetup: ['./test/support/global-setup.ts'],
        },
      },
      {
        // Node-side code: the on-prem bridge, the simulators and the end-to-end runs
        // that start the real processes.
        test: {
          name: 'node',
          include: ['test/bridge/**/*.test.ts', 'test/simulators/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
