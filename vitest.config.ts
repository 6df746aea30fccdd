import { fileURLToPath } from 'node:url';
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';
import { LOCAL_EDGE_VARS } from './scripts/lib/local-config.ts';
import { TEST_JWT_SECRET } from './test/support/test-secrets.ts';

export default defineConfig({
  test: {
    // The edge's Durable Object alarms and queue retries outlive the request that started them,
    // by design, and keep running in workerd after a test file ends; a line they log, or a module
    // they load, while vitest is closing that file's RPC channel surfaces as this one error type.
    // It says nothing about the code under test, so it alone is not reported; every other
    // unhandled error still fails the run.
    onUnhandledError: (error) => error.name !== 'EnvironmentTeardownError',
    projects: [
      {
        // The edge inside workerd: Hono routes, Durable Objects, queue consumers.
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                // The development values the deployed wrangler.toml leaves out (loopback addresses).
                ...LOCAL_EDGE_VARS,
                DATABASE_URL: inject('dbUrl'),
                DB_WS_PROXY: inject('dbProxy'),
                // A DoH stub over a fixed zone (test/support/global-setup.ts).
                WEBHOOK_DNS_RESOLVER: inject('dohUrl'),
                JWT_SECRET: TEST_JWT_SECRET,
                TURN_SHARED_SECRET: 'test-only-turn-secret-0123456789',
                HEARTBEAT_SECONDS: '2',
                LEASE_SECONDS: '5',
                JOB_RETRY_BASE_SECONDS: '1',
                // Multiplies the fuzz tests' runs (test/edge/security/fuzz.test.ts): FUZZ_RUNS=20 npm test.
                FUZZ_RUNS: process.env.FUZZ_RUNS ?? '1',
              },
              // A small limiter the rate-limit tests swap in for the configured ones, so they
              // show a 429 after a few requests without touching the real budgets.
              ratelimits: { RATE_LIMIT_TEST: { namespace_id: '9001', simple: { limit: 3, period: 10 } } },
            },
          })),
        ],
        test: {
          name: 'edge',
          include: ['test/edge/**/*.test.ts'],
          // A file's first request loads the whole Worker into workerd (5-6 s on these machines),
          // past vitest's default 5 s for a test that makes it.
          testTimeout: 30_000,
          globalSetup: ['./test/support/global-setup.ts'],
        },
      },
      {
        // Node-side code: the on-prem bridge, the simulators, the SDK and CLI, and the
        // end-to-end runs that start the real processes.
        // Tests import the SDK by its package name, from its source (the CLI runs its build).
        resolve: { alias: { '@cdaas/sdk': fileURLToPath(new URL('./sdk/src/index.ts', import.meta.url)) } },
        test: {
          name: 'node',
          include: [
            // The desktop's rules (src/desktop): pure, no Workers runtime.
            'test/desktop/**/*.test.ts',
            'test/bridge/**/*.test.ts',
            'test/simulators/**/*.test.ts',
            'test/e2e/**/*.test.ts',
            'test/faults/**/*.test.ts',
            'test/sdk/**/*.test.ts',
            // The dashboard in Debian's chromium (playwright-core) against a whole local stack.
            'test/browser/**/*.test.ts',
            // The deployment kit: deploy:check, the bridge's Dockerfile, systemd unit and package.
            'test/deploy/**/*.test.ts',
          ],
          environment: 'node',
          globalSetup: ['./test/support/node-global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
