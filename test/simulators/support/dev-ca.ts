/** One throwaway CA and server certificate per test file, as `npm run dev` makes in .local/ca. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DevCa, ensureDevCa } from '../../../simulators/shared/certificates';

export async function throwawayCa(): Promise<DevCa & { remove(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'cdaas-ca-'));
  const ca = await ensureDevCa(dir);
  return { ...ca, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
