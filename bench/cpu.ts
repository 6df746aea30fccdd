/**
 * CPU time used by each process group of the stack (Linux /proc), so a benchmark can
 * say where the machine's cores went, not only how long things took.
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

/**
 * CPU milliseconds (user + system) per process group id, for the groups asked about, split
 * by program name within each group: the edge's group is Miniflare's Node
 * process and the workerd it drives, and which of the two spends the time decides where to cut.
 */
export function cpuMsByGroupAndProgram(groups: number[]): Map<number, Record<string, number>> {
  const out = new Map<number, Record<string, number>>(groups.map((g) => [g, {}]));
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      // "pid (comm) state ppid pgrp … utime(12th after comm) stime(13th)".
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const program = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      const programs = out.get(Number(fields[2]));
      if (!programs) continue;
      const ticks = Number(fields[11]) + Number(fields[12]);
      programs[program] = (programs[program] ?? 0) + (ticks * 1000) / TICKS_PER_SECOND;
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}
