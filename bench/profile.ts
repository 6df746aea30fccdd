/**
 * CPU profiles of the stack's processes over one stretch of a benchmark (BENCH_PROFILE=<dir>
 * npm run bench): each process's inspector is asked over the DevTools protocol to sample
 * while the stretch runs, so start-up and the other phases stay out of the profile. Node
 * processes open their inspector on a free port (`--inspect=127.0.0.1:0`) and print its
 * address; the edge's workerd is reached through Miniflare's inspector proxy.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { join } from 'node:path';
import WebSocket from 'ws';

interface CallFrame {
  functionName: string;
  scriptId: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
export interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** The inspector address a Node process printed (`Debugger listening on ws://…`), once it has printed it. */
export function nodeInspectorUrl(output: string): string | null {
  return /Debugger listening on (ws:\/\/\S+)/.exec(output)?.[1] ?? null;
}

/** The first Worker behind an inspector server that lists its targets at /json (workerd, Miniflare's proxy). */
export async function workerInspectorUrl(port: number): Promise<string> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on port ${port}`);
  return url;
}

/** A DevTools protocol session: one request at a time is all the profiler needs. */
async function session(url: string) {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
    const waiter = msg.id === undefined ? undefined : pending.get(msg.id);
    if (!waiter || msg.id === undefined) return;
    pending.delete(msg.id);
    if (msg.error) waiter.reject(new Error(msg.error.message));
    else waiter.resolve(msg.result);
  });
  return {
    send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
      const id = nextId++;
      ws.send(JSON.stringify({ id, method, params }));
      return new Promise<T>((resolve, reject) => pending.set(id, { resolve: resolve as (v: unknown) => void, reject }));
    },
    close: () => ws.close(),
  };
}

/** Starts sampling in every target; the returned function stops them, writes <dir>/<label>-<name>.cpuprofile and summarises. */
export async function profileStretch(targets: { name: string; url: string }[], dir: string, label: string): Promise<() => Promise<string>> {
  const sessions = await Promise.all(
    targets.map(async (t) => {
      const s = await session(t.url);
      await s.send('Profiler.enable');
      // 1 ms, V8's default: finer sampling costs the sampled process noticeably more.
      await s.send('Profiler.setSamplingInterval', { interval: 1000 });
      await s.send('Profiler.start');
      return { ...t, s };
    }),
  );
  return async () => {
    const parts: string[] = [];
    mkdirSync(dir, { recursive: true });
    for (const { name, s } of sessions) {
      const { profile } = await s.send<{ profile: CpuProfile }>('Profiler.stop');
      writeFileSync(join(dir, `${label}-${name}.cpuprofile`), JSON.stringify(profile));
      // Sources are read after sampling ended (the debugger domain costs the process while on).
      await s.send('Debugger.enable');
      const sources = new Map<string, string | null>();
      const source = async (scriptId: string) => {
        if (!sources.has(scriptId)) {
          const got = await s.send<{ scriptSource: string }>('Debugger.getScriptSource', { scriptId }).catch(() => null);
          sources.set(scriptId, got?.scriptSource ?? null);
        }
        return sources.get(scriptId) ?? null;
      };
      parts.push(`${name} (${label})\n${await summarise(profile, source)}`);
      await s.send('Debugger.disable');
      s.close();
    }
    return parts.join('\n\n');
  };
}

/** Where a sampled position lies in the code as written: through the inline source map tsx adds, or esbuild's module comments in a bundle. */
function locator(code: string | null): (line: number, column: number) => string | null {
  if (!code) return () => null;
  const inline = /\/\/# sourceMappingURL=data:application\/json;(?:charset=utf-8;)?base64,([A-Za-z0-9+/=]+)\s*$/.exec(code);
  if (inline?.[1]) {
    const map = new SourceMap(JSON.parse(Buffer.from(inline[1], 'base64').toString('utf8')));
    return (line, column) => {
      const entry = map.findEntry(line, column) as { originalSource?: string; originalLine?: number };
      return entry.originalSource ? `${shortPath(entry.originalSource)}:${(entry.originalLine ?? 0) + 1}` : null;
    };
  }
  // An esbuild bundle (the edge): a `// src/…/file.ts` comment opens each module.
  const lines = code.split('\n');
  return (line) => {
    for (let i = line; i >= 0; i--) {
      const m = /^\/\/ (\S+\.(?:[cm]?js|tsx?))$/.exec(lines[i] ?? '');
      if (m?.[1]) return `${shortPath(m[1])} (bundle line ${line + 1})`;
    }
    return null;
  };
}

const shortPath = (path: string) =>
  path
    .replace(/^.*\/node_modules\//, '~/')
    .replace(/^file:\/\/.*?\/(on-prem-bridge|simulators|src|workers|scripts|bench)\//, '$1/')
    .replace(/^.*\/(on-prem-bridge|simulators)\//, '$1/');

/**
 * The entries with the most self time, as "ms  %  function  file:line"; the percentages are of the
 * time the process was busy (idle samples left out, and reported in the heading).
 */
export async function summarise(profile: CpuProfile, source: (scriptId: string) => Promise<string | null>, top = 15): Promise<string> {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const selfByNode = new Map<number, number>();
  let idle = 0;
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    if (byNode.get(id)?.functionName === '(idle)') idle += dt;
    else {
      busy += dt;
      selfByNode.set(id, (selfByNode.get(id) ?? 0) + dt);
    }
  });
  // Resolve the heaviest positions only; a profile has thousands.
  const heaviest = [...selfByNode.entries()].sort((a, b) => b[1] - a[1]).slice(0, 300);
  const locators = new Map<string, ReturnType<typeof locator>>();
  const self = new Map<string, number>();
  for (const [id, ms] of heaviest) {
    const frame = byNode.get(id);
    if (!frame) continue;
    let where: string | null = null;
    if (frame.scriptId && frame.scriptId !== '0') {
      if (!locators.has(frame.scriptId)) locators.set(frame.scriptId, locator(await source(frame.scriptId)));
      where = locators.get(frame.scriptId)?.(frame.lineNumber, frame.columnNumber) ?? null;
    }
    where ??= frame.url ? `${shortPath(frame.url)}:${frame.lineNumber + 1}` : '';
    const key = `${frame.functionName || '(anonymous)'}  ${where}`;
    self.set(key, (self.get(key) ?? 0) + ms);
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  const head = `  busy ${busy.toFixed(0)} ms, idle ${idle.toFixed(0)} ms`;
  return [head, ...rows.map(([k, ms]) => `  ${ms.toFixed(1).padStart(8)} ms ${((100 * ms) / busy).toFixed(1).padStart(5)} %  ${k}`)].join(
    '\n',
  );
}
