import { describe, expect, it } from 'vitest';
import { InfraError } from '../../on-prem-bridge/src/drivers/types';
import { TaskError } from '../../on-prem-bridge/src/errors';
import { pollInterval } from '../../on-prem-bridge/src/sleep';
import { toolsFor } from '../../on-prem-bridge/src/tasks/tools';
import { failureOf, makeDeps, makeInfra, memoryLogger } from './support/harness';

const agentTimeout = () => new InfraError("VM 20000 qga command 'guest-network-get-interfaces' failed - got timeout", 'proxmox', 500, true);

describe('pollUntil', () => {
  const tools = () => toolsFor(makeDeps(makeInfra()), new AbortController().signal, memoryLogger());

  it('keeps polling through transient errors until the value shows up', async () => {
    let probes = 0;
    const value = await tools().pollUntil(
      'read the IP address of VM 20000',
      async () => {
        probes++;
        if (probes % 2 === 1) throw agentTimeout();
        return probes >= 6 ? '10.0.0.1' : null;
      },
      2_000,
      'no address',
    );
    expect(value).toBe('10.0.0.1');
  });

  it('times out with its own message, and the last transient error, when the errors last to the deadline', async () => {
    const error = await failureOf(
      tools().pollUntil(
        'read the IP address of VM 20000 from its guest agent',
        async () => {
          throw agentTimeout();
        },
        50,
        'VM 20000 reported no IP address within 50 ms',
      ),
    );
    expect(error).toBeInstanceOf(TaskError);
    expect(error.message).toBe(
      "VM 20000 reported no IP address within 50 ms (the last try failed: Proxmox refused to read the IP address of VM 20000 from its guest agent: VM 20000 qga command 'guest-network-get-interfaces' failed - got timeout)",
    );
  });

  it('fails at once on a permanent error, in its own words', async () => {
    let probes = 0;
    const error = await failureOf(
      tools().pollUntil(
        'read the IP address of VM 20000',
        async () => {
          probes++;
          throw new InfraError('No QEMU guest agent configured', 'proxmox', 500, false);
        },
        5_000,
        'no address',
      ),
    );
    expect(probes).toBe(1);
    expect(error.message).toBe('Proxmox refused to read the IP address of VM 20000: No QEMU guest agent configured');
  });
});

describe('pollInterval', () => {
  it('starts at 100 ms and doubles up to the configured interval', () => {
    expect([0, 1, 2, 3, 4, 5, 30].map((n) => pollInterval(n, 2_000))).toEqual([100, 200, 400, 800, 1_600, 2_000, 2_000]);
    expect(pollInterval(0, 1)).toBe(1);
  });
});
