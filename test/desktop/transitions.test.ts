import { describe, expect, it } from 'vitest';
import { DESKTOP_STATUSES, type DesktopStatus } from '../../src/schemas/desktop';
import { TRANSITIONS, USER_ACTIONS, allowedActions, nextStatus } from '../../src/desktop/transitions';

/** What a user may do in each status (PRD 3.3, 12.2 "User Action"): the whole matrix, spelled out. */
const EXPECTED: Record<DesktopStatus, Partial<Record<(typeof USER_ACTIONS)[number], DesktopStatus>>> = {
  PENDING: { delete: 'STOPPING' },
  PROVISIONING: { delete: 'STOPPING' },
  STARTING: { delete: 'STOPPING' },
  WAITING_FOR_IP: { delete: 'STOPPING' },
  CONFIGURING: { delete: 'STOPPING' },
  RUNNING: { stop: 'STOPPING', delete: 'STOPPING', restore: 'STARTING', rebuild: 'PROVISIONING' },
  STOPPING: { delete: 'STOPPING' },
  STOPPED: { start: 'STARTING', delete: 'STOPPING', restore: 'STARTING', rebuild: 'PROVISIONING' },
  FAILED: { delete: 'STOPPING', rebuild: 'PROVISIONING' },
  DELETED: {},
};

describe('transition table', () => {
  for (const status of DESKTOP_STATUSES) {
    for (const action of USER_ACTIONS) {
      const want = action === 'create' ? null : (EXPECTED[status][action] ?? null);
      it(`${action} from ${status} → ${want ?? 'refused'}`, () => {
        expect(nextStatus(status, action)).toBe(want);
      });
    }
  }

  it('create only starts a desktop that does not exist yet', () => {
    expect(nextStatus(null, 'create')).toBe('PENDING');
    expect(nextStatus(null, 'start')).toBeNull();
  });

  it('walks the PRD create progression step by step', () => {
    const path: DesktopStatus[] = ['PENDING'];
    for (const e of ['provisioning', 'vm_starting', 'waiting_for_ip', 'configuring', 'create_completed'] as const) {
      const next = nextStatus(path.at(-1) ?? null, e);
      expect(next, `${path.at(-1)} --${e}-->`).not.toBeNull();
      path.push(next as DesktopStatus);
    }
    expect(path).toEqual(['PENDING', 'PROVISIONING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING', 'RUNNING']);
  });

  it('brings a restored desktop back to RUNNING through the statuses of a start', () => {
    const path: DesktopStatus[] = ['RUNNING'];
    for (const e of ['restore', 'waiting_for_ip', 'configuring', 'restore_completed'] as const) {
      const next = nextStatus(path.at(-1) ?? null, e);
      expect(next, `${path.at(-1)} --${e}-->`).not.toBeNull();
      path.push(next as DesktopStatus);
    }
    expect(path).toEqual(['RUNNING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING', 'RUNNING']);
  });

  it('re-homes a claimed Selkies pool member through the statuses of a start, and only a running one', () => {
    const path: DesktopStatus[] = ['RUNNING'];
    for (const e of ['claimed_rehome', 'waiting_for_ip', 'configuring', 'start_completed'] as const) {
      const next = nextStatus(path.at(-1) ?? null, e);
      expect(next, `${path.at(-1)} --${e}-->`).not.toBeNull();
      path.push(next as DesktopStatus);
    }
    expect(path).toEqual(['RUNNING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING', 'RUNNING']);
    expect(TRANSITIONS.filter((r) => r.event === 'claimed_rehome').map((r) => r.from)).toEqual(['RUNNING']);
  });

  it('brings a rebuilt desktop back to RUNNING through the statuses of a create, from either settled status or FAILED', () => {
    for (const from of ['RUNNING', 'STOPPED', 'FAILED'] as const) {
      const path: DesktopStatus[] = [from];
      for (const e of ['rebuild', 'vm_starting', 'waiting_for_ip', 'configuring', 'rebuild_completed'] as const) {
        const next = nextStatus(path.at(-1) ?? null, e);
        expect(next, `${path.at(-1)} --${e}-->`).not.toBeNull();
        path.push(next as DesktopStatus);
      }
      expect(path).toEqual([from, 'PROVISIONING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING', 'RUNNING']);
    }
    // The clone step reports PROVISIONING again: no row, the status stays.
    expect(nextStatus('PROVISIONING', 'provisioning')).toBeNull();
  });

  it('never leaves DELETED', () => {
    expect(TRANSITIONS.filter((r) => r.from === 'DELETED')).toEqual([]);
  });

  it('fails every in-progress step on a watchdog, and nothing else', () => {
    const fromStatuses = TRANSITIONS.filter((r) => r.event === 'watchdog_expired').map((r) => r.from);
    expect(new Set(fromStatuses)).toEqual(new Set(['PENDING', 'PROVISIONING', 'STARTING', 'WAITING_FOR_IP', 'CONFIGURING', 'STOPPING']));
    expect(TRANSITIONS.filter((r) => r.event === 'watchdog_expired').every((r) => r.to === 'FAILED')).toBe(true);
  });

  it('has no duplicate (from, event) rows', () => {
    const keys = TRANSITIONS.map((r) => `${r.from}|${r.event}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('lists what is possible from a status', () => {
    expect(allowedActions('STOPPED')).toEqual(['start', 'delete', 'restore', 'rebuild']);
    expect(allowedActions('DELETED')).toEqual([]);
  });
});
