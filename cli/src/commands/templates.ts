/** cdaas templates ls */
import type { Command } from 'commander';
import type { Context } from '../context.ts';
import { table } from '../output.ts';

export function registerTemplates(program: Command, context: () => Context): void {
  const templates = program.command('templates').alias('template').description('what desktops can be made from');
  templates
    .command('ls')
    .alias('list')
    .description('list the templates you may launch')
    .action(async () => {
      const ctx = context();
      const list = await ctx.client().templates.list();
      ctx.out.result(list, () =>
        list.length === 0
          ? 'no templates (desktops are made from the default VM template)'
          : table(
              ['ID', 'NAME', 'OS', 'BACKEND', 'PLAN', 'GPU'],
              list.map((t) => [t.id, t.name, t.os, t.backend, t.defaultPlan, t.gpuSlots ? `${t.gpuSlots} slot(s)` : '-']),
            ),
      );
    });
}
