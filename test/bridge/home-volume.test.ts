/**
 * A Selkies user's home volume name: a full-length HMAC keyed with the bridge's own
 * secret, over the tenant and the user id. Nobody without the secret can name another
 * user's volume, a service's user never gets the platform user's home of the same id, and
 * no two user ids share one.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { homeVolumeName, legacyHomeVolumeName } from '../../on-prem-bridge/src/tasks/selkies';

const SECRET = 'a-bridge-secret-of-at-least-32-characters!';

describe('home volume names', () => {
  it('are a full-length HMAC-SHA256 keyed with the bridge secret, a valid Kubernetes name that says nothing of the user', () => {
    const name = homeVolumeName(SECRET, 'users', 'alice');
    expect(name).toMatch(/^home-[0-9a-f]{64}$/);
    expect(name.length).toBeLessThanOrEqual(253);
    expect(name).not.toContain('alice');
    // Knowing the scheme is not enough: another secret (or the old public key) gives another name.
    expect(homeVolumeName('another-bridge-secret-of-32-characters!!', 'users', 'alice')).not.toBe(name);
    expect(name).not.toBe(`home-${createHmac('sha256', 'home-volume').update('alice').digest('hex')}`);
    expect(name).not.toBe(legacyHomeVolumeName('alice'));
  });

  it('differ between tenants for the same user id, and between user ids that read alike', () => {
    const names = [
      homeVolumeName(SECRET, 'users', 'alice'),
      homeVolumeName(SECRET, 'service:stream', 'alice'),
      homeVolumeName(SECRET, 'service:kiosk', 'alice'),
      homeVolumeName(SECRET, undefined, 'Alice'),
      homeVolumeName(SECRET, undefined, 'alice!'),
      homeVolumeName(SECRET, undefined, 'alice?'),
      // The tenant/user boundary cannot be shifted: ("a", "b:c") is not ("a:b", "c").
      homeVolumeName(SECRET, 'service:a', 'b:c'),
      homeVolumeName(SECRET, 'service:a:b', 'c'),
    ];
    expect(new Set(names).size).toBe(names.length);
    // The readable legacy scheme folded those ids together (only 40 bits kept them apart).
    expect(legacyHomeVolumeName('alice!').slice(0, 11)).toBe(legacyHomeVolumeName('alice?').slice(0, 11));
  });

  it('are the same for every session of the same user in the same tenant', () => {
    expect(homeVolumeName(SECRET, 'service:stream', 'stream:42')).toBe(homeVolumeName(SECRET, 'service:stream', 'stream:42'));
    // Commands of older edges carry no tenant: the platform's own users.
    expect(homeVolumeName(SECRET, undefined, 'bob')).toBe(homeVolumeName(SECRET, 'users', 'bob'));
  });
});
