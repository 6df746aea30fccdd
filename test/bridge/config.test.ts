import { describe, expect, it } from 'vitest';
import { ConfigError, configSummary, loadConfig } from '../../on-prem-bridge/src/config';
import { desktopPassword, guacamoleUserPassword } from '../../on-prem-bridge/src/desktop-identity';
import { createLogger } from '../../on-prem-bridge/src/logger';

const REQUIRED = {
  SITE_KEY: 'sk_live_abcdefghijklmnop',
  PROXMOX_TOKEN_SECRET: '11111111-2222-3333-4444-555555555555',
  GUACAMOLE_USERNAME: 'guacadmin',
  GUACAMOLE_PASSWORD: 'guacadmin-password',
  BRIDGE_SECRET: 'a-very-long-bridge-secret-of-40-chars!!',
};

describe('config', () => {
  it('fills in the local defaults', () => {
    const config = loadConfig(REQUIRED);
    expect(config).toMatchObject({
      edgeUrl: 'http://127.0.0.1:8787',
      siteId: 'local',
      proxmox: {
        url: 'http://127.0.0.1:8006/api2/json',
        tokenId: 'root@pam!dev',
        node: 'pve1',
        templateVmid: 9000,
        templates: {},
        vmidRange: { min: 20000, max: 29999 },
        linkedClone: true,
      },
      guacamole: { url: 'http://127.0.0.1:8080/guacamole', publicUrl: 'http://127.0.0.1:8080/guacamole', dataSource: 'postgresql' },
      concurrency: 32,
      shutdownTimeoutSeconds: 60,
      ipWaitSeconds: 300,
      logLevel: 'info',
    });
  });

  it('reads explicit values, treating empty ones as unset', () => {
    const config = loadConfig({
      ...REQUIRED,
      EDGE_URL: 'https://edge.example.com/',
      PROXMOX_VMID_RANGE: '5000-5999',
      PROXMOX_LINKED_CLONE: 'false',
      PROXMOX_TEMPLATES: 'ubuntu=9000,windows=9001',
      GUACAMOLE_PUBLIC_URL: 'https://desk.example.com/guacamole/',
      BRIDGE_CONCURRENCY: '4',
      SITE_ID: '',
    });
    expect(config.edgeUrl).toBe('https://edge.example.com');
    expect(config.siteId).toBe('local');
    expect(config.proxmox.vmidRange).toEqual({ min: 5000, max: 5999 });
    expect(config.proxmox.linkedClone).toBe(false);
    expect(config.proxmox.templates).toEqual({ ubuntu: 9000, windows: 9001 });
    expect(config.guacamole.publicUrl).toBe('https://desk.example.com/guacamole');
    expect(config.concurrency).toBe(4);
  });

  it('lists every bad variable at once, without echoing values', () => {
    const error = (() => {
      try {
        loadConfig({
          PROXMOX_TOKEN_SECRET: 'NOT-A-UUID',
          BRIDGE_SECRET: 'short',
          PROXMOX_VMID_RANGE: '300-200',
          BRIDGE_CONCURRENCY: 'lots',
        });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toMatch(/^Invalid bridge configuration:/);
    for (const name of [
      'SITE_KEY',
      'PROXMOX_TOKEN_SECRET',
      'GUACAMOLE_USERNAME',
      'GUACAMOLE_PASSWORD',
      'BRIDGE_SECRET',
      'PROXMOX_VMID_RANGE',
      'BRIDGE_CONCURRENCY',
    ]) {
      expect(message).toContain(`  - ${name}: `);
    }
    expect(message).toContain('PROXMOX_TOKEN_SECRET: must be a lower-case UUID');
    expect(message).toContain('BRIDGE_SECRET: must be at least 32 characters');
    expect(message).not.toContain('NOT-A-UUID');
  });

  it('summarises without any secret, even when logged', () => {
    const config = loadConfig({ ...REQUIRED, EDGE_URL: 'https://user:pa55word@edge.example.com' });
    const lines: string[] = [];
    createLogger({ write: (l) => lines.push(l) }).info('starting', { config: configSummary(config), siteKey: config.siteKey });
    const logged = lines.join('\n');
    for (const secret of [...Object.values(REQUIRED).filter((v) => v !== 'guacadmin'), 'pa55word']) {
      expect(logged).not.toContain(secret);
    }
    expect(logged).toContain('edge.example.com');
  });
});

describe('derived desktop secrets', () => {
  const secret = REQUIRED.BRIDGE_SECRET;

  it('are deterministic per desktop and differ between desktops', () => {
    expect(desktopPassword(secret, 'aaaaaaaa')).toBe(desktopPassword(secret, 'aaaaaaaa'));
    expect(desktopPassword(secret, 'aaaaaaaa')).not.toBe(desktopPassword(secret, 'bbbbbbbb'));
    // Passes the JDBC policies sites turn on: length, both cases, a digit, a symbol.
    expect(guacamoleUserPassword(secret, 'aaaaaaaa')).toMatch(/^(?=.*[a-z])(?=.*[A-Z])(?=.*\d)(?=.*[^A-Za-z0-9]).{24,}$/);
  });

  it('make a desktop password that satisfies Windows complexity and is random where VNC looks', () => {
    const password = desktopPassword(secret, 'aaaaaaaa');
    expect(password).toHaveLength(20);
    expect(password).toMatch(/[A-Z]/);
    expect(password).toMatch(/[a-z]/);
    expect(password).toMatch(/[0-9]/);
    expect(password).toMatch(/[^A-Za-z0-9]/);
    expect(password.slice(0, 8)).not.toBe(desktopPassword(secret, 'bbbbbbbb').slice(0, 8));
  });
});
