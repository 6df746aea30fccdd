/**
 * Child processes of the local stack (dev, end-to-end tests, benchmarks): each is an
 * ordinary npm script started on its own, with its output prefixed, a readiness line
 * to wait for, and a clean stop (SIGTERM, then SIGKILL).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { ROOT } from './local-config';

export interface Managed {
  name: string;
  child: ChildProcess;
  /** Everything the process printed so far (bounded). */
  output(): string;
  ready: Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  exited: Promise<number | null>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  /** Resolves `ready` when a line matches. */
  readyWhen?: RegExp;
  readyTimeoutMs?: number;
  /** Echo output to this process's stdout with a prefix. */
  echo?: boolean;
}

const MAX_OUTPUT = 2_000_000;

/** Children run in their own process groups, so they would outlive us: take them along on exit. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL');
});

export function startProcess(opts: StartOptions): Managed {
  const child = spawn(opts.command, opts.args, {
    cwd: ROOT,
    env: { ...process.env, ...opts.env, FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so a stop reaches grandchildren too (wrangler's workerd).
    detached: true,
  });
  let out = '';
  let resolveReady: () => void = () => {};
  let rejectReady: (e: Error) => void = () => {};
  const ready = new Promise<void>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  if (!opts.readyWhen) resolveReady();
  const timer = setTimeout(
    () => rejectReady(new Error(`${opts.name} not ready after ${opts.readyTimeoutMs ?? 60_000} ms:\n${out.slice(-3000)}`)),
    opts.readyTimeoutMs ?? 60_000,
  );
  const onData = (buf: Buffer) => {
    const text = buf.toString();
    out = (out + text).slice(-MAX_OUTPUT);
    if (opts.echo) for (const line of text.split('\n')) if (line.trim()) process.stdout.write(`[${opts.name}] ${line}\n`);
    if (opts.readyWhen?.test(out)) {
      clearTimeout(timer);
      resolveReady();
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  live.add(child);
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      live.delete(child);
      clearTimeout(timer);
      rejectReady(new Error(`${opts.name} exited (${code}) before it was ready:\n${out.slice(-3000)}`));
      resolve(code);
    });
  });
  ready.catch(() => {});
  return {
    name: opts.name,
    child,
    output: () => out,
    ready,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      killGroup(child, signal);
      const killer = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

/** `node --import tsx <file>`: one process per service (no tsx relaunch), so a SIGKILL really kills it. */
export const nodeTs = (file: string, nodeArgs: string[] = []) => ({ command: 'node', args: [...nodeArgs, '--import', 'tsx', file] });

/** wrangler dev offline: no telemetry, no fetch of Request.cf from workers.cloudflare.com (closed networks). */
export const QUIET_WRANGLER = { WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' };
