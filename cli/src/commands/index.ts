/**
 * The command groups, in the order help lists them. A new group (pools, …) is a
 * module next to these exporting `register<Group>(program, context)`, added here: it gets
 * the global options (--url, --json, --no-progress), the SDK client and the output from
 * `context()`, and its errors map to exit codes in one place (../exit-codes.ts).
 */
import type { Command } from 'commander';
import type { Context } from '../context.ts';
import { registerAuth } from './auth.ts';
import { registerDesktops } from './desktops.ts';
import { registerPools } from './pools.ts';
import { registerSnapshots } from './snapshots.ts';
import { registerTemplates } from './templates.ts';

export const COMMAND_GROUPS: ((program: Command, context: () => Context) => void)[] = [
  registerAuth,
  registerDesktops,
  registerSnapshots,
  registerTemplates,
  registerPools,
];
