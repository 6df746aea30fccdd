import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
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
