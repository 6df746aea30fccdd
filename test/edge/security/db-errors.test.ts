/**
 * A failed query's error carries its statement and every parameter (drizzle's "Failed
 * query: … params: …"); parameters can be secrets. No log line may repeat them.
 */
import { env } from 'cloudflare:workers';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { withDb } from '../../../src/db/client';
import { type Bindings, config } from '../../../src/env';
import { token } from '../helpers';
import { call } from './support';

const MARK = 'explode-on-insert';
const db = <T>(work: Parameters<typeof withDb<T>>[1]) => withDb(config(env as Bindings), work);

beforeAll(async () => {
  // Postgres refuses one subscription, as it might for any reason of its own.
  await db((x) =>
    x.execute(
      sql.raw(`CREATE OR REPLACE FUNCTION refuse_marked_webhook() RETURNS trigger AS $$
      BEGIN IF NEW.description = '${MARK}' THEN RAISE EXCEPTION 'refused by the test trigger'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`),
    ),
  );
  await db((x) =>
    x.execute(
      sql.raw(
        'CREATE OR REPLACE TRIGGER refuse_marked_webhook BEFORE INSERT ON webhooks FOR EACH ROW EXECUTE FUNCTION refuse_marked_webhook()',
      ),
    ),
  );
});

afterAll(async () => {
  await db((x) => x.execute(sql.raw('DROP TRIGGER IF EXISTS refuse_marked_webhook ON webhooks')));
});

describe('database errors in logs', () => {
  it('name Postgres’ code and message, never the statement or its parameters (here a signing secret)', async () => {
    const lines: string[] = [];
    const capture = (...args: unknown[]) => {
      lines.push(args.map(String).join(' '));
    };
    const spies = [vi.spyOn(console, 'error').mockImplementation(capture), vi.spyOn(console, 'warn').mockImplementation(capture)];
    try {
      const res = await call('POST', '/api/v1/webhooks', {
        token: await token('db-errors-admin', { roles: ['admin'] }),
        json: { url: 'https://hooks.example.com/db-errors', description: MARK },
      });
      expect(res.status).toBe(500);
      expect(res.text).not.toContain('whsec_');
    } finally {
      for (const s of spies) s.mockRestore();
    }
    const logged = lines.join('\n');
    expect(logged).toContain('unhandled error');
    expect(logged).toContain('P0001: refused by the test trigger');
    expect(logged).not.toContain('whsec_');
    expect(logged).not.toMatch(/Failed query|params:|insert into/i);
  });
});
