/**
 * Where each desktop's VM is, written down before its clone is started. Proxmox names a
 * clone only after its first disk is copied, and `GET /cluster/resources` shows names up
 * to 10 s late (pvestatd), so a create that is resumed or delivered twice cannot find its
 * VM by name in time; it finds it here, and then asks Proxmox about that one VM alone (its
 * config is live). Entries are small files, one per desktop, written atomically and
 * synced before the clone request goes out, so a SIGKILL right after the POST loses nothing.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

export interface LedgerEntry {
  vmid: number;
  node: string;
  /**
   * A rebuild under way: the VM it is building from the template. The desktop's VM (`vmid`) is destroyed once its
   * data disk has moved over; from then on both name the new VM, until the rebuild ends and this is dropped.
   */
  rebuild?: { vmid: number; node: string };
  /** When it was written (ISO), for operators reading the folder. */
  at: string;
}

export interface VmLedger {
  get(desktopId: string): Promise<LedgerEntry | null>;
  put(desktopId: string, entry: { vmid: number; node: string; rebuild?: { vmid: number; node: string } }): Promise<void>;
  remove(desktopId: string): Promise<void>;
}

const SAFE_ID = /^[a-z0-9]{1,64}$/;

export function fileLedger(dir: string): VmLedger {
  let made: Promise<unknown> | null = null;
  const ensureDir = () => (made ??= mkdir(dir, { recursive: true, mode: 0o700 }));
  const path = (desktopId: string) => {
    if (!SAFE_ID.test(desktopId)) throw new Error(`not a desktop id: ${desktopId}`);
    return join(dir, `${desktopId}.json`);
  };
  return {
    async get(desktopId) {
      try {
        const parsed = JSON.parse(await readFile(path(desktopId), 'utf8')) as Partial<LedgerEntry>;
        if (typeof parsed.vmid !== 'number' || typeof parsed.node !== 'string') return null;
        const { rebuild } = parsed;
        const building = rebuild && typeof rebuild.vmid === 'number' && typeof rebuild.node === 'string';
        return {
          vmid: parsed.vmid,
          node: parsed.node,
          at: String(parsed.at ?? ''),
          ...(building ? { rebuild: { vmid: rebuild.vmid, node: rebuild.node } } : {}),
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },
    async put(desktopId, entry) {
      await ensureDir();
      const target = path(desktopId);
      const tmp = `${target}.${process.pid}.tmp`;
      const file = await open(tmp, 'w', 0o600);
      try {
        await file.writeFile(JSON.stringify({ ...entry, at: new Date().toISOString() }));
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(tmp, target);
    },
    async remove(desktopId) {
      await rm(path(desktopId), { force: true });
    },
  };
}

/** For tests: the same contract in memory (share one between "restarted" bridges to play the disk). */
export function memoryLedger(): VmLedger & { entries: Map<string, LedgerEntry> } {
  const entries = new Map<string, LedgerEntry>();
  return {
    entries,
    get: async (id) => entries.get(id) ?? null,
    put: async (id, e) => void entries.set(id, { ...e, at: new Date().toISOString() }),
    remove: async (id) => void entries.delete(id),
  };
}
