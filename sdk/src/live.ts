/**
 * Waiting for a desktop: over its live stream (GET /desktops/{id}/live as Server-Sent
 * Events, read with fetch so the bearer token goes in a header, in Node and browsers
 * alike), falling back to polling GET /desktops/{id} when the stream cannot be opened or
 * breaks off (a proxy that buffers or cuts long responses).
 */
import { DesktopFailedError, WaitTimeoutError, errorFromResponse } from './errors.ts';
import { type Fetch, sleep } from './retry.ts';
import type { Desktop, DesktopStatus, LiveMessage } from './types.ts';

export interface WaitProgress {
  desktop: Desktop;
  status: DesktopStatus;
  /** What the desktop is doing (its statusMessage, or the bridge's progress step message). */
  message: string | null;
  /** The bridge's step name, for progress reports (clone, start_vm, wait_ip, …). */
  step?: string;
  /** Where this came from: the live stream, or a poll after the stream was unavailable. */
  via: 'live' | 'poll';
}

export interface WaitOptions {
  onProgress?: (progress: WaitProgress) => void;
  /** Give up after this long (default 10 minutes) with a WaitTimeoutError. */
  timeoutMs?: number;
  /** Abort the wait (rejects with the signal's reason). */
  signal?: AbortSignal;
  /** How often to poll once the live stream is unavailable (default 2 s). */
  pollIntervalMs?: number;
  /** Set false to poll from the start. */
  live?: boolean;
}

/** Statuses a desktop cannot leave towards most others: waiting for anything else there is pointless. */
const DEAD_ENDS: DesktopStatus[] = ['FAILED', 'DELETED'];

export interface WaitDeps {
  baseUrl: string;
  fetch: Fetch;
  authorization: () => Promise<string>;
  get: (id: string, signal: AbortSignal) => Promise<Desktop>;
}

export async function waitForStatus(deps: WaitDeps, id: string, target: DesktopStatus, opts: WaitOptions = {}): Promise<Desktop> {
  const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
  let last: Desktop | undefined;
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new WaitTimeoutError(`desktop ${id} not ${target} after ${timeoutMs} ms`, last?.status)),
    timeoutMs,
  );
  const onAbort = () => controller.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  /** The desktop as seen now: the result once it is in the target status, an error at a dead end. */
  const seen = (progress: WaitProgress): Desktop | undefined => {
    const changed = progress.via === 'live' || progress.status !== last?.status || progress.message !== last?.statusMessage;
    last = progress.desktop;
    if (changed) opts.onProgress?.(progress);
    if (progress.status === target) return progress.desktop;
    if (DEAD_ENDS.includes(progress.status) && !DEAD_ENDS.includes(target)) {
      const why = progress.desktop.errorMessage ?? progress.desktop.statusMessage ?? 'no reason given';
      throw new DesktopFailedError(`desktop ${id} is ${progress.status} (${why}), it will not become ${target}`, progress.desktop);
    }
    return undefined;
  };

  try {
    if (opts.live !== false) {
      const done = await followLive(deps, id, controller.signal, seen);
      if (done) return done;
    }
    for (;;) {
      const desktop = await deps.get(id, controller.signal);
      const done = seen({ desktop, status: desktop.status, message: desktop.statusMessage, via: 'poll' });
      if (done) return done;
      await sleep(opts.pollIntervalMs ?? 2000, controller.signal);
    }
  } catch (err) {
    throw controller.signal.aborted ? controller.signal.reason : err;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** Follows the live stream until `seen` returns a desktop (or throws); undefined if the stream is unavailable or ends. */
async function followLive(
  deps: WaitDeps,
  id: string,
  signal: AbortSignal,
  seen: (p: WaitProgress) => Desktop | undefined,
): Promise<Desktop | undefined> {
  let response: Response;
  try {
    response = await deps.fetch(
      new Request(`${deps.baseUrl}/api/v1/desktops/${encodeURIComponent(id)}/live`, {
        headers: { accept: 'text/event-stream', authorization: await deps.authorization() },
        signal,
      }),
    );
  } catch (err) {
    if (signal.aborted) throw err;
    return undefined;
  }
  if (!response.ok) {
    // The desktop's absence or a bad token is an answer, not a reason to poll.
    if ([401, 403, 404].includes(response.status)) throw errorFromResponse(response, await response.json().catch(() => null));
    await response.body?.cancel();
    return undefined;
  }
  if (!response.body || !response.headers.get('content-type')?.includes('text/event-stream')) return undefined;
  try {
    for await (const message of serverSentEvents(response.body)) {
      const live = JSON.parse(message) as LiveMessage;
      if (!live.desktop) continue;
      const progress: WaitProgress = {
        desktop: live.desktop,
        status: live.desktop.status,
        message: live.desktop.statusMessage,
        via: 'live',
      };
      if (live.type === 'progress') Object.assign(progress, { step: live.step, message: live.message });
      const done = seen(progress);
      if (done) return done;
    }
  } catch (err) {
    if (signal.aborted || err instanceof DesktopFailedError) throw err;
  } finally {
    await response.body.cancel().catch(() => {});
  }
  return undefined;
}

/** The `data` of each event of a text/event-stream (the SSE format of the HTML standard, enough of it for this API). */
export async function* serverSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.search(/\r\n|\r|\n/);
      while (end >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith('\r\n', end) ? 2 : 1));
        if (line === '') {
          if (data.length > 0) yield data.join('\n');
          data = [];
        } else if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
        end = buffer.search(/\r\n|\r|\n/);
      }
    }
  } finally {
    reader.releaseLock();
  }
}
