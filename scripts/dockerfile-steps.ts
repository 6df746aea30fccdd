/**
 * `npm run -s bridge:image-steps`: builds on-prem-bridge/Dockerfile without docker (which
 * these machines lack): replays its stages in a temporary directory, each stage's root a
 * folder there, with the build context filtered by its .dockerignore, COPY as Docker
 * copies, and its RUN steps (npm only) run by this machine's npm with a cache of its own,
 * as in a fresh image. Then starts the image's CMD twice: with no configuration it must
 * refuse to start (exit 78, naming what is missing), with a complete one it must start,
 * dial an edge that is not there, and stop cleanly on SIGTERM. Run by .ci/run.
 *
 * What it cannot reproduce: the base image's own files (Node comes from this machine's
 * node@22, npm from its PATH) and USER (steps run as the caller).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { BRIDGE_DOCKERFILE, dockerignoreFor, includedInContext, readBridgePlan, type Stage } from './lib/dockerfile-plan';
import { ROOT } from './lib/local-config';
import { freePort } from './lib/stack';
import { setTimeout as sleep } from 'node:timers/promises';

/** RUN steps the replay runs: npm's, which behave the same here as in the image. */
const REPLAYABLE = /^npm (ci|run [\w:-]+|cache clean --force)( |$)/;
const started = Date.now();
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

class ReplayError extends Error {
  override name = 'ReplayError';
}

const work = mkdtempSync(join(tmpdir(), 'bridge-image-'));
// Node from the node@22 package that runs this script, npm and a shell from the system.
const basePath = [dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':');
// How this machine reaches the npm registry (a proxy, its CA), as a build here would be given it.
const networkEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => /^(https?_proxy|no_proxy|NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR)$/i.test(k)),
);

try {
  const plan = readBridgePlan();
  if (plan.unsupported.length > 0) throw new ReplayError(`instructions the replay does not reproduce: ${plan.unsupported.join('; ')}`);
  const ignore = dockerignoreFor(BRIDGE_DOCKERFILE);
  const roots: string[] = [];
  let final: { root: string; cwd: string; env: Record<string, string>; argv: string[] } | undefined;
  for (const [index, stage] of plan.stages.entries()) {
    const root = join(work, `stage-${index}`);
    roots.push(root);
    final = await replayStage(stage, index, root, roots, plan.stages, ignore);
  }
  if (!final || final.argv.length === 0) throw new ReplayError('the last stage has no CMD');
  await checkEntryPoint(final);
  console.log(
    `[image] replayed ${plan.stages.length} stages in ${seconds(started)}; the bridge refused an empty configuration and started with a full one`,
  );
} catch (err) {
  if (!(err instanceof ReplayError)) throw err;
  console.error(`[image] FAILED: ${err.message}`);
  process.exitCode = 1;
} finally {
  if (process.env.KEEP_REPLAY) console.log(`[image] kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

async function replayStage(stage: Stage, index: number, root: string, roots: string[], stages: Stage[], ignore: string[]) {
  const label = stage.name ?? `stage ${index}`;
  mkdirSync(root, { recursive: true });
  let cwd = '/';
  let argv: string[] = [];
  const env: Record<string, string> = {
    PATH: basePath,
    HOME: process.env.HOME ?? root,
    ...networkEnv,
    npm_config_cache: join(work, 'npm-cache'),
  };
  const inStage = (path: string) => join(root, posix.resolve(cwd, path));
  for (const step of stage.steps) {
    const t = Date.now();
    switch (step.kind) {
      case 'WORKDIR':
        cwd = posix.resolve(cwd, step.path);
        mkdirSync(inStage('.'), { recursive: true });
        break;
      case 'ENV':
        env[step.name] = step.value;
        break;
      case 'COPY':
        copy(step.sources, step.dest, step.from, inStage, roots, stages, ignore);
        console.log(`[image] ${label}: COPY ${step.from ? `--from=${step.from} ` : ''}${step.sources.join(' ')} ${step.dest}`);
        break;
      case 'RUN': {
        const commands = step.command.split('&&').map((c) => c.trim());
        const foreign = commands.filter((c) => !REPLAYABLE.test(c));
        if (foreign.length > 0)
          throw new ReplayError(`RUN ${foreign.join(' && ')}: the replay runs npm ci, npm run and npm cache clean only`);
        const { code, output } = await run('sh', ['-c', step.command], inStage('.'), env);
        if (code !== 0) throw new ReplayError(`${label}: RUN ${step.command} exited ${code}:\n${output.slice(-3000)}`);
        console.log(`[image] ${label}: RUN ${step.command} (${seconds(t)})`);
        break;
      }
      case 'CMD':
        argv = step.argv;
        break;
      case 'USER':
      case 'STOPSIGNAL':
        break; // checked by test/deploy/dockerfile.test.ts; not reproducible here
    }
  }
  // Absolute paths in the CMD name files of this stage's root.
  return { root, cwd: inStage('.'), env, argv: argv.map((a) => (a.startsWith('/') ? join(root, a) : a)) };
}

/** COPY as Docker does: a directory's contents, a file into a directory (dest ending in / or several sources) or to its path. */
function copy(
  sources: string[],
  dest: string,
  from: string | null,
  inStage: (p: string) => string,
  roots: string[],
  stages: Stage[],
  ignore: string[],
) {
  const fromIndex = from === null ? -1 : stages.findIndex((s) => s.name === from);
  if (from !== null && (fromIndex < 0 || fromIndex >= roots.length - 1))
    throw new ReplayError(`COPY --from=${from}: no earlier stage of that name`);
  const intoDirectory = dest.endsWith('/') || sources.length > 1;
  const target = inStage(dest);
  for (const source of sources) {
    const origin = from === null ? join(ROOT, source) : join(roots[fromIndex] ?? '', source);
    if (!existsSync(origin))
      throw new ReplayError(`COPY ${source}: not found${from === null ? ' in the build context' : ` in stage ${from}`}`);
    const keep = (path: string) => from !== null || statSync(path).isDirectory() || includedInContext(relative(ROOT, path), ignore);
    if (from === null && !filesUnder(origin).some(keep)) throw new ReplayError(`COPY ${source}: excluded by the .dockerignore`);
    const isDirectory = statSync(origin).isDirectory();
    const to = isDirectory || !intoDirectory ? target : join(target, posix.basename(source));
    mkdirSync(isDirectory ? to : dirname(to), { recursive: true });
    cpSync(origin, to, { recursive: true, filter: keep });
  }
}

function filesUnder(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

function run(command: string, args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d;
    });
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** The image's CMD, started as `docker run` would, far enough to see its configuration judged. */
async function checkEntryPoint(image: { cwd: string; env: Record<string, string>; argv: string[] }) {
  const [command = '', ...args] = image.argv;
  const base = { PATH: basePath, ...Object.fromEntries(Object.entries(image.env).filter(([k]) => !k.startsWith('npm_config_'))) };

  const empty = await run(command, args, image.cwd, base);
  if (empty.code !== 78 || !/Invalid bridge configuration/.test(empty.output) || !/SITE_KEY/.test(empty.output)) {
    throw new ReplayError(
      `with no configuration the bridge should exit 78 naming SITE_KEY; it exited ${empty.code}:\n${empty.output.slice(-2000)}`,
    );
  }
  console.log('[image] CMD without configuration: exit 78, "Invalid bridge configuration" naming SITE_KEY');

  // A port nothing listens on: the bridge starts, fails to reach the edge and retries.
  const edgePort = await freePort();
  const child = spawn(command, args, {
    cwd: image.cwd,
    env: {
      ...base,
      EDGE_URL: `http://127.0.0.1:${edgePort}`,
      SITE_ID: 'image-check',
      SITE_KEY: 'sk_image-check',
      PROXMOX_TOKEN_SECRET: '11111111-2222-3333-4444-555555555555',
      GUACAMOLE_USERNAME: 'guacadmin',
      GUACAMOLE_PASSWORD: 'guacadmin',
      BRIDGE_SECRET: '0123456789abcdef0123456789abcdef',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d;
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const startedUp = await waitFor(() => /on-prem bridge starting/.test(output) && /cannot reach the edge/.test(output), exited, 30_000);
  if (!startedUp) {
    stop(child);
    throw new ReplayError(`with a full configuration the bridge did not start and dial the edge:\n${output.slice(-2000)}`);
  }
  child.kill('SIGTERM');
  const code = await Promise.race([exited, sleep(15_000, 'hung' as const)]);
  if (code !== 0) {
    stop(child);
    throw new ReplayError(
      `on SIGTERM the bridge should exit 0; it ${code === 'hung' ? 'did not exit within 15 s' : `exited ${code}`}:\n${output.slice(-2000)}`,
    );
  }
  console.log('[image] CMD with a full configuration: started, dialled the edge, exit 0 on SIGTERM');
}

async function waitFor(ready: () => boolean, exited: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + timeoutMs;
  while (!ready() && !gone && Date.now() < deadline) await sleep(100);
  return ready();
}

function stop(child: ChildProcess) {
  if (child.exitCode === null) child.kill('SIGKILL');
}
