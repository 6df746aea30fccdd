/**
 * Does the desktop answer? A guest agent's address says the guest's network is up, not that
 * its VNC server or xrdp listens. Before a desktop is RUNNING the bridge opens a TCP
 * connection to its protocol port, from this host (which should sit where guacd does), and
 * reads the protocol's first bytes, so that an unrelated open port does not count:
 *   VNC: the server speaks first, `RFB 003.00x\n` (RFC 6143 §7.1.1).
 *   RDP: the client sends an X.224 Connection Request in a TPKT; the server answers a
 *   Connection Confirm (MS-RDPBCGR §2.2.1.1–2; code 0xD0).
 */
import { connect } from 'node:net';

export type DesktopProbe = { ready: true } | { ready: false; reason: string };

/** TPKT (len 19) + X.224 CR (LI 14, code 0xE0) + RDP_NEG_REQ asking for TLS or CredSSP (NLA). */
const X224_CONNECTION_REQUEST = Buffer.from([
  0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00,
]);

export function probeDesktop(host: string, port: number, protocol: 'vnc' | 'rdp', timeoutMs = 5000): Promise<DesktopProbe> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let received = Buffer.alloc(0);
    const done = (probe: DesktopProbe) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(probe);
    };
    const timer = setTimeout(() => done({ ready: false, reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
    socket.once('connect', () => {
      if (protocol === 'rdp') socket.write(X224_CONNECTION_REQUEST);
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (protocol === 'vnc') {
        if (received.length < 12) return;
        const text = received.subarray(0, 12).toString('latin1');
        done(
          /^RFB \d{3}\.\d{3}\n$/.test(text) ? { ready: true } : { ready: false, reason: 'the port answered, but not with a VNC greeting' },
        );
        return;
      }
      if (received.length < 6) return;
      const ok = received[0] === 0x03 && (received[5] ?? 0) >> 4 === 0x0d;
      done(ok ? { ready: true } : { ready: false, reason: 'the port answered, but not with an RDP connection confirm' });
    });
    socket.once('end', () => done({ ready: false, reason: 'the connection was closed before the desktop greeted' }));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done({ ready: false, reason: err.code === 'ECONNREFUSED' ? 'connection refused' : (err.code ?? err.message) }),
    );
  });
}
