/**
 * What `npm run deploy:check` judges, read offline: the configuration `wrangler deploy`
 * would upload (read by wrangler itself, so environments resolve exactly as at deploy),
 * extra `--var`s, and the secrets that will be set, from a file, from `wrangler secret
 * list`, or from this process's environment (CI).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { experimental_readRawConfig, unstable_readConfig } from 'wrangler';
import type { Deployment, WorkerConfig } from './deploy-check';
import { parseEnvFile, ROOT } from './local-config';

export const USAGE = `usage: npm run deploy:check -- [options]
  --config FILE         the wrangler configuration (default: wrangler.toml)
  --env NAME            check its [env.NAME] section, as wrangler deploy --env NAME uploads it
  --var NAME:VALUE      a var passed to wrangler deploy --var (repeatable)
  --secrets-file FILE   secrets with their values: .env lines or a JSON object (what wrangler
                        deploy --secrets-file and wrangler secret bulk take)
  --secret-list FILE    secret names only: the output of wrangler secret list (- for stdin)
  --secrets-from-env    the Worker's secrets found in this process's environment (CI)`;

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface DeployCheckOptions {
  config: string;
  env?: string;
  vars: Record<string, string>;
  secretsFile?: string;
  secretList?: string;
  secretsFromEnv: boolean;
}

export function parseDeployCheckArgs(argv: string[]): DeployCheckOptions {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const vars: Record<string, string> = {};
  for (const pair of parsed.values.var ?? []) {
    const at = pair.indexOf(':');
    if (at < 1) throw new UsageError(`--var ${pair}: expected NAME:VALUE`);
    vars[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return {
    config: resolve(parsed.values.config ?? join(ROOT, 'wrangler.toml')),
    env: parsed.values.env,
    vars,
    secretsFile: parsed.values['secrets-file'],
    secretList: parsed.values['secret-list'],
    secretsFromEnv: parsed.values['secrets-from-env'] ?? false,
  };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: 'string' },
      env: { type: 'string' },
      var: { type: 'string', multiple: true },
      'secrets-file': { type: 'string' },
      'secret-list': { type: 'string' },
      'secrets-from-env': { type: 'boolean' },
    },
  });
}

/** The secrets the Worker reads: the names in .dev.vars.example. */
export function workerSecretNames(): string[] {
  return Object.keys(parseEnvFile(join(ROOT, '.dev.vars.example')));
}

/** A secrets file as wrangler takes it: a JSON object of strings, or .env lines. */
export function parseSecretsFile(path: string): Map<string, string> {
  const text = readText(path);
  if (text.trimStart().startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new UsageError(`${path}: not valid JSON`);
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json))
      throw new UsageError(`${path}: expected a JSON object of secrets`);
    return new Map(Object.entries(json).map(([k, v]) => [k, String(v)]));
  }
  return new Map(Object.entries(parseEnvFile(path)));
}

/** `wrangler secret list` output: JSON (`[{"name": …, "type": "secret_text"}]`, the default) or `--format pretty`. */
export function parseSecretList(text: string): string[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('[')) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch {
      throw new UsageError('the secret list is not valid JSON');
    }
    if (!Array.isArray(json)) throw new UsageError('the secret list is not a JSON array');
    return json.map((e: unknown) => (typeof e === 'string' ? e : String((e as { name?: unknown }).name ?? '')));
  }
  return [...trimmed.matchAll(/^Secret Name: (\S+)/gm)].map((m) => m[1] ?? '');
}

function readText(path: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

export function loadDeployment(opts: DeployCheckOptions, processEnv: NodeJS.ProcessEnv = process.env): Deployment {
  const secretNames = workerSecretNames();
  let config: WorkerConfig;
  let env: Deployment['env'];
  try {
    config = unstable_readConfig({ config: opts.config }, { hideWarnings: true });
    if (opts.env) {
      const raw = experimental_readRawConfig({ config: opts.config }).rawConfig as { env?: Record<string, unknown> };
      const defined = opts.env in (raw.env ?? {});
      env = { name: opts.env, defined, topLevel: config };
      // Without the section, wrangler refuses the name; the top level is checked in its place.
      if (defined) config = unstable_readConfig({ config: opts.config, env: opts.env }, { hideWarnings: true });
    }
  } catch (err) {
    throw new UsageError(`${opts.config}: ${err instanceof Error ? err.message : String(err)}`);
  }
  config = { ...config, vars: { ...config.vars, ...opts.vars } };

  const secrets = new Map<string, string | null>();
  if (opts.secretList) for (const name of parseSecretList(readText(opts.secretList))) if (name) secrets.set(name, null);
  if (opts.secretsFile) for (const [name, value] of parseSecretsFile(opts.secretsFile)) secrets.set(name, value);
  if (opts.secretsFromEnv) {
    for (const name of secretNames) {
      const value = processEnv[name];
      if (value) secrets.set(name, value);
    }
  }
  // An empty line in a secrets file sets nothing (as in .dev.vars.example).
  for (const [name, value] of secrets) if (value === '') secrets.delete(name);

  return {
    config,
    env,
    secrets,
    secretNames,
  };
}
