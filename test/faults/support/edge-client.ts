/**
 * The fault suite's user: calls the public API of the edge the way a person's client
 * would, one user (and token) per desktop so the default quota of one is never in the way.
 */
import type { Stack } from '../../../scripts/lib/stack';
import type { Desktop, DesktopStatus, TransitionRecord } from '../../../src/schemas/desktop';

export type Action = 'stop' | 'start' | 'delete';

export interface Envelope<T> {
  success: boolean;
  message: string;
  data: T;
}

export interface DesktopStatusView {
  id: string;
  status: DesktopStatus;
  statusMessage: string | null;
  errorMessage: string | null;
}

/** Statuses in which the edge waits on work in progress (the watchdog's statuses). */
export const IN_PROGRESS: ReadonlySet<DesktopStatus> = new Set([
  'PENDING',
  'PROVISIONING',
  'STARTING',
  'WAITING_FOR_IP',
  'CONFIGURING',
  'STOPPING',
]);

export class EdgeClient {
  private readonly tokens = new Map<string, Promise<string>>();

  constructor(private readonly stack: Stack) {}

  private token(user: string, roles: ('admin' | 'service')[] = []): Promise<string> {
    let token = this.tokens.get(user);
    if (!token) {
      token = this.stack.token(user, roles);
      this.tokens.set(user, token);
    }
    return token;
  }

  async call<T>(user: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Envelope<T> }> {
    const res = await fetch(`${this.stack.edgeUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${await this.token(user)}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as Envelope<T> };
  }

  async create(user: string, name: string): Promise<Desktop> {
    const res = await this.call<Desktop>(user, 'POST', '/api/v1/desktops', { name, plan: 'BASIC' });
    if (res.status !== 202) throw new Error(`create for ${user} answered ${res.status}: ${res.body.message}`);
    return res.body.data;
  }

  /** Asks for stop, start or delete; resolves to the HTTP status (202, or a 409 naming the status). */
  async act(user: string, id: string, action: Action): Promise<{ status: number; message: string }> {
    const res =
      action === 'delete'
        ? await this.call<Desktop>(user, 'DELETE', `/api/v1/desktops/${id}`)
        : await this.call<Desktop>(user, 'POST', `/api/v1/desktops/${id}/${action}`);
    return { status: res.status, message: res.body.message };
  }

  async status(user: string, id: string): Promise<DesktopStatusView> {
    const res = await this.call<DesktopStatusView>(user, 'GET', `/api/v1/desktops/${id}/status`);
    if (res.status !== 200) throw new Error(`status of ${id} answered ${res.status}: ${res.body.message}`);
    return { ...res.body.data, id };
  }

  async desktop(user: string, id: string): Promise<Desktop> {
    return (await this.call<Desktop>(user, 'GET', `/api/v1/desktops/${id}`)).body.data;
  }

  async events(user: string, id: string): Promise<TransitionRecord[]> {
    return (await this.call<TransitionRecord[]>(user, 'GET', `/api/v1/desktops/${id}/events`)).body.data;
  }

  /** Commands the site's hub still holds (leased to the bridge, not yet completed or failed). */
  async commandsInFlight(): Promise<number | undefined> {
    const res = await fetch(`${this.stack.edgeUrl}/api/v1/admin/health`, {
      headers: { authorization: `Bearer ${await this.token('faults-admin', ['admin'])}` },
    });
    const body = (await res.json()) as Envelope<{ sites?: { id: string; commandsInFlight?: number }[] }>;
    return body.data.sites?.find((s) => s.id === this.stack.siteId)?.commandsInFlight;
  }
}

/** One line per transition, for reports of desktops that did not converge. */
export function timeline(events: TransitionRecord[]): string {
  return events.map((e) => `    ${e.at.slice(11, 23)} ${e.from ?? '∅'} → ${e.to} (${e.event}, ${e.actor}): ${e.reason}`).join('\n');
}
