/**
 * `npm run bridge -- doctor` as an operator runs it: against the dev stack every check is
 * green and it exits 0; against a Proxmox token that lacks one privilege the bridge needs,
 * its table names that privilege and it exits non-zero (the simulator answers such a token
 * as a privilege-separated Proxmox token does).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { PROXMOX_STORAGE_PRIVILEGES, PROXMOX_VM_PRIVILEGES } from '../../on-prem-bridge/src/doctor';
import { type Stack, startStack } from '../../scripts/lib/stack';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;

/** Runs doctor with the stack's bridge environment; its table, and its exit code. */
async function doctor(stack: Stack): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run('node', ['--import', 'tsx', 'on-prem-bridge/src/main.ts', 'doctor'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...stack.bridgeEnv },
      timeout: 60_000,
    });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: e.stdout ?? '' };
  }
}

/** The result column of each row of doctor's table, by backend and check. */
function verdicts(table: string): Map<string, string> {
  const rows = table.split('\n').slice(2);
  const out = new Map<string, string>();
  for (const row of rows) {
    const m = /^(\S+)\s+(.+?)\s{2,}(ok|WARN|FAIL)\b/.exec(row);
    if (m) out.set(`${m[1]} / ${m[2]}`, m[3] ?? '');
  }
  return out;
}

const stacks: Stack[] = [];
afterAll(async () => {
  await Promise.all(stacks.map((s) => s.stop()));
});

describe('npm run bridge -- doctor', () => {
  it('against the dev stack: every check green, exit 0', async () => {
    const stack = await startStack();
    stacks.push(stack);
    const { code, out } = await doctor(stack);
    const rows = verdicts(out);
    expect(rows.size, out).toBeGreaterThanOrEqual(8);
    expect(
      [...rows].filter(([, v]) => v !== 'ok'),
      out,
    ).toEqual([]);
    // Each backend the bridge drives is checked, with its TLS.
    for (const backend of ['Proxmox', 'Guacamole', 'Kubernetes']) {
      expect(
        [...rows.keys()].some((k) => k.startsWith(`${backend} /`)),
        out,
      ).toBe(true);
    }
    expect(out).toMatch(/token privileges\s+ok/);
    expect(code).toBe(0);
  }, 240_000);

  it('against a token missing VM.GuestAgent.Audit: names that privilege and exits non-zero', async () => {
    const granted = [...PROXMOX_VM_PRIVILEGES, ...PROXMOX_STORAGE_PRIVILEGES].filter((p) => p !== 'VM.GuestAgent.Audit');
    const stack = await startStack({ proxmoxEnv: { PROXMOX_SIM_PRIVILEGES: granted.join(',') } });
    stacks.push(stack);
    const { code, out } = await doctor(stack);
    expect(out).toMatch(/token privileges\s+FAIL\s+missing VM\.GuestAgent\.Audit on \//);
    // Only what is missing is named.
    const line = out.split('\n').find((l) => l.includes('token privileges')) ?? '';
    for (const p of granted) expect(line).not.toContain(`${p} on`);
    expect(out).toMatch(/\d+ checks? failed\./);
    expect(code).toBe(1);
  }, 240_000);
});
