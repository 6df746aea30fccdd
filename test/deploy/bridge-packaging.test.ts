/**
 * The bridge as operators install it: the container image (on-prem-bridge/Dockerfile, read
 * with the Docker language server's parser and validator; .ci/run replays its steps with
 * npm, scripts/dockerfile-steps.ts), its own package.json and lock file, the systemd unit
 * and the example configuration.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative } from 'node:path';
import { promisify } from 'node:util';
import { validate } from 'dockerfile-utils';
import { build } from 'esbuild';
import { describe, expect, inject, it } from 'vitest';
import { EnvSchema, loadConfig } from '../../on-prem-bridge/src/config';
import {
  BRIDGE_DOCKERFILE,
  dockerignoreFor,
  includedInContext,
  readBridgePlan,
  type Stage,
  type Step,
} from '../../scripts/lib/dockerfile-plan';
import { parseEnvFile, ROOT } from '../../scripts/lib/local-config';

const BRIDGE = join(ROOT, 'on-prem-bridge');
const readJson = <T>(path: string) => JSON.parse(readFileSync(path, 'utf8')) as T;
interface Manifest {
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  engines?: { node?: string };
}
interface Lock {
  packages: Record<string, { version?: string }>;
}
const bridgeManifest = readJson<Manifest>(join(BRIDGE, 'package.json'));
const rootLock = readJson<Lock>(join(ROOT, 'package-lock.json'));

const plan = readBridgePlan();
const finalStage = plan.stages.at(-1) as Stage;
const stepsOf = <K extends Step['kind']>(stage: Stage, kind: K) =>
  stage.steps.filter((s): s is Extract<Step, { kind: K }> => s.kind === kind);
/** The build script's output, e.g. dist/main.js. */
const bundleFile = /--outfile=(\S+)/.exec(bridgeManifest.scripts.build ?? '')?.[1] ?? '';

describe('the bridge’s Dockerfile', () => {
  it('is a valid Dockerfile (dockerfile-utils, the Docker language server’s validator)', () => {
    expect(validate(readFileSync(BRIDGE_DOCKERFILE, 'utf8')).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it('uses only instructions the npm replay reproduces', () => {
    expect(plan.unsupported).toEqual([]);
  });

  it('builds in stages on a slim node image pinned to the Node release the repository tests with', () => {
    const node = rootLock.packages['node_modules/node']?.version;
    expect(plan.stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of plan.stages) {
      expect(stage.image.name, `line ${stage.line}`).toBe('node');
      expect(stage.image.tag, `line ${stage.line}`).toMatch(new RegExp(`^${node?.replaceAll('.', '\\.')}-[a-z]+-slim$`));
    }
  });

  it('runs as the image’s unprivileged user', () => {
    const users = stepsOf(finalStage, 'USER').map((s) => s.user);
    expect(users.at(-1)).toBeDefined();
    expect(['root', '0', '0:0']).not.toContain(users.at(-1));
    const order = finalStage.steps.map((s) => s.kind);
    expect(order.lastIndexOf('USER')).toBeLessThan(order.indexOf('CMD'));
  });

  it('copies only files the repository has and its .dockerignore lets into the build', () => {
    const ignore = dockerignoreFor(BRIDGE_DOCKERFILE);
    const files = (path: string): string[] =>
      statSync(path).isDirectory()
        ? readdirSync(path, { recursive: true, withFileTypes: true })
            .filter((e) => e.isFile())
            .map((e) => join(e.parentPath, e.name))
        : [path];
    for (const stage of plan.stages) {
      for (const copy of stepsOf(stage, 'COPY')) {
        if (copy.from !== null) {
          expect(plan.stages.slice(0, plan.stages.indexOf(stage)).map((s) => s.name)).toContain(copy.from);
          continue;
        }
        for (const source of copy.sources) {
          expect(existsSync(join(ROOT, source)), `${source} is not in the repository`).toBe(true);
          const excluded = files(join(ROOT, source))
            .map((f) => relative(ROOT, f))
            .filter((f) => !includedInContext(f, ignore));
          expect(excluded, `${source} is (partly) excluded by the .dockerignore`).toEqual([]);
        }
      }
    }
    // And the context leaves out what the image must not get.
    for (const path of ['node_modules/zod/package.json', '.dev.vars', '.local/bridge.env', 'wrangler.toml', 'workers/index.ts'])
      expect(includedInContext(path, ignore), path).toBe(false);
  });

  it('installs only the bridge’s run-time packages in the image that runs', () => {
    const copies = stepsOf(finalStage, 'COPY').flatMap((c) => c.sources);
    expect(copies).toEqual(expect.arrayContaining(['on-prem-bridge/package.json', 'on-prem-bridge/package-lock.json']));
    expect(stepsOf(finalStage, 'RUN').map((r) => r.command)).toEqual([expect.stringMatching(/^npm ci --omit=dev\b/)]);
  });

  it('runs the bundle the build stage makes, in exec form (node is PID 1 and gets SIGTERM)', () => {
    const buildStage = plan.stages.find((s) => s.steps.some((x) => x.kind === 'RUN' && x.command === 'npm run build')) as Stage;
    // Where the build stage's `npm run build` writes the bundle, and where the final stage copies it.
    let cwd = '/';
    let builtAt = '';
    for (const step of buildStage.steps) {
      if (step.kind === 'WORKDIR') cwd = posix.resolve(cwd, step.path);
      if (step.kind === 'RUN' && step.command === 'npm run build') builtAt = posix.resolve(cwd, bundleFile);
    }
    cwd = '/';
    let bundleAt = '';
    for (const step of finalStage.steps) {
      if (step.kind === 'WORKDIR') cwd = posix.resolve(cwd, step.path);
      if (step.kind === 'COPY' && step.from === buildStage.name && step.sources.length === 1) {
        const source = step.sources[0] ?? '';
        if (builtAt.startsWith(`${source}/`)) bundleAt = posix.join(posix.resolve(cwd, step.dest), builtAt.slice(source.length + 1));
      }
    }
    expect(bundleAt).not.toBe('');
    expect(stepsOf(finalStage, 'CMD').at(-1)?.argv).toEqual(['node', bundleAt]);
    expect(stepsOf(finalStage, 'STOPSIGNAL').at(-1)?.signal ?? 'SIGTERM').toBe('SIGTERM');
  });

  it('copies into the build stage every repository file the bridge’s bundle is made from', async () => {
    // The bridge shares schemas with the edge; a schema that reaches for a module outside
    // what the build stage copies builds here and fails in the image (`Could not resolve`).
    const buildStage = plan.stages.find((s) => s.steps.some((x) => x.kind === 'RUN' && x.command === 'npm run build')) as Stage;
    const copied = stepsOf(buildStage, 'COPY')
      .filter((c) => c.from === null)
      .flatMap((c) => c.sources);
    const result = await build({
      entryPoints: [join(BRIDGE, 'src/main.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      write: false,
      metafile: true,
      logLevel: 'silent',
      absWorkingDir: ROOT,
    });
    const inputs = Object.keys(result.metafile.inputs).filter((f) => !f.startsWith('node_modules/'));
    const outside = inputs.filter((f) => !copied.some((source) => f === source || f.startsWith(`${source.replace(/\/$/, '')}/`)));
    // The bridge's own sources are copied as on-prem-bridge/src.
    expect(inputs.length).toBeGreaterThan(10);
    expect(outside, 'imported by the bridge but not copied into the build stage').toEqual([]);
  });

  it('bakes no secret into the image', () => {
    const names = plan.stages.flatMap((s) => stepsOf(s, 'ENV').map((e) => e.name));
    expect(names.filter((n) => /SECRET|KEY|PASSWORD|TOKEN/.test(n))).toEqual([]);
  });
});

describe('the bridge’s package (on-prem-bridge/package.json)', () => {
  it('declares every package the bridge imports, and only those (with what they need beside them)', async () => {
    // The same bundle as its build script makes, read for the imports left external.
    const result = await build({
      entryPoints: [join(BRIDGE, 'src/main.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const imported = new Set(
      Object.values(result.metafile.outputs)
        .flatMap((o) => o.imports)
        .filter((i) => i.external && !i.path.startsWith('node:'))
        .map((i) =>
          i.path
            .split('/')
            .slice(0, i.path.startsWith('@') ? 2 : 1)
            .join('/'),
        ),
    );
    const declared = Object.keys(bridgeManifest.dependencies);
    expect(
      [...imported].filter((p) => !declared.includes(p)),
      'imported but not in on-prem-bridge/package.json',
    ).toEqual([]);
    const peers = [...imported].flatMap((p) =>
      Object.keys(readJson<Manifest>(join(ROOT, 'node_modules', p, 'package.json')).peerDependencies ?? {}),
    );
    expect(
      declared.filter((p) => !imported.has(p) && !peers.includes(p)),
      'declared but never imported',
    ).toEqual([]);
  });

  it('locks every package at the version the repository tests with (its root lock file)', () => {
    const bridgeLock = readJson<Lock & { packages: Record<string, { version?: string }> }>(join(BRIDGE, 'package-lock.json'));
    const drift = Object.entries(bridgeLock.packages)
      .filter(([path]) => path !== '')
      .filter(([path, entry]) => rootLock.packages[path]?.version !== entry.version)
      .map(([path, entry]) => `${path} ${entry.version} (root: ${rootLock.packages[path]?.version ?? 'absent'})`);
    // To refresh: cp package-lock.json on-prem-bridge/ && npm --prefix on-prem-bridge install --package-lock-only --ignore-scripts
    expect(drift).toEqual([]);
    for (const [name, version] of Object.entries({ ...bridgeManifest.dependencies, ...bridgeManifest.devDependencies }))
      expect(bridgeLock.packages[`node_modules/${name}`]?.version, name).toBe(version);
  });

  it('runs on the Node 22 the image and the unit give it', () => {
    expect(bridgeManifest.engines?.node).toBe('>=22');
  });
});

/** The unit's settings: section → key → every value given (a key may repeat). */
function readUnit(text: string): Record<string, Record<string, string[]>> {
  const unit: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header?.[1]) section = header[1];
    else {
      const [key = '', ...value] = line.split('=');
      const settings = unit[section] ?? {};
      settings[key] = [...(settings[key] ?? []), value.join('=')];
      unit[section] = settings;
    }
  }
  return unit;
}

describe('the bridge’s systemd unit (on-prem-bridge/cdaas-bridge.service)', () => {
  const text = readFileSync(join(BRIDGE, 'cdaas-bridge.service'), 'utf8');
  const service = readUnit(text).Service ?? {};
  const one = (key: string) => service[key]?.at(-1);

  it('runs the bundle with its configuration from an EnvironmentFile, as a user of its own', () => {
    expect(one('ExecStart')).toMatch(new RegExp(`^/\\S+/node /opt/cdaas-bridge/${bundleFile.replaceAll('.', '\\.')}$`));
    expect(one('EnvironmentFile')).toBe('/etc/cdaas-bridge/bridge.env');
    expect(one('DynamicUser') === 'yes' || (one('User') !== undefined && one('User') !== 'root')).toBe(true);
  });

  it('is hardened: no new privileges, a read-only system, no capabilities, a system-call filter', () => {
    expect(service).toMatchObject({
      NoNewPrivileges: ['yes'],
      ProtectSystem: ['strict'],
      ProtectHome: ['yes'],
      PrivateTmp: ['yes'],
      CapabilityBoundingSet: [''],
      RestrictAddressFamilies: ['AF_INET AF_INET6 AF_UNIX'],
    });
    expect(service.SystemCallFilter).toEqual(['@system-service', '~@privileged']);
    // V8's JIT writes executable memory: this setting would kill the bridge at start.
    expect(service.MemoryDenyWriteExecute ?? []).not.toContain('yes');
  });

  it('restarts a crash but not a bad configuration, and waits out the drain on stop', () => {
    expect(readFileSync(join(BRIDGE, 'src/main.ts'), 'utf8')).toContain('process.exit(78); // EX_CONFIG');
    expect(one('RestartPreventExitStatus')).toBe('78');
    expect(one('Restart')).toBe('on-failure');
    const drain = loadConfig({
      SITE_KEY: 'k',
      PROXMOX_TOKEN_SECRET: '11111111-2222-3333-4444-555555555555',
      GUACAMOLE_USERNAME: 'u',
      GUACAMOLE_PASSWORD: 'p',
      BRIDGE_SECRET: 'x'.repeat(32),
    }).drainTimeoutSeconds;
    expect(Number(one('TimeoutStopSec'))).toBeGreaterThan(drain);
  });

  const { systemdAnalyze } = inject('systemPrograms');
  it.skipIf(!systemdAnalyze)('passes systemd’s own verifier without a warning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'unit-'));
    try {
      // The verifier wants ExecStart's program to exist: this machine's node stands in for the site's.
      const unit = join(dir, 'cdaas-bridge.service');
      writeFileSync(unit, text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
      const { stderr } = await promisify(execFile)(systemdAnalyze, ['verify', unit]);
      expect(stderr).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the bridge’s example configuration (on-prem-bridge/bridge.env.example)', () => {
  it('names every variable the bridge reads, and no other', () => {
    const text = readFileSync(join(BRIDGE, 'bridge.env.example'), 'utf8');
    const named = new Set([...text.matchAll(/^#?\s?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
    expect(
      Object.keys(EnvSchema.shape).filter((k) => !named.has(k)),
      'missing from bridge.env.example',
    ).toEqual([]);
    expect(
      [...named].filter((k) => k && !(k in EnvSchema.shape)),
      'not read by the bridge',
    ).toEqual([]);
  });

  it('fails to start until its secrets are filled in, naming each', () => {
    const example = parseEnvFile(join(BRIDGE, 'bridge.env.example'));
    expect(() => loadConfig(example)).toThrow(/SITE_KEY[\s\S]*PROXMOX_TOKEN_SECRET[\s\S]*GUACAMOLE_PASSWORD[\s\S]*BRIDGE_SECRET/);
  });
});
