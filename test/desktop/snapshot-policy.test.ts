import { describe, expect, it } from 'vitest';
import { snapshotQuotaRefusal, snapshotRefusal, snapshotsToPrune } from '../../src/desktop/snapshot-policy';
import { SnapshotNameSchema, SnapshotRetentionSchema, timestampedSnapshotName } from '../../src/schemas/snapshot';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 5, 12);

describe('snapshot names', () => {
  it("accepts what Proxmox accepts and refuses the rest with Proxmox's rule in words", () => {
    for (const ok of ['before-upgrade', 'a1', `a${'b'.repeat(39)}`, 'Snap_2']) expect(SnapshotNameSchema.safeParse(ok).success).toBe(true);
    for (const bad of ['a', '1st', 'with space', 'dot.ted', `a${'b'.repeat(40)}`, 'current', 'Pending']) {
      expect(SnapshotNameSchema.safeParse(bad).success, bad).toBe(false);
    }
    expect(SnapshotNameSchema.safeParse('current').error?.issues[0]?.message).toBe(
      'current and pending are names Proxmox keeps for itself',
    );
  });

  it('makes timestamped names that are valid', () => {
    const name = timestampedSnapshotName('auto-', new Date(NOW));
    expect(name).toBe('auto-20261205-120000');
    expect(SnapshotNameSchema.safeParse(name).success).toBe(true);
  });
});

describe('snapshot policy', () => {
  it('refuses Selkies desktops and desktops that are not settled, with the reason', () => {
    expect(snapshotRefusal({ backend: 'selkies', status: 'RUNNING' })).toMatch(/Kubernetes pod whose home is a persistent volume claim/);
    expect(snapshotRefusal({ backend: 'proxmox', status: 'PROVISIONING' })).toBe(
      'The desktop is PROVISIONING; snapshots are taken and restored while it is RUNNING or STOPPED',
    );
    expect(snapshotRefusal({ backend: 'proxmox', status: 'STOPPED' })).toBeNull();
  });

  it('applies the per-user quota at the limit, not before', () => {
    expect(snapshotQuotaRefusal(4, 5)).toBeNull();
    expect(snapshotQuotaRefusal(5, 5)).toBe('You keep 5 snapshots, your limit is 5: delete one before taking another');
    expect(snapshotQuotaRefusal(500, null)).toBeNull();
  });

  it('prunes scheduled snapshots outside keep-last and keep-days, never hand-made ones', () => {
    const snaps = [
      { name: 'auto-1', takenAt: NOW - 10 * DAY },
      { name: 'auto-2', takenAt: NOW - 5 * DAY },
      { name: 'auto-3', takenAt: NOW - 2 * DAY },
      { name: 'auto-4', takenAt: NOW - DAY / 2 },
      { name: 'mine', takenAt: NOW - 100 * DAY },
    ];
    expect(snapshotsToPrune(snaps, { keepLast: 2 }, NOW).sort()).toEqual(['auto-1', 'auto-2']);
    expect(snapshotsToPrune(snaps, { keepDays: 3 }, NOW).sort()).toEqual(['auto-1', 'auto-2']);
    expect(snapshotsToPrune(snaps, { keepLast: 1, keepDays: 6 }, NOW)).toEqual(['auto-1']);
    expect(SnapshotRetentionSchema.safeParse({}).success).toBe(false);
  });
});
