/**
 * Per-VM config flocks (pve-common Tools.pm `lock_file_full`): qemu-server takes
 * `/var/lock/qemu-server/lock-<vmid>.conf` around every config change, inside a clone's
 * worker for the whole clone, and in the workers of start, stop and destroy. A caller that
 * finds it held waits up to the timeout (10 s by default) and then dies with
 * `can't lock file '…' - got timeout`. The `lock:` key of a config is a different thing
 * (check_lock); both are modelled.
 */
import { PveError } from './http';

interface Holder {
  waiters: Array<() => void>;
}

export function lockTimeout(vmid: number): PveError {
  return new PveError(500, `can't lock file '/var/lock/qemu-server/lock-${vmid}.conf' - got timeout`);
}

export class Flocks {
  private readonly held = new Map<number, Holder>();

  /** The lock now, or null when someone holds it (no waiting). */
  tryAcquire(vmid: number): (() => void) | null {
    if (this.held.has(vmid)) return null;
    this.held.set(vmid, { waiters: [] });
    return () => this.release(vmid);
  }

  /** The lock, waiting up to `waitMs` for the holder; rejects with PVE's time-out text after that. */
  async acquire(vmid: number, waitMs: number): Promise<() => void> {
    const now = this.tryAcquire(vmid);
    if (now) return now;
    const holder = this.held.get(vmid) as Holder;
    return new Promise<() => void>((resolve, reject) => {
      const handOver = () => {
        clearTimeout(timer);
        resolve(() => this.release(vmid));
      };
      const timer = setTimeout(() => {
        const i = holder.waiters.indexOf(handOver);
        if (i >= 0) holder.waiters.splice(i, 1);
        reject(lockTimeout(vmid));
      }, waitMs);
      holder.waiters.push(handOver);
    });
  }

  isHeld(vmid: number): boolean {
    return this.held.has(vmid);
  }

  clear(): void {
    this.held.clear();
  }

  private release(vmid: number): void {
    const holder = this.held.get(vmid);
    if (!holder) return;
    const next = holder.waiters.shift();
    if (next) next();
    else this.held.delete(vmid);
  }
}
