/**
 * The bridge's Dockerfile read as a plan of build stages and steps (with dockerfile-ast,
 * the parser of the Docker language server), and its .dockerignore as Docker applies it.
 * There is no `docker build` on the machines this repository is tested on: the shape test
 * (test/deploy/dockerfile.test.ts) and the replay (scripts/dockerfile-steps.ts) both read
 * the Dockerfile through this plan, and refuse instructions the replay cannot reproduce.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Cmd, type Copy, DockerfileParser, type Env, type From, type Instruction } from 'dockerfile-ast';
import { ROOT } from './local-config';

export const BRIDGE_DOCKERFILE = join(ROOT, 'on-prem-bridge/Dockerfile');

export type Step =
  | { kind: 'WORKDIR'; path: string }
  | { kind: 'ENV'; name: string; value: string }
  | { kind: 'COPY'; sources: string[]; dest: string; from: string | null }
  | { kind: 'RUN'; command: string }
  | { kind: 'USER'; user: string }
  | { kind: 'CMD'; argv: string[] }
  | { kind: 'STOPSIGNAL'; signal: string };

export interface Stage {
  /** `AS <name>`, or null for an unnamed stage. */
  name: string | null;
  image: { name: string; tag: string | null; digest: string | null };
  steps: Step[];
  line: number;
}

export interface DockerfilePlan {
  stages: Stage[];
  /** Instructions outside what the plan (and so the replay) knows, with their line. */
  unsupported: string[];
}

export function readDockerfilePlan(text: string): DockerfilePlan {
  const stages: Stage[] = [];
  const unsupported: string[] = [];
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    const keyword = instruction.getKeyword();
    const line = instruction.getRange().start.line + 1;
    const args = instruction.getArguments().map((a) => a.getValue());
    if (keyword === 'FROM') {
      const from = instruction as From;
      stages.push({
        name: from.getBuildStage(),
        image: { name: from.getImageName() ?? '', tag: from.getImageTag(), digest: from.getImageDigest() },
        steps: [],
        line,
      });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) {
      unsupported.push(`line ${line}: ${keyword} before the first FROM`);
      continue;
    }
    const step = toStep(keyword, instruction, args);
    if (step) stage.steps.push(step);
    // ADD, ARG, SHELL, ENTRYPOINT, VOLUME, HEALTHCHECK...: nothing the replay could reproduce or the bridge needs.
    else unsupported.push(`line ${line}: ${keyword}`);
  }
  return { stages, unsupported };
}

function toStep(keyword: string, instruction: Instruction, args: string[]): Step | null {
  switch (keyword) {
    case 'WORKDIR':
      return args.length === 1 && args[0] ? { kind: 'WORKDIR', path: args[0] } : null;
    case 'ENV': {
      const [property, ...rest] = (instruction as Env).getProperties();
      return property && rest.length === 0 ? { kind: 'ENV', name: property.getName(), value: property.getValue() ?? '' } : null;
    }
    case 'COPY': {
      const copy = instruction as Copy;
      const flags = copy.getFlags().map((f) => f.getName());
      if (flags.some((f) => f !== 'from') || args.length < 2) return null;
      return { kind: 'COPY', sources: args.slice(0, -1), dest: args.at(-1) ?? '', from: copy.getFromFlag()?.getValue() ?? null };
    }
    case 'RUN':
      return { kind: 'RUN', command: instruction.getArgumentsContent() ?? '' };
    case 'USER':
      return args.length === 1 && args[0] ? { kind: 'USER', user: args[0] } : null;
    case 'CMD': {
      // Exec form only: a shell-form CMD would run under /bin/sh as PID 1, which does not pass SIGTERM on.
      const argv = (instruction as Cmd).getJSONStrings().map((s) => s.getJSONValue());
      return argv.length > 0 ? { kind: 'CMD', argv } : null;
    }
    case 'STOPSIGNAL':
      return args.length === 1 && args[0] ? { kind: 'STOPSIGNAL', signal: args[0] } : null;
    default:
      return null;
  }
}

export const readBridgePlan = () => readDockerfilePlan(readFileSync(BRIDGE_DOCKERFILE, 'utf8'));

/**
 * The ignore file BuildKit uses for a Dockerfile: `<Dockerfile>.dockerignore` beside it,
 * else `.dockerignore` at the root of the context.
 */
export function dockerignoreFor(dockerfile: string): string[] {
  const path = [`${dockerfile}.dockerignore`, join(ROOT, '.dockerignore')].find((p) => existsSync(p));
  if (!path) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

const globToRegExp = (glob: string) =>
  new RegExp(
    `^${glob
      .split('**')
      .map((part) =>
        part
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]'),
      )
      .join('.*')}$`,
  );

/**
 * Whether a context path (relative, with /) reaches the build, as Docker's pattern matcher
 * decides: the last pattern that matches the path or one of its parents wins, `!` re-includes.
 */
export function includedInContext(path: string, patterns: readonly string[]): boolean {
  const parts = path.split('/');
  const selfAndParents = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let included = true;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = globToRegExp((negate ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, ''));
    if (selfAndParents.some((p) => pattern.test(p))) included = negate;
  }
  return included;
}
