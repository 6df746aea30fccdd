import { describe, expect, it } from 'vitest';
import { isOutdated, memberBuild, memberToClaim, type PoolMember, planReplenish } from '../../src/desktop/pool-plan';
import { TemplateInputSchema, type Template } from '../../src/schemas/template';

const m = (desktopId: string, tier: PoolMember['tier'], phase: PoolMember['phase'], since = 0): PoolMember => ({
  desktopId,
  tier,
  phase,
  since,
});
const target = (running: number, stopped: number) => ({ running, stopped, reasons: [] });
const nothing = { create: { running: 0, stopped: 0 }, start: [], stop: [], destroy: [], deferred: 0 };

describe('claiming a pool member', () => {
  it('hands out the longest-ready running member, then a stopped one, and never one that is not ready', () => {
    const members = [m('r-new', 'running', 'ready', 20), m('r-old', 'running', 'ready', 10), m('s-old', 'stopped', 'ready', 1)];
    expect(memberToClaim(members)?.desktopId).toBe('r-old');
    expect(memberToClaim([m('s1', 'stopped', 'ready', 5), m('r1', 'running', 'building', 1)])?.desktopId).toBe('s1');
    expect(memberToClaim([m('r1', 'running', 'building'), m('r2', 'running', 'failed'), m('s1', 'stopped', 'moving')])).toBeNull();
  });
});

describe('members made from an earlier version of their template', () => {
  const template = (input: object): Template => ({
    ...TemplateInputSchema.parse({ name: 'Ubuntu', os: 'Ubuntu 24.04', backend: 'proxmox', protocol: 'vnc', ...input }),
    id: 'ubuntu',
    gpu: false,
    retiredAt: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
  });
  const built = memberBuild(template({ defaultPlan: 'BASIC', vmTemplate: 'ubuntu-2404' }));

  it.each([
    ['another plan', { defaultPlan: 'STANDARD', vmTemplate: 'ubuntu-2404' }, true],
    ['another Proxmox template', { defaultPlan: 'BASIC', vmTemplate: 'ubuntu-2404-patched' }, true],
    ['another idle timeout', { defaultPlan: 'BASIC', vmTemplate: 'ubuntu-2404', idleTimeoutMinutes: 15 }, true],
    ['only another name', { defaultPlan: 'BASIC', vmTemplate: 'ubuntu-2404', name: 'Ubuntu (renamed)' }, false],
  ])('after an edit to %s: outdated %s', (_, edit, outdated) => {
    const now = memberBuild(template(edit));
    expect(isOutdated({ ...m('a', 'running', 'ready'), build: built }, now)).toBe(outdated);
  });

  it('takes a member recorded before builds were as current', () => {
    expect(isOutdated(m('a', 'running', 'ready'), built)).toBe(false);
    expect(isOutdated({ ...m('a', 'running', 'ready'), build: null }, built)).toBe(false);
  });
});

describe('replenishing a pool', () => {
  it.each([
    ['an empty pool builds both tiers', target(3, 2), [], 10, { ...nothing, create: { running: 3, stopped: 2 } }],
    [
      'members on their way count: a repeated plan asks for nothing more',
      target(2, 1),
      [m('a', 'running', 'building'), m('b', 'running', 'ready'), m('c', 'stopped', 'moving')],
      10,
      nothing,
    ],
    [
      'a short running tier starts stopped members before building, and the stopped tier is built again',
      target(3, 2),
      [m('r1', 'running', 'ready'), m('s1', 'stopped', 'ready', 1), m('s2', 'stopped', 'ready', 2)],
      10,
      { ...nothing, start: ['s1', 's2'], create: { running: 0, stopped: 2 } },
    ],
    [
      'a running surplus is stopped into a short stopped tier, the rest destroyed, newest first',
      target(1, 1),
      [m('r1', 'running', 'ready', 1), m('r2', 'running', 'ready', 2), m('r3', 'running', 'ready', 3)],
      10,
      { ...nothing, stop: ['r3'], destroy: ['r2'] },
    ],
    [
      'a stopped surplus is destroyed, newest first',
      target(0, 1),
      [m('s1', 'stopped', 'ready', 1), m('s2', 'stopped', 'ready', 2)],
      10,
      { ...nothing, destroy: ['s2'] },
    ],
    [
      'failed members are destroyed and replaced',
      target(2, 0),
      [m('r1', 'running', 'ready'), m('bad', 'running', 'failed')],
      10,
      { ...nothing, destroy: ['bad'], create: { running: 1, stopped: 0 } },
    ],
    [
      'the site’s capacity bounds the creates, the running tier first; the rest is deferred',
      target(4, 3),
      [],
      5,
      { ...nothing, create: { running: 4, stopped: 1 }, deferred: 2 },
    ],
    ['a full site builds nothing', target(2, 0), [], 0, { ...nothing, deferred: 2 }],
    [
      'a member on its way is never moved or removed, even over target',
      target(0, 0),
      [m('a', 'running', 'building'), m('b', 'stopped', 'moving')],
      10,
      nothing,
    ],
  ])('%s', (_label, t, members, free, plan) => {
    expect(planReplenish(t, members, free)).toEqual(plan);
  });
});
