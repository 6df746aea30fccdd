/** cdaas pools ls | show | set | rm: warm pools of ready desktops (admins). */
import type { PoolInput, PoolView } from '@cdaas/sdk';
import type { Command } from 'commander';
import type { Context } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { table } from '../output.ts';

const count = (v: string, name: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new CliError(`${name} must be a whole number of desktops, not ${JSON.stringify(v)}`, EXIT.USAGE);
  return n;
};

function describe(p: PoolView): string {
  const ready = (tier: string) => p.members.filter((m) => m.tier === tier && m.phase === 'ready').length;
  const ms = (v: number | null) => (v === null ? '-' : `${Math.round(v)} ms`);
  return [
    `${p.id}: template ${p.templateId} at ${p.siteId}${p.paused ? ' (paused)' : ''}`,
    `target: ${p.target.running} running, ${p.target.stopped} stopped`,
    ...p.target.reasons.map((r) => `  ${r}`),
    `ready: ${ready('running')} running, ${ready('stopped')} stopped (${p.members.length} members in all)`,
    `hits ${p.stats.hits}, warm hits ${p.stats.warmHits}, misses ${p.stats.misses}, replaced ${p.stats.replaced}; claim p50 ${ms(p.stats.claimP50Ms)}, p95 ${ms(p.stats.claimP95Ms)}`,
  ].join('\n');
}

export function registerPools(program: Command, context: () => Context): void {
  const pools = program.command('pools').alias('pool').description('warm pools: ready desktops that answer a create at once (admins)');

  pools
    .command('ls')
    .alias('list')
    .description('list the pools')
    .action(async () => {
      const ctx = context();
      const list = await ctx.client().pools.list();
      ctx.out.result(list, () =>
        list.length === 0
          ? 'no pools'
          : table(
              ['ID', 'TEMPLATE', 'SITE', 'RUNNING', 'STOPPED', 'CAP', 'STATE'],
              list.map((p) => [
                p.id,
                p.templateId,
                p.siteId,
                String(p.sizing.running),
                String(p.sizing.stopped),
                String(p.sizing.cap),
                p.paused ? 'paused' : 'filling',
              ]),
            ),
      );
    });

  pools
    .command('show')
    .argument('<poolId>', 'pool id')
    .description('a pool: its target and why, ready members, hits, misses and claim times')
    .action(async (poolId: string) => {
      const ctx = context();
      const view = await ctx.client().pools.get(poolId);
      ctx.out.result(view, () => describe(view));
    });

  pools
    .command('set')
    .argument('<poolId>', 'pool id (lower-case letters, digits and dashes)')
    .description('create or replace a pool (schedule windows and the demand rule: --sizing with the JSON of the API)')
    .requiredOption('--template <id>', 'the template its desktops are built from')
    .option('--site <id>', 'the site (default: the default site)')
    .option('--running <n>', 'running desktops kept ready', '1')
    .option('--stopped <n>', 'stopped desktops kept ready (no CPU or RAM; a claim starts one)', '0')
    .option('--cap <n>', 'at most this many running (default: --running)')
    .option('--shards <n>', 'objects the pool is split over, for many claims per second', '1')
    .option('--sizing <json>', 'the whole sizing as the API takes it (overrides --running, --stopped and --cap)')
    .option('--paused', 'build nothing (ready desktops are still handed out)')
    .action(
      async (
        poolId: string,
        o: {
          template: string;
          site?: string;
          running: string;
          stopped: string;
          cap?: string;
          shards: string;
          sizing?: string;
          paused?: boolean;
        },
      ) => {
        const ctx = context();
        let sizing: PoolInput['sizing'];
        if (o.sizing) {
          try {
            sizing = JSON.parse(o.sizing) as PoolInput['sizing'];
          } catch {
            throw new CliError('--sizing must be JSON, e.g. {"running":2,"cap":6}', EXIT.USAGE);
          }
        } else {
          const running = count(o.running, '--running');
          sizing = {
            running,
            stopped: count(o.stopped, '--stopped'),
            cap: o.cap === undefined ? running : count(o.cap, '--cap'),
          } as PoolInput['sizing'];
        }
        const input = {
          templateId: o.template,
          sizing,
          shards: count(o.shards, '--shards'),
          paused: Boolean(o.paused),
          ...(o.site ? { siteId: o.site } : {}),
        };
        const pool = await ctx.client().pools.put(poolId, input as PoolInput);
        ctx.out.result(pool, () => `pool ${pool.id} saved${pool.paused ? ' (paused)' : ''}: cdaas pools show ${pool.id}`);
      },
    );

  pools
    .command('rm')
    .alias('delete')
    .argument('<poolId>', 'pool id')
    .description('remove a pool; its unclaimed desktops are destroyed')
    .action(async (poolId: string) => {
      const ctx = context();
      const pool = await ctx.client().pools.remove(poolId);
      ctx.out.result(pool, () => `pool ${pool.id} removed; its unclaimed desktops are being destroyed`);
    });
}
