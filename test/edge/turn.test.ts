import { describe, expect, it } from 'vitest';
import { iceServers, mintTurnCredentials, selkiesRtcConfig } from '../../src/lib/turn';

/** A test vector computed with openssl and node, by coturn's "TURN REST API" scheme. */
const VECTOR = {
  secret: 'n0TaRealCoTURNAuthSecretThatIsSixtyFourLengthsLongPlaceholdPlace',
  username: '1700000000:alice',
  credential: 'Uw6HaBbLDc3Jnrq7pc/5w16nZPM=',
};

describe('mintTurnCredentials', () => {
  it('matches a vector computed with openssl', async () => {
    const c = await mintTurnCredentials({ secret: VECTOR.secret, user: 'alice', ttlSeconds: 86_400, now: (1_700_000_000 - 86_400) * 1000 });
    expect(c).toEqual({ username: VECTOR.username, credential: VECTOR.credential, expiresAt: '2023-11-14T22:13:20.000Z' });
  });

  it('puts the expiry (whole seconds), not the issue time, in front of the user', async () => {
    const c = await mintTurnCredentials({ secret: 's', user: 'desk-s1', ttlSeconds: 600, now: 1_000_000_000_999 });
    expect(c.username).toBe('1000000600:desk-s1');
    expect(Date.parse(c.expiresAt) / 1000).toBe(1_000_000_600);
  });

  it('replaces ":" in the user with "-" as Selkies does, so coturn finds the timestamp', async () => {
    const c = await mintTurnCredentials({ secret: 's', user: 'site:a:desk', ttlSeconds: 60, now: 0 });
    expect(c.username).toBe('60:site-a-desk');
  });

  it('makes a different credential for a different secret or username', async () => {
    const base = { user: 'alice', ttlSeconds: 60, now: 0 };
    const a = await mintTurnCredentials({ ...base, secret: 'one' });
    const b = await mintTurnCredentials({ ...base, secret: 'two' });
    const c = await mintTurnCredentials({ ...base, secret: 'one', user: 'bob' });
    expect(new Set([a.credential, b.credential, c.credential]).size).toBe(3);
  });

  it('refuses an empty secret or user and a ttl that is not a positive integer', async () => {
    await expect(mintTurnCredentials({ secret: '', user: 'a', ttlSeconds: 60 })).rejects.toThrow(RangeError);
    await expect(mintTurnCredentials({ secret: 's', user: '', ttlSeconds: 60 })).rejects.toThrow(RangeError);
    for (const ttlSeconds of [0, -1, 1.5, Number.NaN])
      await expect(mintTurnCredentials({ secret: 's', user: 'a', ttlSeconds })).rejects.toThrow(RangeError);
  });
});

describe('iceServers', () => {
  const creds = { username: '1700086400:desk-s1', credential: 'b64' };

  it('lists STUN then TURN over UDP and TCP, with urls as arrays', () => {
    expect(iceServers({ host: 'turn.lan', port: 3478, ...creds })).toEqual([
      { urls: ['stun:turn.lan:3478'] },
      { urls: ['turn:turn.lan:3478?transport=udp', 'turn:turn.lan:3478?transport=tcp'], ...creds },
    ]);
  });

  it('uses turns: when TLS is asked for, and only the transports given', () => {
    expect(iceServers({ host: 'turn.lan', port: 5349, ...creds, transports: ['tcp'], tls: true })[1]?.urls).toEqual([
      'turns:turn.lan:5349?transport=tcp',
    ]);
  });

  it('never adds a public STUN server', () => {
    const urls = iceServers({ host: '10.0.0.5', port: 3478, ...creds }).flatMap((s) => s.urls);
    expect(urls.every((u) => u.includes('10.0.0.5'))).toBe(true);
  });

  it('refuses IPv6 literals, which Selkies would split apart, and bad ports', () => {
    expect(() => iceServers({ host: '::1', port: 3478, ...creds })).toThrow(RangeError);
    expect(() => iceServers({ host: '[fd00::1]', port: 3478, ...creds })).toThrow(RangeError);
    expect(() => iceServers({ host: 'turn.lan', port: 0, ...creds })).toThrow(RangeError);
    expect(() => iceServers({ host: 'turn.lan', port: 3478, ...creds, transports: [] })).toThrow(RangeError);
  });
});

describe('selkiesRtcConfig', () => {
  it('has the shape Selkies serves at /turn', () => {
    const config = selkiesRtcConfig({
      host: 'turn.lan',
      port: 3478,
      username: '1700086400:desk-s1',
      credential: 'b64',
      lifetimeSeconds: 86_400,
    });
    expect(config).toEqual({
      lifetimeDuration: '86400s',
      blockStatus: 'NOT_BLOCKED',
      iceTransportPolicy: 'all',
      iceServers: [
        { urls: ['stun:turn.lan:3478'] },
        {
          urls: ['turn:turn.lan:3478?transport=udp', 'turn:turn.lan:3478?transport=tcp'],
          username: '1700086400:desk-s1',
          credential: 'b64',
        },
      ],
    });
  });
});
