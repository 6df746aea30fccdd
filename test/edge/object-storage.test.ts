/**
 * Durable Objects deployed before their storage had a schema version keep what they hold
 * when this release first wakes them: each test lays out an object's storage as the
 * release before wrote it, then starts the object on it.
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { Bindings } from '../../src/env';
import { sha256Hex } from '../../src/lib/ids';
import type { KeyRecord } from '../../src/lib/idempotency';
import { DesktopIndex } from '../../workers/desktop-index/desktop-index';
import { IdempotencyKey } from '../../workers/idempotency/idempotency-key';
import { SiteHub } from '../../workers/site-hub/site-hub';
import { UserAccount } from '../../workers/user-account/user-account';
import { uniqueUser } from './helpers';

const bindings = env as Bindings;

/** Runs `fn` on the object's storage emptied, as a fresh deployment of the release before would find it. */
function onEmptied<T>(stub: DurableObjectStub, fn: (state: DurableObjectState) => Promise<T>): Promise<T> {
  return runInDurableObject(stub, async (_o, state) => {
    await state.storage.deleteAll();
    return fn(state);
  });
}

const tableNames = (state: DurableObjectState) =>
  state.storage.sql
    .exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf%' ESCAPE '\\' ORDER BY name`)
    .toArray()
    .map((r) => r.name);

describe('objects deployed before versioned storage', () => {
  it('a site hub keeps its key, its deployment id, its GPU bookings and its commands in flight', async () => {
    const siteId = `legacy-${crypto.randomUUID().slice(0, 8)}`;
    const keyHash = await sha256Hex('sk_legacy');
    const gpu = { gpus: [{ id: 'gpu-0', node: 'n1', slots: 4 }], bookings: { 'dk0000000000000001/rn1': { gpuId: 'gpu-0', slots: 2 } } };
    const seen = await onEmptied(bindings.SITE_HUB.getByName(siteId), async (state) => {
      const sql = state.storage.sql;
      sql.exec('CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
      // Strings were stored bare; a deployment id of digits alone is the case JSON would misread.
      for (const [key, value] of [
        ['keyHash', keyHash],
        ['siteId', siteId],
        ['deploymentId', '0123456789012345'],
        ['gpu', JSON.stringify(gpu)],
      ])
        sql.exec('INSERT INTO meta (key, value) VALUES (?, ?)', key, value);
      // The first release's commands table, before `orphan` was added.
      sql.exec(`CREATE TABLE commands (id TEXT PRIMARY KEY, desktop_id TEXT NOT NULL, body TEXT NOT NULL,
        lease_until INTEGER NOT NULL, sends INTEGER NOT NULL DEFAULT 1)`);
      sql.exec(`INSERT INTO commands (id, desktop_id, body, lease_until) VALUES ('c1', 'dk0000000000000001', '{}', 0)`);
      const hub = new SiteHub(state, bindings);
      return {
        login: await hub.authenticate(keyHash),
        deploymentId: hub.deploymentId(),
        occupancy: await hub.gpuOccupancy(),
        status: await hub.status(),
      };
    });
    expect(seen.login).toBe('ok');
    expect(seen.deploymentId).toBe('0123456789012345');
    expect(seen.occupancy.totals).toEqual({ slots: 4, used: 2, free: 2, largestFree: 2 });
    expect(seen.status).toMatchObject({ siteId, inFlight: 1 });
  });

  it('a user account keeps the limit an admin set and its active desktops', async () => {
    const user = uniqueUser('legacy');
    const seen = await onEmptied(bindings.USER_ACCOUNT.getByName(user), async (state) => {
      const sql = state.storage.sql;
      sql.exec('CREATE TABLE settings (key TEXT PRIMARY KEY, value INTEGER NOT NULL)');
      sql.exec(`INSERT INTO settings (key, value) VALUES ('maxDesktops', 3)`);
      sql.exec('CREATE TABLE active_desktops (desktop_id TEXT PRIMARY KEY, reserved_at INTEGER NOT NULL)');
      sql.exec(`INSERT INTO active_desktops VALUES ('dk0000000000000001', 1), ('dk0000000000000002', 2)`);
      const account = new UserAccount(state, bindings);
      return { quota: await account.quota(), desktops: await account.activeDesktops(), tables: tableNames(state) };
    });
    expect(seen.quota).toEqual({ maxDesktops: 3, custom: true, active: 2 });
    expect(seen.desktops).toEqual(['dk0000000000000002', 'dk0000000000000001']);
    // The legacy settings table moved into meta; later steps add their own tables (snapshots, for the snapshot quota).
    expect(seen.tables).toEqual(['active_desktops', 'meta', 'snapshots']);
  });

  it('a desktop index keeps its desktops and does not take them from Postgres again', async () => {
    const owner = `user:${uniqueUser('legacy')}`;
    const seen = await onEmptied(bindings.DESKTOP_INDEX.getByName(owner), async (state) => {
      const sql = state.storage.sql;
      sql.exec(`CREATE TABLE desktops (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, plan TEXT NOT NULL, status TEXT NOT NULL,
        created_at TEXT NOT NULL, revision INTEGER NOT NULL)`);
      sql.exec(`INSERT INTO desktops VALUES ('dk0000000000000001', 'u', 'BASIC', 'RUNNING', '2026-01-01T00:00:00.000Z', 3)`);
      sql.exec('CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
      sql.exec(`INSERT INTO settings (key, value) VALUES ('seeded', '2026-01-01T00:00:00.000Z')`);
      const index = new DesktopIndex(state, bindings);
      const page = await index.list({ includeDeleted: false, offset: 0, limit: 10 });
      const seeded = sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'seeded'`).one().value;
      return { page, seeded, tables: tableNames(state) };
    });
    expect(seen.page).toEqual({ ok: true, value: { ids: ['dk0000000000000001'], total: 1 } });
    expect(JSON.parse(seen.seeded)).toBe('2026-01-01T00:00:00.000Z');
    expect(seen.tables).toEqual(['desktops', 'meta']);
  });

  it('an idempotency key keeps answering the desktop its first request made', async () => {
    const record: KeyRecord = { fingerprint: 'f1', desktopId: 'dkfirst', state: 'done', firstSeenAt: Date.now(), claimedAt: Date.now() };
    const claim = await onEmptied(bindings.IDEMPOTENCY_KEYS.getByName(crypto.randomUUID()), async (state) => {
      await state.storage.put('record', record);
      return new IdempotencyKey(state, bindings).claim('f1', 'dksecond');
    });
    expect(claim).toEqual({ outcome: 'replay', desktopId: 'dkfirst' });
  });
});

describe('an object that deleted everything', () => {
  it('holds nothing until it is used again, and then has its schema back (an idempotency key after its 24 hours)', async () => {
    const stub = bindings.IDEMPOTENCY_KEYS.getByName(crypto.randomUUID());
    expect(await stub.claim('f1', 'dkfirst')).toMatchObject({ outcome: 'proceed', desktopId: 'dkfirst' });
    await stub.complete('dkfirst');
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await runInDurableObject(stub, (_o, state) => tableNames(state))).toEqual([]);
    // The same instance serves the key anew: forgotten, so a new claim proceeds.
    expect(await stub.claim('f1', 'dksecond')).toMatchObject({ outcome: 'proceed', desktopId: 'dksecond' });
    expect(await runInDurableObject(stub, (_o, state) => tableNames(state))).toEqual(['meta']);
  });
});
