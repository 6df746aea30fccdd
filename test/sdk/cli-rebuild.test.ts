/** `cdaas desktops rebuild` against a scripted API: it calls the rebuild endpoint through the SDK's desktops.rebuild. */
import { createClient } from '@cdaas/sdk';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerDesktops } from '../../cli/src/commands/desktops.ts';
import type { Context } from '../../cli/src/context.ts';

const ID = 'dkexample00000000000000';

describe('cdaas desktops rebuild', () => {
  it('POSTs the rebuild and prints the desktop, PROVISIONING', async () => {
    const seen: string[] = [];
    const printed: string[] = [];
    const fetch = async (req: Request) => {
      seen.push(`${req.method} ${new URL(req.url).pathname}`);
      const data = { id: ID, name: 'Studio', status: 'PROVISIONING', plan: 'BASIC' };
      return new Response(JSON.stringify({ success: true, message: 'ok', data }), { status: 202 });
    };
    const client = createClient({ baseUrl: 'http://api.test', token: 't', fetch });
    const ctx: Context = {
      options: { json: true },
      client: () => client,
      out: {
        json: true,
        result: (value) => printed.push(JSON.stringify(value)),
        note: () => {},
        progress: () => ({ update() {}, done() {} }),
      },
    };
    const program = new Command('cdaas').exitOverride();
    registerDesktops(program, () => ctx);
    await program.parseAsync(['node', 'cdaas', 'desktops', 'rebuild', ID]);
    expect(seen).toEqual([`POST /api/v1/desktops/${ID}/rebuild`]);
    expect(JSON.parse(printed[0] ?? '')).toMatchObject({ id: ID, status: 'PROVISIONING' });
  });
});
