import { describe, expect, it } from 'vitest';
import { desktopPassword, guacamoleUserPassword } from '../../on-prem-bridge/src/desktop-identity';
import { InfraError } from '../../on-prem-bridge/src/drivers/types';
import { CancelledError } from '../../on-prem-bridge/src/errors';
import { createDesktop } from '../../on-prem-bridge/src/tasks/create-desktop';
import { crashable } from './support/crashable';
import { BRIDGE_SECRET, desktopId, makeDeps, makeInfra, makeSpec, recordingContext, stepsOf, until, failureOf } from './support/harness';

describe('create-desktop', () => {
  it('reports every step in order and completes with the facts', async () => {
    const infra = makeInfra();
    const id = desktopId();
    const { ctx, progress } = recordingContext();

    const facts = await createDesktop(makeDeps(infra))(makeSpec(id), ctx);

    expect(stepsOf(progress)).toEqual(['allocate', 'clone', 'configure_vm', 'start_vm', 'wait_ip', 'connection']);
    expect(facts).toEqual({ vmId: 20000, node: 'pve1', ipAddress: '10.0.80.1', connectionId: '1' });
    // Facts travel as soon as they are known.
    expect(progress[0]?.facts).toEqual({ vmId: 20000, node: 'pve1' });
    expect(progress.find((p) => p.facts?.ipAddress)?.step).toBe('wait_ip');
    expect(progress.at(-1)?.facts?.connectionId).toBe('1');
  });

  it('builds the VM and the connection as specified', async () => {
    const infra = makeInfra();
    const id = desktopId();
    await createDesktop(makeDeps(infra))(
      makeSpec(id, { cpuCores: 8, memoryMb: 8192, plan: 'PREMIUM', protocol: 'rdp' }),
      recordingContext().ctx,
    );

    const [vm] = infra.proxmox.desktopVms();
    expect(vm).toMatchObject({ name: `desk-${id}`, status: 'running' });
    expect(vm?.config).toMatchObject({
      cores: 8,
      memory: 8192,
      tags: `cdaas;desk-${id};cdaas-site-test;cdaas-dep-dep0test`,
      agent: 1,
      ciuser: 'desktop',
      cipassword: desktopPassword(BRIDGE_SECRET, id),
    });
    expect(String(vm?.config.description)).toContain(id);
    expect(String(vm?.config.description)).toContain('user-1');
    // Linked clone from a template.
    expect(infra.proxmox.callsOf('cloneVm')[0]?.[0]).toMatchObject({ templateVmid: 9000, newid: 20000, full: false });

    const [connection] = infra.guacamole.connections.values();
    expect(connection).toMatchObject({
      name: `desk-${id}`,
      protocol: 'rdp',
      parameters: {
        hostname: '10.0.80.1',
        port: '3389',
        username: 'desktop',
        password: desktopPassword(BRIDGE_SECRET, id),
        security: 'any',
        'ignore-cert': 'true',
      },
    });
    const user = infra.guacamole.users.get(`desk-${id}`);
    expect(user?.password).toBe(guacamoleUserPassword(BRIDGE_SECRET, id));
    expect([...(user?.read ?? [])]).toEqual([connection?.identifier]);
  });

  it('gives VNC desktops port 5900 and the derived password', async () => {
    const infra = makeInfra();
    const id = desktopId();
    await createDesktop(makeDeps(infra))(makeSpec(id, { protocol: 'vnc' }), recordingContext().ctx);
    // cloud-init login (the default): the VNC server authenticates the guest account cloud-init set.
    expect([...infra.guacamole.connections.values()][0]?.parameters).toEqual({
      hostname: '10.0.80.1',
      port: '5900',
      username: 'desktop',
      password: desktopPassword(BRIDGE_SECRET, id),
    });
  });

  it('makes a full clone when linked clones are turned off', async () => {
    const infra = makeInfra();
    await createDesktop(makeDeps(infra, { linkedClone: false }))(makeSpec(desktopId()), recordingContext().ctx);
    expect(infra.proxmox.callsOf('cloneVm')[0]?.[0]).toMatchObject({ full: true });
  });

  it('run twice, makes one VM and one connection and reports the same facts', async () => {
    const infra = makeInfra();
    const id = desktopId();
    const task = createDesktop(makeDeps(infra));
    const first = await task(makeSpec(id), recordingContext().ctx);
    const again = recordingContext();
    const second = await task(makeSpec(id), again.ctx);

    expect(second).toEqual(first);
    expect(infra.proxmox.desktopVms()).toHaveLength(1);
    expect(infra.guacamole.connections.size).toBe(1);
    expect(infra.proxmox.callsOf('cloneVm')).toHaveLength(1);
    // The re-run still reports every step, found done.
    expect(stepsOf(again.progress)).toEqual(['allocate', 'clone', 'configure_vm', 'start_vm', 'wait_ip', 'connection']);
    expect(again.progress[0]?.message).toMatch(/found VM 20000/);
  });

  it('after a crash mid-clone, finds the unnamed clone by the VMID it recorded first, waits for it and does not clone again', async () => {
    const infra = makeInfra();
    const id = desktopId();
    infra.proxmox.holdClones = true;
    // A first run starts the clone, then its process dies. Until the copy ends the VM has no name.
    const dead = crashable(infra.proxmox);
    void createDesktop(makeDeps({ ...infra, proxmox: dead.driver }))(makeSpec(id), recordingContext().ctx);
    await until(() => infra.proxmox.desktopVms().length === 1);
    dead.crash();
    expect(infra.proxmox.desktopVms()[0]?.name).toBe('');

    const second = recordingContext();
    const running = createDesktop(makeDeps(infra))(makeSpec(id), second.ctx);
    await until(() => second.progress.length > 1);
    infra.proxmox.releaseClones();
    await running;

    expect(second.progress.slice(0, 2).map((p) => p.message)).toEqual([
      `found VM 20000 (desk-${id}) on pve1 from an earlier run`,
      'VM 20000 is still being cloned; waiting for the clone to finish',
    ]);
    expect(infra.proxmox.callsOf('cloneVm')).toHaveLength(1);
    expect(infra.proxmox.desktopVms()).toHaveLength(1);
  });

  it('lists no VMs for a fresh create: the ledger says no clone was started for it', async () => {
    const infra = makeInfra();
    await createDesktop(makeDeps(infra))(makeSpec(desktopId()), recordingContext().ctx);
    const second = desktopId();
    const before = infra.proxmox.callsOf('listVms').length;
    await createDesktop(makeDeps(infra))(makeSpec(second), recordingContext().ctx);
    // The template is remembered and VMIDs are handed out upwards from the last one: a create touches its own VM only.
    expect(infra.proxmox.callsOf('listVms').length - before).toBe(0);
    expect(infra.proxmox.desktopVms()).toHaveLength(2);
  });

  it('does not wait for clones it is making itself', async () => {
    const infra = makeInfra();
    infra.proxmox.holdClones = true;
    const deps = makeDeps(infra);
    const task = createDesktop(deps);
    const first = task(makeSpec(desktopId()), recordingContext().ctx);
    await until(() => infra.proxmox.desktopVms().length === 1);
    // A second desktop of the same process goes straight to its own clone.
    const second = task(makeSpec(desktopId()), recordingContext().ctx);
    await until(() => infra.proxmox.desktopVms().length === 2);
    infra.proxmox.releaseClones();
    await Promise.all([first, second]);
    expect(infra.proxmox.desktopVms().map((vm) => vm.vmid)).toEqual([20000, 20001]);
  });

  it('retries a transient error and succeeds', async () => {
    const infra = makeInfra();
    infra.proxmox.failNext(
      'configureVm',
      new InfraError("can't lock file '/var/lock/qemu-server/lock-20000.conf' - got timeout", 'proxmox', 500, true),
      3,
    );
    const { ctx, logs } = recordingContext();
    await createDesktop(makeDeps(infra))(makeSpec(desktopId()), ctx);

    expect(infra.proxmox.callsOf('configureVm')).toHaveLength(4);
    expect(logs.filter((l) => l.msg === 'retrying after a transient error')).toHaveLength(3);
  });

  it('fails at once on a permanent error, with a readable message, and removes what it built', async () => {
    const infra = makeInfra();
    infra.proxmox.failNextTask('qmstart', "PCI device '0000:01:00.0' already in use by VMID '101'");
    const id = desktopId();
    const { ctx, progress } = recordingContext();

    const failure = await failureOf(createDesktop(makeDeps(infra))(makeSpec(id), ctx));

    expect(failure.message).toBe(
      "Proxmox refused to start VM 20000: PCI device '0000:01:00.0' already in use by VMID '101'; everything it had created was removed",
    );
    expect(infra.proxmox.callsOf('startVm')).toHaveLength(1);
    expect(infra.proxmox.desktopVms()).toEqual([]);
    expect(infra.guacamole.connections.size).toBe(0);
    expect(progress.at(-1)?.step).toBe('destroy');
  });

  it('gives up on a transient error at the step deadline', async () => {
    const infra = makeInfra();
    infra.proxmox.failNext('startVm', new InfraError('proxy timeout', 'proxmox', 596, true), 10_000);
    const deps = makeDeps(infra);
    const failure = await failureOf(
      createDesktop({ ...deps, timing: { ...deps.timing, powerTimeoutMs: 30 } })(makeSpec(desktopId()), recordingContext().ctx),
    );
    expect(failure.message).toMatch(
      /^Proxmox refused to start VM 20000: proxy timeout \(still failing after \d+ ms\); everything it had created was removed$/,
    );
    expect(infra.proxmox.desktopVms()).toEqual([]);
  });

  it('cleans up a guest that never reports an address', async () => {
    const infra = makeInfra();
    infra.proxmox.ipPolls = Number.POSITIVE_INFINITY;
    const failure = await failureOf(createDesktop(makeDeps(infra, { ipWaitSeconds: 0.05 }))(makeSpec(desktopId()), recordingContext().ctx));
    expect(failure.message).toMatch(/^VM 20000 reported no IP address within 50 ms; is qemu-guest-agent installed/);
    expect(infra.proxmox.desktopVms()).toEqual([]);
  });

  it('when cancelled during the clone, waits for the clone and leaves nothing behind', async () => {
    const infra = makeInfra();
    infra.proxmox.holdClones = true;
    const controller = new AbortController();
    const { ctx } = recordingContext(controller.signal);
    const running = failureOf(createDesktop(makeDeps(infra))(makeSpec(desktopId()), ctx));
    await until(() => infra.proxmox.desktopVms().length === 1);

    controller.abort(new CancelledError('the user deleted the desktop'));
    // Proxmox will not destroy a VM while it is being cloned: the clean-up waits for the lock.
    setTimeout(() => infra.proxmox.releaseClones(), 20);
    const failure = await running;

    expect(failure.message).toBe('Cancelled: the user deleted the desktop; everything it had created was removed');
    expect(infra.proxmox.desktopVms()).toEqual([]);
    expect(infra.guacamole.connections.size).toBe(0);
  });

  it('picks another VMID when someone else took the allocated one', async () => {
    const infra = makeInfra();
    const id = desktopId();
    // Another tool creates VM 20000 between our allocation and our clone.
    const original = infra.proxmox.allocateVmid.bind(infra.proxmox);
    let first = true;
    infra.proxmox.allocateVmid = async (range) => {
      const vmid = await original(range);
      if (first) {
        first = false;
        infra.proxmox.vms.set(vmid, {
          vmid,
          node: 'pve1',
          name: 'someone-else',
          status: 'stopped',
          template: false,
          config: {},
          acpi: true,
          ipPollsLeft: 0,
        });
      }
      return vmid;
    };
    const facts = await createDesktop(makeDeps(infra))(makeSpec(id), recordingContext().ctx);

    expect(facts.vmId).toBe(20001);
    expect(infra.proxmox.vms.get(20000)?.name).toBe('someone-else');
    expect(infra.proxmox.vms.get(20001)?.name).toBe(`desk-${id}`);
  });

  it('refuses an unknown template by name', async () => {
    const infra = makeInfra();
    const failure = await failureOf(createDesktop(makeDeps(infra))(makeSpec(desktopId(), { template: 'windows' }), recordingContext().ctx));
    expect(failure.message).toMatch(/^Unknown template "windows"; this site offers ubuntu;/);
    expect(infra.proxmox.callsOf('allocateVmid')).toEqual([]);
  });
});
