import { describe, expect, it } from 'vitest';
import { InfraError } from '../../on-prem-bridge/src/drivers/types';
import { CancelledError, TaskError, describeFailure } from '../../on-prem-bridge/src/errors';

describe('describeFailure', () => {
  it.each([
    [
      'Proxmox POST /nodes/pve1/qemu/9000/clone: 500 VM is locked (clone)',
      500,
      'Proxmox refused to clone template 9000: VM is locked (clone)',
    ],
    [
      "Proxmox task qmclone 9000 failed: clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local' - got timeout",
      500,
      "Proxmox refused to clone template 9000: clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local' - got timeout",
    ],
    [
      'Proxmox GET /nodes/pve1/tasks/UPID:pve1:0001A2B3:00C0FFEE:66A1B2C3:qmclone:9000:root@pam!dev:/status: 596 Connection timed out',
      596,
      'Proxmox refused to clone template 9000: Connection timed out',
    ],
    [
      'Proxmox: connect ECONNREFUSED 127.0.0.1:8006',
      0,
      'Proxmox could not be reached to clone template 9000: connect ECONNREFUSED 127.0.0.1:8006',
    ],
    ['VM 105 already running\n', 500, 'Proxmox refused to clone template 9000: VM 105 already running'],
  ])('reads the system’s own words from %j', (message, status, expected) => {
    expect(describeFailure(new InfraError(message, 'proxmox', status, false), 'clone template 9000')).toBe(expected);
  });

  it('reads Guacamole driver errors the same way', () => {
    const err = new InfraError(
      'guacamole POST /session/data/postgresql/connections → 400 BAD_REQUEST: The connection "x" already exists.',
      'guacamole',
      400,
      false,
    );
    expect(describeFailure(err, 'create the connection x')).toBe(
      'Guacamole refused to create the connection x: The connection "x" already exists.',
    );
    const auth = new InfraError('guacamole POST /tokens → 403 INVALID_CREDENTIALS: Invalid login.', 'guacamole', 403, false);
    expect(describeFailure(auth, 'log in')).toBe("Guacamole rejected the bridge's credentials while trying to log in: Invalid login.");
  });

  it('keeps messages that are already meant for people', () => {
    expect(describeFailure(new TaskError("The desktop's VM no longer exists"), 'start')).toBe("The desktop's VM no longer exists");
    expect(describeFailure(new CancelledError('user gave up'), 'start')).toBe('Cancelled: user gave up');
  });

  it('never passes on a stack trace or a second line', () => {
    const err = new Error('first line\n    at Object.<anonymous> (/x.ts:1:1)');
    expect(describeFailure(err, 'start VM 1')).toBe('Unexpected error while trying to start VM 1: first line');
  });
});
