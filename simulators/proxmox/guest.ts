/**
 * The simulated guest: what the QEMU guest agent answers while the guest boots and gets its address (qemu-server's
 * QemuServer/Agent.pm and API2/Qemu/Agent.pm).
 */
import type { FaultKind } from './faults';
import { die } from './http';
import type { ConfigValue, SimVm, VmConfig } from './state';

/** The `agent` property string: `[enabled=]<1|0>[,...]` (docs apidata `agent`). */
export function agentState(config: VmConfig): 'unconfigured' | 'disabled' | 'enabled' {
  if (config.agent === undefined) return 'unconfigured';
  const parts = String(config.agent).split(',');
  const enabled = parts.find((p) => !p.includes('=')) ?? parts.find((p) => p.startsWith('enabled='))?.slice('enabled='.length);
  return enabled !== undefined && /^(1|on|yes|true)$/i.test(enabled) ? 'enabled' : 'disabled';
}

export function macOf(net: ConfigValue | undefined): string | undefined {
  return /([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})/.exec(String(net ?? ''))?.[1];
}

/** qemu-server's QemuServer/Agent.pm assert_agent_available, in this order; then the injected time-out. */
export function assertAgentAnswers(vm: SimVm, now: number, fault: FaultKind | null, command: string): void {
  if (agentState(vm.config) === 'unconfigured') die('No QEMU guest agent configured');
  if (vm.status !== 'running') die(`VM ${vm.vmid} is not running`);
  if (agentState(vm.config) === 'disabled' || now < (vm.agentAt ?? 0)) die('QEMU guest agent is not running');
  if (fault === 'agent_timeout') die(`VM ${vm.vmid} qga command '${command}' failed - got timeout`);
}

function statistics(seed: number): Record<string, number> {
  return {
    'rx-bytes': 36_919 + seed,
    'rx-dropped': 0,
    'rx-errs': 0,
    'rx-packets': 338 + (seed % 97),
    'tx-bytes': 170_190 + seed,
    'tx-dropped': 0,
    'tx-errs': 0,
    'tx-packets': 453 + (seed % 89),
  };
}

/**
 * guest-network-get-interfaces as the agent reports it while DHCP runs, then once it is done (shaped like published `qm
 * guest cmd … network-get-interfaces` output).
 */
export function guestInterfaces(vm: SimVm, now: number): unknown[] {
  const mac = (macOf(vm.config.net0) ?? 'BC:24:11:00:00:01').toLowerCase();
  const [, , , b3 = '00', b4 = '00', b5 = '00'] = mac.split(':');
  const linkLocal = { 'ip-address': `fe80::be24:11ff:fe${b3}:${b4}${b5}`, 'ip-address-type': 'ipv6', prefix: 64 };
  const lo = {
    name: 'lo',
    'hardware-address': '00:00:00:00:00:00',
    'ip-addresses': [
      { 'ip-address': '127.0.0.1', 'ip-address-type': 'ipv4', prefix: 8 },
      { 'ip-address': '::1', 'ip-address-type': 'ipv6', prefix: 128 },
    ],
    statistics: statistics(0),
  };
  const ipAt = vm.ipAt ?? 0;
  const agentAt = vm.agentAt ?? 0;
  if (now < ipAt && now < agentAt + (ipAt - agentAt) / 2) {
    // Early after boot: the NIC is up but has no address list at all.
    return [lo, { name: 'ens18', 'hardware-address': mac, statistics: statistics(vm.vmid) }];
  }
  // A container bridge with its own MAC and a private IPv4: clients must match net0's MAC, not take the first IPv4.
  const docker = {
    name: 'docker0',
    'hardware-address': `02:42:ac:11:${b4}:${b5}`,
    'ip-addresses': [{ 'ip-address': '172.17.0.1', 'ip-address-type': 'ipv4', prefix: 16 }],
    statistics: statistics(1),
  };
  const addresses = now < ipAt ? [linkLocal] : [{ 'ip-address': vm.ipv4, 'ip-address-type': 'ipv4', prefix: 24 }, linkLocal];
  return [lo, { name: 'ens18', 'hardware-address': mac, 'ip-addresses': addresses, statistics: statistics(vm.vmid) }, docker];
}
