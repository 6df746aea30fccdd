/**
 * README's "Deploy" section kept whole as the configuration grows: a queue, a secret or a
 * bridge variable added without its line there fails here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { unstable_readConfig } from 'wrangler';
import { EnvSchema } from '../../on-prem-bridge/src/config';
import type { WorkerConfig } from '../../scripts/lib/deploy-check';
import { workerSecretNames } from '../../scripts/lib/deploy-config';
import { ROOT } from '../../scripts/lib/local-config';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const deploy = readme.slice(readme.indexOf('\n## Deploy\n'), readme.indexOf('\n## ', readme.indexOf('\n## Deploy\n') + 1));

describe('README “Deploy”', () => {
  it('creates every queue wrangler.toml names, dead-letter queues included', () => {
    const config: WorkerConfig = unstable_readConfig({ config: join(ROOT, 'wrangler.toml') }, { hideWarnings: true });
    const queues = new Set([
      ...(config.queues?.producers ?? []).map((p) => p.queue),
      ...(config.queues?.consumers ?? []).flatMap((c) => [c.queue, c.dead_letter_queue]),
    ]);
    const created = new Set([...deploy.matchAll(/^npx wrangler queues create (\S+)$/gm)].map((m) => m[1]));
    expect([...queues].filter((q) => q && !created.has(q))).toEqual([]);
  });

  it('puts every secret the Worker reads', () => {
    const put = new Set([...deploy.matchAll(/^npx wrangler secret put (\S+)/gm)].map((m) => m[1]));
    expect(workerSecretNames().filter((n) => !put.has(n))).toEqual([]);
  });

  it('lists every variable the bridge reads', () => {
    expect(Object.keys(EnvSchema.shape).filter((name) => !deploy.includes(`\`${name}\``))).toEqual([]);
  });
});
