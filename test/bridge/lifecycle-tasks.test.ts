import { describe, expect, it } from 'vitest';
import { guacamoleUserPassword } from '../../on-prem-bridge/src/desktop-identity';
import { InfraError } from '../../on-prem-bridge/src/drivers/types';
import { silentLogger } from '../../on-prem-bridge/src/logger';
import { createDesktop } from '../../on-prem-bridge/src/tasks/create-desktop';
import { deleteDesktop } from '../../on-prem-bridge/src/tasks/delete-desktop';
import { openSession } from '../../on-prem-bridge/src/tasks/open-session';
import { startDesktop } from '../../on-prem-bridge/src/tasks/start-desktop';
import { stopDesktop } from '../../on-prem-bridge/src/tasks/stop-desktop';
import { crashable } from './support/crashable';
import {
  BRIDGE_SECRET,
  type Infra,
  desktopId,
  makeDeps,
  makeInfra,
  makeSpec,
  recordingContext,
  stepsOf,
  until,
  failureOf,
} from './support/harness';
import { setTimeout as sleep } from 'node:timers/promises';

async function createdDesktop(infra: Infra) {
  const id = desktopId();
  const facts = await createDesktop(makeDeps(infra))(makeSpec(id), recordingContext().ctx);
  return { id, facts };
}

describe('start-desktop', () => {
  it('starts the VM and re-points the connection at its new address', async () => {
    const infra = makeInfra();
    const { id, facts } = await createdDesktop(infra);
    const vm = infra.proxmox.vms.get(facts.vmId ?? 0)!;
    vm.status = 'stopped';
    // The guest comes back with another address (DHCP).
    infra.guacamole.connections.get(facts.connectionId ?? '')!.parameters.hostname = '10.9.9.9';
    const { ctx, progress } = recordingContext();

    const started = await startDesktop(makeDeps(infra))(makeSpec(id), ctx);

    expect(stepsOf(progress)).toEqual(['start_vm', 'wait_ip', 'connection']);
    expect(started).toEqual(facts);
    expect(vm.status).toBe('running');
    expect(infra.guacamole.connections.get(facts.connectionId ?? '')?.parameters.hostname).toBe(facts.ipAddress);
    expect(infra.guacamole.connections.size).toBe(1);
  });

  it('recreates a connection an operator removed', async () => {
    const infra = makeInfra();
    const { id } = await createdDesktop(infra);
    infra.guacamole.connections.clear();
    infra.guacamole.users.clear();

    const facts = await startDesktop(makeDeps(infra))(makeSpec(id), recordingContext().ctx);

    expect(infra.guacamole.connections.get(facts.connectionId ?? '')?.name).toBe(`desk-${id}`);
    expect(infra.guacamole.users.get(`desk-${id}`)?.read.has(facts.connectionId ?? '')).toBe(true);
  });

  it('fails plainly when the VM is gone', async () => {
    const infra = makeInfra();
    const failure = await failureOf(startDesktop(makeDeps(infra))(makeSpec(desktopId()), recordingContext().ctx));
    expect(failure.message).toBe("The desktop's VM no longer exists");
  });
});

describe('stop-desktop', () => {
  it('shuts the guest down gracefully', async () => {
    const infra = makeInfra();
    const { id, facts } = await createdDesktop(infra);
    const { ctx, progress } = recordingContext();

    expect(await stopDesktop(makeDeps(infra))(makeSpec(id), ctx)).toEqual({ vmId: facts.vmId, node: 'pve1' });

    expect(infra.proxmox.vms.get(facts.vmId ?? 0)?.status).toBe('stopped');
    expect(infra.proxmox.callsOf('shutdownVm')).toEqual([['pve1', facts.vmId, 1]]);
    expect(infra.proxmox.callsOf('stopVm')).toEqual([]);
    expect(stepsOf(progress)).toEqual(['shutdown']);
  });

  it('forces a stop when the guest ignores the shutdown request', async () => {
    const infra = makeInfra();
    const { id, facts } = await createdDesktop(infra);
    infra.proxmox.vms.get(facts.vmId ?? 0)!.acpi = false;
    const { ctx, progress } = recordingContext();

    await stopDesktop(makeDeps(infra))(makeSpec(id), ctx);

    expect(infra.proxmox.vms.get(facts.vmId ?? 0)?.status).toBe('stopped');
    expect(infra.proxmox.callsOf('stopVm')).toHaveLength(1);
    expect(progress.at(-1)?.message).toMatch(/VM quit\/powerdown failed - got timeout\); forcing a stop$/);
  });

  it('asks again, rather than pulling the plug, when the shutdown task was refused on a lock', async () => {
    const infra = makeInfra();
    const { id, facts } = await createdDesktop(infra);
    infra.proxmox.failNextTask('qmshutdown', `can't lock file '/var/lock/qemu-server/lock-${facts.vmId}.conf' - got timeout`);

    await stopDesktop(makeDeps(infra))(makeSpec(id), recordingContext().ctx);

    expect(infra.proxmox.vms.get(facts.vmId ?? 0)?.status).toBe('stopped');
    expect(infra.proxmox.callsOf('shutdownVm')).toHaveLength(2);
    expect(infra.proxmox.callsOf('stopVm')).toEqual([]);
  });

  it('completes with nothing to do when the VM is gone or already stopped', async () => {
    const infra = makeInfra();
    expect(await stopDesktop(makeDeps(infra))(makeSpec(desktopId()), recordingContext().ctx)).toEqual({});

    const { id, facts } = await createdDesktop(infra);
    infra.proxmox.vms.get(facts.vmId ?? 0)!.status = 'stopped';
    await stopDesktop(makeDeps(infra))(makeSpec(id), recordingContext().ctx);
    expect(infra.proxmox.callsOf('shutdownVm')).toEqual([]);
  });
});

describe('delete-desktop', () => {
  it('stops and destroys the VM and removes the connection and user', async () => {
    const infra = makeInfra();
    const { id } = await createdDesktop(infra);
    const { ctx, progress } = recordingContext();

    expect(await deleteDesktop(makeDeps(infra))(makeSpec(id), ctx)).toEqual({});

    expect(infra.proxmox.desktopVms()).toEqual([]);
    expect(infra.guacamole.connections.size).toBe(0);
    expect(infra.guacamole.users.size).toBe(0);
    expect(stepsOf(progress)).toEqual(['shutdown', 'destroy']);
  });

  it('succeeds again when everything is already gone', async () => {
    const infra = makeInfra();
    const { id } = await createdDesktop(infra);
    await deleteDesktop(makeDeps(infra))(makeSpec(id), recordingContext().ctx);
    await deleteDesktop(makeDeps(infra))(makeSpec(id), recordingContext().ctx);
    expect(infra.proxmox.callsOf('destroyVm')).toHaveLength(1);
  });

  it('waits for a clone in progress before destroying', async () => {
    const infra = makeInfra();
    const id = desktopId();
    infra.proxmox.holdClones = true;
    // A create started the clone, then its bridge died.
    const dead = crashable(infra.proxmox);
    void createDesktop(makeDeps({ ...infra, proxmox: dead.driver }))(makeSpec(id), recordingContext().ctx);
    await until(() => infra.proxmox.desktopVms().length === 1);
    dead.crash();

    const deleting = deleteDesktop(makeDeps(infra))(makeSpec(id), recordingContext().ctx);
    await sleep(10);
    expect(infra.proxmox.callsOf('destroyVm')).toEqual([]);
    infra.proxmox.releaseClones();
    await deleting;
    expect(infra.proxmox.desktopVms()).toEqual([]);
  });

  it('reports a protected VM in words', async () => {
    const infra = makeInfra();
    const { id } = await createdDesktop(infra);
    infra.proxmox.failNext('destroyVm', new InfraError("can't remove VM 20000 - protection mode enabled\n", 'proxmox', 500, false));
    const failure = await failureOf(deleteDesktop(makeDeps(infra))(makeSpec(id), recordingContext().ctx));
    expect(failure.message).toBe(`Proxmox refused to destroy VM 20000: can't remove VM 20000 - protection mode enabled`);
  });
});

describe('open-session', () => {
  it("answers a client URL logged in as the desktop's own user", async () => {
    const infra = makeInfra();
    const { id, facts } = await createdDesktop(infra);
    infra.guacamole.users.clear();

    const result = await openSession(
      makeDeps(infra),
      { op: 'open_session', desktopId: id, connectionId: facts.connectionId ?? '' },
      new AbortController().signal,
      silentLogger,
    );

    const clientId = Buffer.from(`${facts.connectionId}\0c\0postgresql`).toString('base64url');
    expect(result).toEqual({
      ok: true,
      url: `https://desk.example.test/guacamole/#/client/${clientId}?token=TOKEN-DESK-${id.toUpperCase()}`,
    });
    expect(infra.guacamole.users.get(`desk-${id}`)?.password).toBe(guacamoleUserPassword(BRIDGE_SECRET, id));
    expect([...(infra.guacamole.users.get(`desk-${id}`)?.read ?? [])]).toEqual([facts.connectionId]);
  });

  it("refuses a connection that is not the desktop's own", async () => {
    const infra = makeInfra();
    const a = await createdDesktop(infra);
    const b = await createdDesktop(infra);
    const result = await openSession(
      makeDeps(infra),
      { op: 'open_session', desktopId: a.id, connectionId: b.facts.connectionId ?? '' },
      new AbortController().signal,
      silentLogger,
    );
    expect(result).toEqual({ ok: false, error: `connection ${b.facts.connectionId} does not belong to desktop ${a.id}` });
    expect(infra.guacamole.users.get(`desk-${a.id}`)?.read.has(b.facts.connectionId ?? '')).toBe(false);
  });

  it('answers a short error when Guacamole fails', async () => {
    const infra = makeInfra();
    const { id, facts } = await createdDesktop(infra);
    infra.guacamole.failNext('loginAs', new InfraError('Invalid login.', 'guacamole', 403, false));
    const result = await openSession(
      makeDeps(infra),
      { op: 'open_session', desktopId: id, connectionId: facts.connectionId ?? '' },
      new AbortController().signal,
      silentLogger,
    );
    expect(result).toEqual({
      ok: false,
      error: `Guacamole rejected the bridge's credentials while trying to log in to Guacamole as desk-${id}: Invalid login.`,
    });
  });
});
