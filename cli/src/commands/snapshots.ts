/** cdaas snapshots ls | create | rm | restore | fork: snapshots of a VM desktop, as Proxmox takes them. */
import type { Desktop } from '@cdaas/sdk';
import { type Command, Option } from 'commander';
import type { Context } from '../context.ts';
import { table } from '../output.ts';
import { PLANS, summary, timeoutOption, upper, waitFor } from './desktops.ts';

export function registerSnapshots(program: Command, context: () => Context): void {
  const snapshots = program
    .command('snapshots')
    .alias('snapshot')
    .description('take, list, restore, fork and delete snapshots of a VM desktop');

  snapshots
    .command('ls')
    .alias('list')
    .argument('<desktopId>', 'desktop id')
    .description("list a desktop's snapshots, oldest first, as Proxmox has them now")
    .action(async (desktopId: string) => {
      const ctx = context();
      const list = await ctx.client().desktops.snapshots.list(desktopId);
      ctx.out.result(list, () => {
        const rows = list.snapshots.map((s) => [s.name, s.takenAt ?? '-', s.withRam ? 'yes' : 'no', s.parent ?? '-', s.description]);
        const body = rows.length === 0 ? 'no snapshots' : table(['NAME', 'TAKEN', 'RAM', 'PARENT', 'DESCRIPTION'], rows);
        return list.unsupported ? `${body}\n${list.unsupported}` : body;
      });
    });

  snapshots
    .command('create')
    .argument('<desktopId>', 'desktop id')
    .description('take a snapshot (the desktop keeps running; cdaas snapshots ls shows it once taken)')
    .option('--name <name>', 'a letter, then letters, digits, - or _; 2 to 40 characters (default: snap-<date>-<time>)')
    .option('--description <text>', 'what it is for')
    .option('--with-ram', "also save the running guest's memory: a restore resumes it where it was")
    .action(async (desktopId: string, o: { name?: string; description?: string; withRam?: boolean }) => {
      const ctx = context();
      const op = await ctx.client().desktops.snapshots.create(desktopId, {
        ...(o.name ? { name: o.name } : {}),
        ...(o.description ? { description: o.description } : {}),
        ...(o.withRam ? { withRam: true } : {}),
      });
      ctx.out.result(op, () => `taking ${op.snapshot.name}${op.snapshot.withRam ? ' (with RAM)' : ''} of ${desktopId}`);
    });

  snapshots
    .command('rm')
    .alias('delete')
    .argument('<desktopId>', 'desktop id')
    .argument('<name>', 'snapshot name')
    .description('delete a snapshot')
    .action(async (desktopId: string, name: string) => {
      const ctx = context();
      const op = await ctx.client().desktops.snapshots.remove(desktopId, name);
      ctx.out.result(op, () => `deleting ${op.snapshot.name} of ${desktopId}`);
    });

  snapshots
    .command('restore')
    .argument('<desktopId>', 'desktop id')
    .argument('<name>', 'snapshot name')
    .description('go back to a snapshot: what changed since is lost (add --wait to wait until it is RUNNING again)')
    .option('--wait', 'wait until it is RUNNING, showing progress')
    .addOption(timeoutOption())
    .action(async (desktopId: string, name: string, o: { wait?: boolean; timeout: number }) => {
      const ctx = context();
      const d = await ctx.client().desktops.snapshots.restore(desktopId, name);
      if (!o.wait) return ctx.out.result(d, () => summary(d));
      const running = await waitFor(ctx, desktopId, 'RUNNING', o.timeout);
      ctx.out.result(running, () => summary(running));
    });

  snapshots
    .command('fork')
    .argument('<desktopId>', 'desktop id')
    .argument('<name>', 'snapshot name')
    .description('a new desktop, a linked clone of this snapshot (add --wait to wait until it is RUNNING)')
    .option('--name <name>', "the new desktop's name (default: the desktop's, with (fork))")
    .addOption(new Option('--plan <plan>', "BASIC, STANDARD or PREMIUM (default: the desktop's)").argParser(upper(PLANS)))
    .option('--user <userId>', 'whose desktop (services must name one)')
    .option('--wait', 'wait until it is RUNNING, showing progress')
    .addOption(timeoutOption())
    .action(
      async (
        desktopId: string,
        name: string,
        o: { name?: string; plan?: Desktop['plan']; user?: string; wait?: boolean; timeout: number },
      ) => {
        const ctx = context();
        const created = await ctx.client().desktops.create({
          forkOf: { desktopId, snapshot: name },
          ...(o.name ? { name: o.name } : {}),
          ...(o.plan ? { plan: o.plan } : {}),
          ...(o.user ? { userId: o.user } : {}),
        });
        if (!o.wait) return ctx.out.result(created, () => summary(created));
        ctx.out.note(`created ${created.id}; waiting until it is RUNNING`);
        const running = await waitFor(ctx, created.id, 'RUNNING', o.timeout);
        ctx.out.result(running, () => summary(running));
      },
    );
}
