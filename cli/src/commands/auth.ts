/** cdaas login | logout */
import { createClient } from '@cdaas/sdk';
import { type Command, Option } from 'commander';
import { configFile, forgetLogin, resolveUrl, saveLogin } from '../config.ts';
import type { Context } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { deviceLogin } from '../oidc.ts';

interface LoginOptions {
  token?: string;
  issuer?: string;
  clientId: string;
  scope: string;
  resource?: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const token = Buffer.concat(chunks).toString('utf8').trim();
  if (!token) throw new CliError('No token on stdin', EXIT.USAGE);
  return token;
}

export function registerAuth(program: Command, context: () => Context): void {
  program
    .command('login')
    .description('save the API address and a token (given, or from your identity provider by the device flow)')
    .option('--token <token>', "a bearer token (JWT) to save; '-' reads it from stdin (out of sight of ps)")
    .option('--issuer <url>', 'your OpenID provider: sign in with the device flow')
    .addOption(new Option('--client-id <id>', 'the client registered for the CLI at the provider').default('cdaas-cli'))
    .addOption(new Option('--scope <scope>', 'scopes to ask for').default('openid offline_access'))
    .option('--resource <uri>', "the API's audience, for providers that issue tokens per resource (RFC 8707)")
    .action(async (o: LoginOptions) => {
      const ctx = context();
      const url = resolveUrl(ctx.options.url);
      if (!o.token && !o.issuer) throw new CliError('Give --token <token>, or --issuer <url> to sign in with the device flow', EXIT.USAGE);
      let saved: Parameters<typeof saveLogin>[0];
      if (o.token) saved = { url, token: o.token === '-' ? await readStdin() : o.token };
      else {
        const login = await deviceLogin({
          issuer: o.issuer ?? '',
          clientId: o.clientId,
          scope: o.scope,
          ...(o.resource ? { resource: o.resource } : {}),
          onPrompt: (p) => {
            ctx.out.note(`To sign in, open ${p.verificationUriComplete ?? p.verificationUri}`);
            ctx.out.note(`and confirm the code ${p.userCode} (valid for ${Math.round(p.expiresInSeconds / 60)} minutes).`);
          },
        });
        saved = {
          url,
          token: login.accessToken,
          ...(login.expiresAt ? { expiresAt: login.expiresAt } : {}),
          ...(login.refreshToken
            ? { refresh: { tokenEndpoint: login.tokenEndpoint, clientId: o.clientId, refreshToken: login.refreshToken } }
            : {}),
        };
      }
      // A token the API refuses is not saved.
      const templates = await createClient({ baseUrl: url, token: saved.token }).templates.list();
      const file = saveLogin(saved);
      ctx.out.result({ url, configFile: file, templates: templates.length }, () => `signed in to ${url} (saved in ${file})`);
    });

  program
    .command('logout')
    .description('forget the saved token')
    .action(() => {
      const ctx = context();
      const removed = forgetLogin();
      ctx.out.result({ removed, configFile: configFile() }, () => (removed ? `removed ${configFile()}` : 'no saved login'));
    });
}
