/** cdaas snapshots ls | create | rm | restore | fork | schedule: snapshots of a VM desktop, as Proxmox takes them. */
import type { Desktop, SnapshotSchedule, SnapshotScheduleView } from '@cdaas/sdk';
import { type Command, InvalidArgumentError, Option } from 'commander';
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

  snapshots
    .command('schedule')
    .argument('<desktopId>', 'desktop id')
    .description(
      "show a desktop's scheduled snapshots (auto-<time>, outside the quota), or set its own with --every and --keep-last/--keep-days, turn them off with --off, or follow its template's again with --clear",
    )
    .option('--every <hours>', 'take one every this many hours (1 to 168)', count)
    .option('--keep-last <n>', 'keep the newest n scheduled snapshots (1 to 100)', count)
    .option('--keep-days <days>', 'keep those younger than this many days (1 to 3650)', count)
    .option('--off', "no scheduled snapshots for this desktop, whatever its template's schedule")
    .option('--clear', "drop this desktop's own setting: its template's schedule applies again")
    .action(async (desktopId: string, o: { every?: number; keepLast?: number; keepDays?: number; off?: boolean; clear?: boolean }) => {
      const ctx = context();
      const schedule = ctx.client().desktops.snapshots.schedule;
      const setting = [o.every !== undefined, o.off === true, o.clear === true].filter(Boolean).length;
      if (setting > 1) throw new InvalidArgumentError('give one of --every, --off and --clear');
      if (o.every === undefined && (o.keepLast !== undefined || o.keepDays !== undefined)) {
        throw new InvalidArgumentError('--keep-last and --keep-days go with --every');
      }
      if (o.every !== undefined && o.keepLast === undefined && o.keepDays === undefined) {
        throw new InvalidArgumentError('--every needs --keep-last and/or --keep-days (how many to keep)');
      }
      const view = o.clear
        ? await schedule.clear(desktopId)
        : o.off
          ? await schedule.set(desktopId, { off: true })
          : o.every !== undefined
            ? await schedule.set(desktopId, {
                everyHours: o.every,
                retention: {
                  ...(o.keepLast !== undefined ? { keepLast: o.keepLast } : {}),
                  ...(o.keepDays !== undefined ? { keepDays: o.keepDays } : {}),
                },
              })
            : await schedule.get(desktopId);
      ctx.out.result(view, () => describeSchedule(view));
    });
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number, 1 or more');
  return n;
}

const scheduleText = (s: SnapshotSchedule) => {
  const keep = [
    s.retention.keepLast !== undefined ? `the newest ${s.retention.keepLast}` : null,
    s.retention.keepDays !== undefined ? `those younger than ${s.retention.keepDays} days` : null,
  ].filter(Boolean);
  return `every ${s.everyHours} h, keeping ${keep.join(' and ')}`;
};

function describeSchedule(v: SnapshotScheduleView): string {
  const own = v.own === null ? 'follows its template' : 'off' in v.own ? 'off' : scheduleText(v.own);
  return [
    `applies:    ${v.effective ? `${scheduleText(v.effective)} (from its ${v.source})` : 'no scheduled snapshots'}`,
    `own:        ${own}`,
    `template:   ${v.template ? scheduleText(v.template) : 'none'}`,
    `next check: ${v.nextCheckAt ?? '-'}`,
    `last run:   ${v.lastRunAt ?? '-'}`,
  ].join('\n');
}
