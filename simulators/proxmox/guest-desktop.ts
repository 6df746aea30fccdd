/**
 * The desktop service inside a simulated guest: a real TCP listener on the guest's address that opens some seconds
 * after the guest agent reported that address (a VNC server or xrdp starts after the network), speaking the first bytes
 * of its protocol so a client can tell a desktop from any open port:
 *   VNC (RFB, RFC 6143 §7.1.1): the server sends `RFB 003.008\n` at once.
 *   RDP (MS-RDPBCGR §2.2.1.2): the client sends an X.224 Connection Request in a TPKT; the
 *   server answers an X.224 Connection Confirm with an RDP Negotiation Response.
 * Guest addresses are loopback addresses (127.x.y.z, all routed to lo on Linux), so the
 * bridge and Guacamole on this machine really reach them; a guest on any other prefix
 * serves nothing reachable, which is what the unit tests want.
 */
import { createServer, type Server, type Socket } from 'node:net';

export type DesktopProtocol = 'vnc' | 'rdp';
export const DESKTOP_PORTS: Record<DesktopProtocol, number> = { vnc: 5900, rdp: 3389 };

export const RFB_GREETING = 'RFB 003.008\n';
/** TPKT + X.224 CC (LI 14, CC 0xD0, src-ref 0x1234) + RDP_NEG_RSP selecting PROTOCOL_HYBRID (NLA). */
export const X224_CONNECTION_CONFIRM = Buffer.from([
  0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x00, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00,
]);

const RETRY_BIND_MS = 1000;

function serve(protocol: DesktopProtocol, socket: Socket): void {
  socket.on('error', () => socket.destroy());
  socket.setTimeout(30_000, () => socket.destroy());
  if (protocol === 'vnc') {
    socket.write(RFB_GREETING);
    // The client's version and security handshake are not simulated: a viewer waits here.
    socket.on('data', () => {});
    return;
  }
  socket.once('data', (chunk: Buffer) => {
    // A TPKT (version 3) carrying an X.224 Connection Request (code 0xE0).
    if (chunk[0] === 0x03 && (chunk[5] ?? 0) >> 4 === 0x0e) socket.write(X224_CONNECTION_CONFIRM);
    else socket.destroy();
  });
}

export function isLoopbackIpv4(ip: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ip);
}

/** One listener per (VM, protocol), opened at a given time and closed when the guest stops. */
export class GuestDesktops {
  private readonly servers = new Map<number, Server[]>();
  private readonly timers = new Map<number, NodeJS.Timeout[]>();

  /** From `atMs` (epoch, real clock) on, the guest answers on each protocol's port. */
  openAt(vmid: number, ip: string, protocols: DesktopProtocol[], atMs: number): void {
    this.close(vmid);
    if (!isLoopbackIpv4(ip)) return;
    const timers: NodeJS.Timeout[] = [];
    this.timers.set(vmid, timers);
    const listen = (protocol: DesktopProtocol) => {
      const server = createServer((socket) => serve(protocol, socket));
      server.on('error', () => {
        // Another simulator's guest holds this address and port, or the OS has no such loopback address yet:
        // the service comes up later, as a slow desktop would.
        const retry = setTimeout(() => {
          if (this.timers.get(vmid) === timers) server.listen(DESKTOP_PORTS[protocol], ip);
        }, RETRY_BIND_MS);
        retry.unref();
        timers.push(retry);
      });
      server.listen(DESKTOP_PORTS[protocol], ip);
      this.servers.set(vmid, [...(this.servers.get(vmid) ?? []), server]);
    };
    const start = () => {
      for (const protocol of protocols) listen(protocol);
    };
    const delay = Math.max(0, atMs - Date.now());
    if (delay === 0) start();
    else {
      const timer = setTimeout(start, delay);
      timer.unref();
      timers.push(timer);
    }
  }

  close(vmid: number): void {
    for (const timer of this.timers.get(vmid) ?? []) clearTimeout(timer);
    this.timers.delete(vmid);
    for (const server of this.servers.get(vmid) ?? []) server.close();
    this.servers.delete(vmid);
  }

  closeAll(): void {
    for (const vmid of [...this.servers.keys(), ...this.timers.keys()]) this.close(vmid);
  }

  listening(vmid: number): boolean {
    return (this.servers.get(vmid) ?? []).some((s) => s.listening);
  }
}
