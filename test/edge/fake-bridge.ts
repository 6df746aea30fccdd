/**
 * A test stand-in for the on-prem bridge inside workerd: it dials the real bridge
 * endpoint through the Worker's fetch, speaks the protocol of
 * src/schemas/bridge-protocol.ts and records what the edge sends. (The real bridge is
 * exercised against the simulators in the Node end-to-end tests.)
 */
import { env, exports } from 'cloudflare:workers';
import { expect, vi } from 'vitest';
import type { Bindings } from '../../src/env';
import type { NewDesktopInput } from '../../src/lib/new-desktop';
import type { Desktop } from '../../src/schemas/desktop';
import type { BridgeToEdge, Command, DesktopFacts, EdgeToBridge, Step } from '../../src/schemas/bridge-protocol';
import { seedDesktop } from './builders';
import { api, token } from './helpers';

export async function registerSite(id: string): Promise<string> {
  const res = await api<{ siteKey: string }>('POST', '/api/v1/admin/sites', {
    token: await token('root', { roles: ['admin'] }),
    body: { id, name: id },
  });
  if (res.status !== 201 || !res.body) throw new Error(`site registration failed: ${res.status} ${res.text}`);
  return res.body.data.siteKey;
}

/** The real bridge echoes a command's request id on its progress, complete and fail frames. */
const echo = (cmd: Command) => (cmd.requestId ? { requestId: cmd.requestId } : {});

export class FakeBridge {
  readonly received: EdgeToBridge[] = [];
  private waiters: { match: (f: EdgeToBridge) => boolean; resolve: (f: EdgeToBridge) => void }[] = [];

  /** When the hub saw this link open (its status' connectedAt), to tell it from a later link of the same site. */
  private connectedAt: string | null = null;

  private constructor(
    readonly ws: WebSocket,
    readonly siteId: string,
  ) {
    ws.addEventListener('message', (ev) => {
      const frame = JSON.parse(String(ev.data)) as EdgeToBridge;
      this.received.push(frame);
      for (const w of [...this.waiters]) {
        if (w.match(frame)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(frame);
        }
      }
    });
  }

  static async connect(siteId: string, siteKey: string): Promise<FakeBridge> {
    const res = await exports.default.fetch(
      new Request(`http://edge.test/api/v1/sites/${siteId}/bridge`, {
        headers: { upgrade: 'websocket', authorization: `Bearer ${siteKey}` },
      }),
    );
    if (res.status !== 101 || !res.webSocket) throw new Error(`bridge upgrade refused: ${res.status} ${await res.text()}`);
    res.webSocket.accept();
    const bridge = new FakeBridge(res.webSocket, siteId);
    await bridge.waitFor((f) => f.type === 'hello');
    bridge.send({ type: 'ready', protocolVersion: 1, bridgeVersion: 'fake', running: [] });
    bridge.connectedAt = (await (env as Bindings).SITE_HUB.getByName(siteId).status()).connectedAt;
    return bridge;
  }

  send(frame: BridgeToEdge): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** Resolves with the first frame (already received or future) that matches. */
  waitFor(match: (f: EdgeToBridge) => boolean, timeoutMs = 10_000): Promise<EdgeToBridge> {
    const seen = this.received.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a frame from the edge')), timeoutMs);
      this.waiters.push({
        match,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      });
    });
  }

  /** The first command of `kind` for the desktop (already received or future), other than the one with id `except`. */
  async command(desktopId: string, kind: Command['kind'], except?: string): Promise<Command> {
    const f = await this.waitFor(
      (x) => x.type === 'command' && x.command.desktopId === desktopId && x.command.kind === kind && x.command.id !== except,
    );
    if (f.type !== 'command') throw new Error('unreachable');
    return f.command;
  }

  progress(cmd: Command, step: Step, message: string, facts?: DesktopFacts): void {
    this.send({ type: 'progress', commandId: cmd.id, desktopId: cmd.desktopId, step, message, facts, ...echo(cmd) });
  }

  complete(cmd: Command, facts: DesktopFacts = {}): void {
    this.send({ type: 'complete', commandId: cmd.id, desktopId: cmd.desktopId, facts, ...echo(cmd) });
  }

  /** Plays a whole successful create, step by step, as the real bridge reports it. */
  async runCreate(cmd: Command, facts: Required<Pick<DesktopFacts, 'vmId' | 'ipAddress' | 'connectionId'>>): Promise<void> {
    this.send({ type: 'accepted', commandId: cmd.id, desktopId: cmd.desktopId });
    this.progress(cmd, 'allocate', `allocated VMID ${facts.vmId}`, { vmId: facts.vmId, node: 'pve1' });
    this.progress(cmd, 'clone', 'cloning template 9000');
    this.progress(cmd, 'configure_vm', 'setting cores and memory');
    this.progress(cmd, 'start_vm', 'starting the VM');
    this.progress(cmd, 'wait_ip', 'waiting for the guest agent');
    this.progress(cmd, 'connection', 'creating the Guacamole connection', { ipAddress: facts.ipAddress });
    this.complete(cmd, { ...facts, node: 'pve1' });
  }

  /** A desktop of this site, seeded and brought up to RUNNING by a whole create. */
  async runningDesktop(userId: string, overrides: Partial<NewDesktopInput> = {}): Promise<Desktop> {
    const d = await seedDesktop(this.siteId, userId, overrides);
    await this.runCreate(await this.command(d.id, 'create'), { vmId: 31000, ipAddress: '10.30.0.1', connectionId: '31' });
    return vi.waitFor(
      async () => {
        const now = await (env as Bindings).DESKTOP_SESSION.getByName(d.id).get();
        expect(now?.status).toBe('RUNNING');
        return now as Desktop;
      },
      { timeout: 10_000, interval: 20 },
    );
  }

  /**
   * Hangs up and waits until the site's hub has let go of this link. The hub handles (and
   * logs) a close asynchronously; a test file that ended first would have its environment
   * torn down under that log line.
   */
  async close(): Promise<void> {
    this.ws.close(1000, 'test done');
    const hub = (env as Bindings).SITE_HUB.getByName(this.siteId);
    await vi.waitFor(async () => {
      const now = await hub.status();
      if (now.connected && now.connectedAt === this.connectedAt) throw new Error('the hub still holds this link');
    });
  }
}
