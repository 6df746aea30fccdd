/**
 * The bridge's tasks against what real sites do (a guest's login, a destroy that finds the VM gone): a desktop is
 * RUNNING only once it greets on its port, a guest's reported address must lie in the site's guest networks, a second
 * destroy's "does not exist" means done, and template logins decide what the Guacamole connection carries.
 */
import { describe, expect, it } from 'vitest';
import { parseNetworks, refuseGuestAddress } from '../../on-prem-bridge/src/guest-address';
import { createDesktop } from '../../on-prem-bridge/src/tasks/create-desktop';
import { deleteDesktop } from '../../on-prem-bridge/src/tasks/delete-desktop';
import { desktopId, failureOf, makeDeps, makeInfra, makeSpec, recordingContext } from './support/harness';

describe('guest addresses', () => {
  it('takes only addresses inside PROXMOX_GUEST_NETWORKS, and never loopback or link-local without them', () => {
    const nets = parseNetworks('10.0.0.0/16, 192.168.5.0/24') ?? [];
    expect(refuseGuestAddress('10.0.80.1', nets)).toBeNull();
    expect(refuseGuestAddress('192.168.6.1', nets)).toBe('192.168.6.1 is outside PROXMOX_GUEST_NETWORKS (10.0.0.0/16, 192.168.5.0/24)');
    expect(refuseGuestAddress('127.0.0.1', [])).toBe('127.0.0.1 is a loopback address');
    expect(refuseGuestAddress('169.254.169.254', [])).toBe('169.254.169.254 is a link-local address');
    expect(refuseGuestAddress('10.9.9.9', [])).toBeNull();
    expect(parseNetworks('10.0.0.0/33')).toBeNull();
  });

  it('fails a create whose guest reports an address outside the guest networks, saying so, and removes what it made', async () => {
    const infra = makeInfra();
    const deps = makeDeps(infra, { guestNetworks: parseNetworks('192.168.0.0/16') ?? [], ipWaitSeconds: 0.05 });
    const failure = await failureOf(createDesktop(deps)(makeSpec(desktopId()), recordingContext().ctx));
    expect(failure.message).toMatch(
      /^VM 20000 reported 10\.0\.80\.1 is outside PROXMOX_GUEST_NETWORKS \(192\.168\.0\.0\/16\); Guacamole is not pointed at it/,
    );
    expect(infra.proxmox.desktopVms()).toEqual([]);
    expect(infra.guacamole.connections.size).toBe(0);
  });
});

describe('the desktop port', () => {
  it('is RUNNING only after the desktop greets; one that never does fails with the port and the last answer', async () => {
    const infra = makeInfra();
    let tries = 0;
    const deps = {
      ...makeDeps(infra, { desktopWaitSeconds: 0.2 }),
      probeDesktop: async () => (++tries < 3 ? { ready: false as const, reason: 'connection refused' } : { ready: true as const }),
    };
    const ctx = recordingContext();
    await createDesktop(deps)(makeSpec(desktopId(), { protocol: 'rdp' }), ctx.ctx);
    expect(tries).toBe(3);
    expect(ctx.progress.map((p) => p.message)).toContain('waiting for the desktop at 10.0.80.1 to answer on its RDP port 3389');

    const never = {
      ...makeDeps(makeInfra(), { desktopWaitSeconds: 0.05 }),
      probeDesktop: async () => ({ ready: false as const, reason: 'connection refused' }),
    };
    const failure = await failureOf(createDesktop(never)(makeSpec(desktopId()), recordingContext().ctx));
    expect(failure.message).toMatch(
      /^The desktop at 10\.0\.80\.1 did not answer on its VNC port 5900 within 50 ms \(last try: connection refused\); is the VNC server enabled in the template/,
    );
  });
});

describe('template logins', () => {
  it('gives a vnc-password template the baked-in VNC password and an rdp-nla one NLA, and refuses the wrong protocol', async () => {
    const infra = makeInfra();
    const vnc = makeDeps(infra, { defaultLogin: 'vnc-password', vncPassword: 'baked-in-pw' });
    const id = desktopId();
    await createDesktop(vnc)(makeSpec(id, { protocol: 'vnc' }), recordingContext().ctx);
    expect([...infra.guacamole.connections.values()][0]?.parameters).toEqual({
      hostname: '10.0.80.1',
      port: '5900',
      password: 'baked-in-pw',
    });

    const rdp = makeDeps(makeInfra(), { defaultLogin: 'rdp-nla' });
    const wrong = await failureOf(createDesktop(rdp)(makeSpec(desktopId(), { protocol: 'vnc' }), recordingContext().ctx));
    expect(wrong.message).toMatch(/^Template 9000 logs in with RDP and NLA \(rdp-nla\), so it cannot serve a VNC desktop/);
  });
});

describe('a second destroy', () => {
  it('counts Proxmox’s “does not exist” as done, not failed', async () => {
    const infra = makeInfra();
    const id = desktopId();
    await createDesktop(makeDeps(infra))(makeSpec(id), recordingContext().ctx);
    // Another destroy (a re-sent request, a concurrent delete) finished first; ours finds the config gone.
    infra.proxmox.failNextTask('qmdestroy', "Configuration file 'nodes/pve1/qemu-server/20000.conf' does not exist");
    await deleteDesktop(makeDeps(infra))(makeSpec(id), recordingContext().ctx);
    expect(infra.proxmox.callsOf('destroyVm')).toHaveLength(1);
    expect(infra.guacamole.connections.size).toBe(0);
  });
});
