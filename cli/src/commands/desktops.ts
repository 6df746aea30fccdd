/** cdaas desktops ls | get | create | wait | connect | start | stop | rm */
import type { Desktop, DesktopStatus } from '@cdaas/sdk';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { Context } from '../context.ts';
import { table } from '../output.ts';

const STATUSES: DesktopStatus[] = [
  'PENDING',
  'PROVISIONING',
  'STARTING',
  'WAITING_FOR_IP',
  'CONFIGURING',
  'RUNNING',
  'STOPPING',
  'STOPPED',
  'FAILED',
  'DELETED',
];
export const PLANS = ['BASIC', 'STANDARD', 'PREMIUM'] as const;

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number from 1');
  return n;
};
export const upper = (choices: readonly string[]) => (v: string) => {
  const u = v.toUpperCase();
  if (!choices.includes(u)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}`);
  return u;
};

export const timeoutOption = () =>
  new Option('--timeout <seconds>', 'give up waiting after this long (exit code 9)').argParser(positiveInt).default(600);

export function summary(d: Desktop): string {
  const lines = [`${d.id}  ${d.status}  ${d.plan}  ${d.name}`];
  const why = d.errorMessage ?? d.statusMessage;
  if (why) lines.push(`  ${why}`);
  return lines.join('\n');
}

export async function waitFor(ctx: Context, id: string, status: DesktopStatus, timeoutSeconds: number): Promise<Desktop> {
  const progress = ctx.out.progress(id);
  try {
    return await ctx.client().desktops.waitUntil(id, status, { timeoutMs: timeoutSeconds * 1000, onProgress: (p) => progress.update(p) });
  } finally {
    progress.done();
  }
}

export function registerDesktops(program: Command, context: () => Context): void {
  const desktops = program.command('desktops').alias('desktop').description('create, follow, open and end desktops');

  desktops
    .command('ls')
    .alias('list')
    .description('list desktops, newest first (yours; a service: those it created; an admin: all)')
    .addOption(new Option('--status <status>', 'only this status').argParser(upper(STATUSES)))
    .addOption(new Option('--plan <plan>', 'only this plan').argParser(upper(PLANS)))
    .option('--user <userId>', "a user's desktops (admins, services)")
    .addOption(new Option('--page <n>', 'page').argParser(positiveInt).default(1))
    .addOption(new Option('--page-size <n>', 'desktops per page (up to 100)').argParser(positiveInt).default(20))
    .action(async (o: { status?: DesktopStatus; plan?: Desktop['plan']; user?: string; page: number; pageSize: number }) => {
      const ctx = context();
      const page = await ctx.client().desktops.list({
        page: o.page,
        pageSize: o.pageSize,
        ...(o.status ? { status: o.status } : {}),
        ...(o.plan ? { plan: o.plan } : {}),
        ...(o.user ? { userId: o.user } : {}),
      });
      ctx.out.result(page, () => {
        if (page.items.length === 0) return `no desktops (page ${page.page} of ${Math.max(page.totalPages, 1)})`;
        const rows = page.items.map((d) => [d.id, d.status, d.plan, d.userId, d.createdAt, d.name]);
        const footer = `page ${page.page} of ${page.totalPages}, ${page.total} in all${page.consistency === 'eventual' ? ` (as of ${page.asOf})` : ''}`;
        return `${table(['ID', 'STATUS', 'PLAN', 'USER', 'CREATED', 'NAME'], rows)}\n${footer}`;
      });
    });

  desktops
    .command('get')
    .argument('<id>', 'desktop id')
    .description('show a desktop')
    .action(async (id: string) => {
      const ctx = context();
      const d = await ctx.client().desktops.get(id);
      ctx.out.result(d, () => `${summary(d)}\n  site bridge: ${d.siteBridge}${d.ipAddress ? `\n  address: ${d.ipAddress}` : ''}`);
    });

  desktops
    .command('create')
    .description('create a desktop (202 at once; add --wait to wait until it is RUNNING)')
    .option('--name <name>', 'its name')
    .addOption(new Option('--plan <plan>', 'BASIC, STANDARD or PREMIUM').argParser(upper(PLANS)))
    .option('--template <id>', 'a template from cdaas templates ls')
    .option('--user <userId>', 'whose desktop (services must name one)')
    .addOption(new Option('--protocol <protocol>', 'vnc or rdp (desktops without a template)').choices(['vnc', 'rdp']))
    .addOption(new Option('--idle-timeout <minutes>', 'stop after this long without activity').argParser(positiveInt))
    .option(
      '--idempotency-key <key>',
      'repeat a create safely: the same key within 24 h answers the same desktop (default: a new random key)',
    )
    .option('--wait', 'wait until it is RUNNING, showing progress')
    .addOption(timeoutOption())
    .action(
      async (o: {
        name?: string;
        plan?: Desktop['plan'];
        template?: string;
        user?: string;
        protocol?: 'vnc' | 'rdp';
        idleTimeout?: number;
        idempotencyKey?: string;
        wait?: boolean;
        timeout: number;
      }) => {
        const ctx = context();
        const created = await ctx.client().desktops.create(
          {
            ...(o.name ? { name: o.name } : {}),
            ...(o.plan ? { plan: o.plan } : {}),
            ...(o.template ? { templateId: o.template } : {}),
            ...(o.user ? { userId: o.user } : {}),
            ...(o.protocol ? { protocol: o.protocol } : {}),
            ...(o.idleTimeout ? { idleTimeoutMinutes: o.idleTimeout } : {}),
          },
          o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : {},
        );
        if (!o.wait) return ctx.out.result(created, () => summary(created));
        ctx.out.note(`created ${created.id}; waiting until it is RUNNING`);
        const running = await waitFor(ctx, created.id, 'RUNNING', o.timeout);
        ctx.out.result(running, () => summary(running));
      },
    );

  desktops
    .command('wait')
    .argument('<id>', 'desktop id')
    .description('wait until a desktop is in a status (default RUNNING), showing progress on stderr')
    .addOption(new Option('--for <status>', 'the status to wait for').argParser(upper(STATUSES)).default('RUNNING'))
    .addOption(timeoutOption())
    .action(async (id: string, o: { for: DesktopStatus; timeout: number }) => {
      const ctx = context();
      const d = await waitFor(ctx, id, o.for, o.timeout);
      ctx.out.result(d, () => summary(d));
    });

  desktops
    .command('connect')
    .argument('<id>', 'desktop id')
    .description('print a link that opens the desktop (it works once, within a few minutes)')
    .action(async (id: string) => {
      const ctx = context();
      const c = await ctx.client().desktops.connect(id);
      // The link alone on stdout, so `xdg-open "$(cdaas desktops connect ID)"` works.
      ctx.out.result(c, () => c.connectionUrl);
      if (!ctx.out.json) {
        ctx.out.note(`valid until ${c.expiresAt}, for one opening`);
        if (c.credentials) ctx.out.note(`sign in as ${c.credentials.username} / ${c.credentials.password}`);
      }
    });

  for (const [name, alias, verb, settled] of [
    ['start', undefined, 'start a STOPPED desktop', 'RUNNING'],
    ['stop', undefined, 'stop a RUNNING desktop', 'STOPPED'],
    ['rm', 'delete', 'delete a desktop, its VM and its connection', 'DELETED'],
    ['rebuild', undefined, 'rebuild a RUNNING or STOPPED desktop on a new VM from its template, keeping its data disk', 'RUNNING'],
  ] as const) {
    const command = desktops
      .command(name)
      .argument('<id>', 'desktop id')
      .description(`${verb} (add --wait to wait until it is ${settled})`)
      .option('--wait', `wait until it is ${settled}, showing progress`)
      .addOption(timeoutOption())
      .action(async (id: string, o: { wait?: boolean; timeout: number }) => {
        const ctx = context();
        const client = ctx.client();
        const d =
          name === 'start'
            ? await client.desktops.start(id)
            : name === 'stop'
              ? await client.desktops.stop(id)
              : name === 'rebuild'
                ? await client.desktops.rebuild(id)
                : await client.desktops.delete(id);
        if (!o.wait) return ctx.out.result(d, () => summary(d));
        const done = await waitFor(ctx, id, settled, o.timeout);
        ctx.out.result(done, () => summary(done));
      });
    if (alias) command.alias(alias);
  }
}
