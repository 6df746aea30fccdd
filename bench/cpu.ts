/**
 * CPU time used by each process group of the stack (Linux /proc), so a benchmark can
 * say where the machine's cores went, not only how long things took.
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

/** CPU milliseconds (user + system) per process group id, for the groups asked about. */
export function cpuMsByGroup(groups: number[]): Map<number, number> {
  const out = new Map<number, number>(groups.map((g) => [g, 0]));
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      // Fields after "(comm) ": state ppid pgrp … utime(12th) stime(13th).
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      const pgrp = Number(fields[2]);
      if (!out.has(pgrp)) continue;
      const ticks = Number(fields[11]) + Number(fields[12]);
      out.set(pgrp, (out.get(pgrp) ?? 0) + (ticks * 1000) / TICKS_PER_SECOND);
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}
