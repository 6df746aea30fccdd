/**
 * How a desktop's login is set, per its template (PROXMOX_TEMPLATE_LOGIN, PROXMOX_TEMPLATES name=vmid:login), and what
 * the Guacamole connection must carry for it (Proxmox sets no VNC password, and cloud-init's `cipassword` sets only the
 * account's):
 *   cloud-init    the template has a cloud-init drive; Proxmox's `ciuser`/`cipassword` set the account, and the
 *                 desktop's VNC server (e.g. TigerVNC with the system's logins) or xrdp authenticates it: the
 *                 connection carries that username and password.
 *   vnc-password  the template's VNC server has a fixed password (DESKTOP_VNC_PASSWORD); the connection carries it.
 *                 VNC authentication reads only its first 8 characters.
 *   rdp-nla       RDP with Network Level Authentication (Windows, or xrdp with CredSSP); the cloud-init (or
 *                 cloudbase-init) account logs in, and guacd is told to use NLA.
 */
import type { DesktopSpec } from '../../../src/schemas/bridge-protocol';
import type { DesktopLogin } from '../config';
import { DESKTOP_USER, desktopPassword } from '../desktop-identity';
import { TaskError } from '../errors';
import type { TaskSettings } from './context';

export const DESKTOP_PORTS = { vnc: 5900, rdp: 3389 } as const;

export function loginOf(settings: TaskSettings, templateVmid: number): DesktopLogin {
  return settings.logins[templateVmid] ?? settings.defaultLogin;
}

/** Throws when the template's login cannot serve the protocol the desktop asks for. */
export function checkLoginFits(login: DesktopLogin, protocol: DesktopSpec['protocol'], templateVmid: number): void {
  if (login === 'vnc-password' && protocol !== 'vnc')
    throw new TaskError(
      `Template ${templateVmid} sets only a VNC password (vnc-password), so it cannot serve an ${protocol.toUpperCase()} desktop`,
    );
  if (login === 'rdp-nla' && protocol !== 'rdp')
    throw new TaskError(
      `Template ${templateVmid} logs in with RDP and NLA (rdp-nla), so it cannot serve a ${protocol.toUpperCase()} desktop`,
    );
}

/** Guacamole parameter values are all strings (APIConnection.java); VNC has no default port in guacd (src/protocols/vnc/settings.c). */
export function connectionParameters(
  spec: Pick<DesktopSpec, 'desktopId' | 'protocol'>,
  ip: string,
  settings: Pick<TaskSettings, 'bridgeSecret' | 'vncPassword'>,
  login: DesktopLogin,
): Record<string, string> {
  const password = desktopPassword(settings.bridgeSecret, spec.desktopId);
  if (spec.protocol === 'rdp') {
    // Desktop VMs present self-signed certificates; `any` lets guacd negotiate NLA, TLS or RDP security
    // (src/protocols/rdp/settings.c).
    return {
      hostname: ip,
      port: String(DESKTOP_PORTS.rdp),
      username: DESKTOP_USER,
      password,
      security: login === 'rdp-nla' ? 'nla' : 'any',
      'ignore-cert': 'true',
    };
  }
  if (login === 'vnc-password') return { hostname: ip, port: String(DESKTOP_PORTS.vnc), password: settings.vncPassword ?? '' };
  return { hostname: ip, port: String(DESKTOP_PORTS.vnc), username: DESKTOP_USER, password };
}
