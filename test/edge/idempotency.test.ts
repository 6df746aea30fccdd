/**
 * Idempotency-Key on create: a retried create makes one desktop; the same key with another
 * body is refused; the key belongs to its caller and lasts 24 hours.
 */
import { env } from 'cloudflare:workers';
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { IDEMPOTENCY_IN_FLIGHT_MS, IDEMPOTENCY_KEY_TTL_MS, type KeyRecord, canonicalJson, decideClaim } from '../../src/lib/idempotency';
import { sha256Hex } from '../../src/lib/ids';
import type { Desktop } from '../../src/schemas/desktop';
import { ObjectStorage } from '../../workers/shared/object-storage';
import { api, token, uniqueUser } from './helpers';

const create = (tok: string, key: string | undefined, body: Record<string, unknown> = { name: 'Retry me', plan: 'BASIC' }) =>
  api<Desktop>('POST', '/api/v1/desktops', { token: tok, body, headers: key === undefined ? {} : { 'idempotency-key': key } });

const listIds = async (tok: string) =>
  (await api<{ items: Desktop[] }>('GET', '/api/v1/desktops', { token: tok })).body!.data.items.map((d) => d.id);

describe('Idempotency-Key on POST /api/v1/desktops', () => {
  it('answers a retried create with the same desktop and creates nothing more', async () => {
    const tok = await token(uniqueUser());
    const key = crypto.randomUUID();
    const first = await create(tok, key);
    const again = await create(tok, key);
    expect([first.status, again.status]).toEqual([202, 202]);
    expect(again.body?.data.id).toBe(first.body?.data.id);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(`/api/v1/desktops/${first.body?.data.id}`);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    // The body may be written in another key order: it is the same request.
    expect((await create(tok, key, { plan: 'BASIC', name: 'Retry me' })).body?.data.id).toBe(first.body?.data.id);
    expect(await listIds(tok)).toEqual([first.body?.data.id]);
    // Without a key, a second create is a second desktop (here: over the quota of one).
    expect((await create(tok, undefined)).body?.error?.code).toBe('QUOTA_EXCEEDED');
  });

  it('makes one desktop out of concurrent retries', async () => {
    const user = uniqueUser();
    const tok = await token(user);
    await api('PUT', `/api/v1/admin/users/${user}/quota`, { token: await token('root', { roles: ['admin'] }), body: { maxDesktops: 10 } });
    const key = crypto.randomUUID();
    const answers = await Promise.all(Array.from({ length: 6 }, () => create(tok, key)));
    const created = answers.filter((a) => a.status === 202).map((a) => a.body?.data.id);
    const busy = answers.filter((a) => a.status === 409);
    expect(created.length + busy.length).toBe(6);
    expect(new Set(created).size).toBe(1);
    for (const b of busy) {
      expect(b.body?.error?.code).toBe('IDEMPOTENCY_KEY_IN_USE');
      expect(b.headers.get('retry-after')).toBe('1');
    }
    expect(await listIds(tok)).toEqual([created[0]]);
  });

  it('refuses the same key with a different body, saying why', async () => {
    const tok = await token(uniqueUser());
    const key = crypto.randomUUID();
    expect((await create(tok, key)).status).toBe(202);
    const other = await create(tok, key, { name: 'Something else', plan: 'BASIC' });
    expect(other.status).toBe(422);
    expect(other.body?.error?.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(other.body?.message).toMatch(/different body.*new key/);
  });

  it('keeps each caller’s keys apart', async () => {
    const key = crypto.randomUUID();
    const [a, b] = [await token(uniqueUser()), await token(uniqueUser())];
    const fromA = await create(a, key);
    const fromB = await create(b, key);
    expect([fromA.status, fromB.status]).toEqual([202, 202]);
    expect(fromA.body?.data.id).not.toBe(fromB.body?.data.id);
  });

  it('does not remember a create that failed: retrying with the key tries again', async () => {
    const tok = await token(uniqueUser());
    const key = crypto.randomUUID();
    const refused = await create(tok, key, { plan: 'BASIC', templateId: 'no-such-template' });
    expect(refused.status).toBe(400);
    expect((await create(tok, key)).status).toBe(202);
  });

  it('refuses a malformed key', async () => {
    const res = await create(await token(uniqueUser()), 'has spaces in it');
    expect(res.status).toBe(400);
    expect(res.body?.message).toMatch(/Idempotency-Key/);
  });

  it('resumes a claim whose request died: the desktop it made is answered, never a second one', async () => {
    const caller = uniqueUser();
    const tok = await token(caller);
    const key = crypto.randomUUID();
    const first = await create(tok, key);
    // As if the Worker had been evicted after the desktop existed but before the key was completed.
    const stub = env.IDEMPOTENCY_KEYS.getByName(await sha256Hex(JSON.stringify([`user:${caller}`, key])));
    await runInDurableObject(stub, (_o, state) => {
      const store = new ObjectStorage(state.storage);
      const held = store.get<KeyRecord>('record')!;
      store.put('record', { ...held, state: 'pending', claimedAt: Date.now() - IDEMPOTENCY_IN_FLIGHT_MS - 1 });
    });
    const resumed = await create(tok, key);
    expect([resumed.status, resumed.body?.data.id]).toEqual([202, first.body?.data.id]);
    expect(await listIds(tok)).toEqual([first.body?.data.id]);
  });
});

describe('the key’s record (decideClaim)', () => {
  const req = { fingerprint: 'f1', proposedDesktopId: 'dknew' };
  const held = (over: Partial<KeyRecord>): KeyRecord => ({
    fingerprint: 'f1',
    desktopId: 'dkfirst',
    state: 'done',
    firstSeenAt: 0,
    claimedAt: 0,
    ...over,
  });

  it.each([
    ['no record', null, 10, { outcome: 'proceed', desktopId: 'dknew', resumed: false }],
    ['done, same body', held({}), 10, { outcome: 'replay', desktopId: 'dkfirst' }],
    ['done, other body', held({ fingerprint: 'f2' }), 10, { outcome: 'mismatch' }],
    ['pending, in flight', held({ state: 'pending' }), IDEMPOTENCY_IN_FLIGHT_MS - 1, { outcome: 'in_progress' }],
    ['pending, other body', held({ state: 'pending', fingerprint: 'f2' }), 10, { outcome: 'mismatch' }],
    [
      'pending, its request died',
      held({ state: 'pending' }),
      IDEMPOTENCY_IN_FLIGHT_MS,
      { outcome: 'proceed', desktopId: 'dkfirst', resumed: true },
    ],
    ['done, 24 h later', held({}), IDEMPOTENCY_KEY_TTL_MS, { outcome: 'proceed', desktopId: 'dknew', resumed: false }],
    [
      'done, other body, 24 h later',
      held({ fingerprint: 'f2' }),
      IDEMPOTENCY_KEY_TTL_MS,
      { outcome: 'proceed', desktopId: 'dknew', resumed: false },
    ],
  ] as const)('%s', (_name, record, now, claim) => {
    expect(decideClaim(record, req, now).claim).toEqual(claim);
  });

  it('fingerprints bodies whatever their key order', () => {
    expect(canonicalJson({ b: [1, { d: 2, c: null }], a: 'x' })).toBe(canonicalJson({ a: 'x', b: [1, { c: null, d: 2 }] }));
    expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: '1' }));
  });
});
