/** What the end-to-end tests share: calling the edge as a bearer client, and polling until something holds. */
import { setTimeout as sleep } from 'node:timers/promises';

export interface Answer<T> {
  status: number;
  body: { success: boolean; message: string; data: T };
}

/** A JSON call to the edge with a bearer token; `edgeUrl` is read at call time (the stack starts in beforeAll). */
export function edgeClient(edgeUrl: () => string) {
  return async function call<T>(method: string, path: string, tok: string, body?: unknown): Promise<Answer<T>> {
    const res = await fetch(`${edgeUrl()}${path}`, {
      method,
      headers: { authorization: `Bearer ${tok}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Answer<T>['body'] };
  };
}

/** Polls `probe` until it answers something other than undefined; fails naming `what` after the time-out. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  { timeoutMs = 60_000, everyMs = 100 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined) return v;
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}
