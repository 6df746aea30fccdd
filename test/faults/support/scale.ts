/**
 * How big a fault run is. `npm test` runs the short form (FAULTS_SCALE unset or
 * `short`); `npm run test:faults` the full one (FAULTS_SCALE=full). FAULTS_SEED
 * replays a run's fault and kill schedule.
 */

export interface FaultScale {
  name: 'short' | 'full';
  /** Desktops driven through create → stop → start → delete. */
  desktops: number;
  /** More desktops whose users delete them while they are still being created. */
  deletedWhileCreating: number;
  /** SIGKILLs of the bridge per lifecycle phase, each this long (uniform) after the last. */
  killsPerPhase: number;
  killDelayMs: [number, number];
  /** How long the bridge stays dead before a new one is started. */
  outageMs: [number, number];
  /** Chance that an eligible simulator request fails. */
  proxmoxRate: number;
  guacamoleRate: number;
  /** Longest a phase may take before unsettled desktops count as stuck. */
  phaseTimeoutMs: number;
  /** Faults the run must inject to count as evidence. */
  minFaults: number;
  /**
   * The bridge's IP_WAIT_SECONDS: the guest-agent-never-answers test waits this long, so
   * the short form keeps it small; long enough that a streak of injected faults at the
   * run's rate does not exhaust it.
   */
  ipWaitSeconds: number;
  /** The database outage (test/faults/database-outage.test.ts): how long Postgres is down, and how often users act meanwhile. */
  dbOutageMs: number;
  dbOutageRoundMs: number;
}

const SCALES: Record<FaultScale['name'], FaultScale> = {
  short: {
    name: 'short',
    desktops: 8,
    deletedWhileCreating: 2,
    killsPerPhase: 1,
    killDelayMs: [50, 1_200],
    outageMs: [0, 1_000],
    proxmoxRate: 0.15,
    guacamoleRate: 0.1,
    phaseTimeoutMs: 45_000,
    minFaults: 25,
    ipWaitSeconds: 8,
    dbOutageMs: 60_000,
    dbOutageRoundMs: 5_000,
  },
  full: {
    name: 'full',
    desktops: 40,
    deletedWhileCreating: 10,
    killsPerPhase: 4,
    killDelayMs: [50, 1_200],
    outageMs: [0, 1_000],
    proxmoxRate: 0.15,
    guacamoleRate: 0.1,
    phaseTimeoutMs: 120_000,
    minFaults: 200,
    ipWaitSeconds: 15,
    dbOutageMs: 5 * 60_000,
    dbOutageRoundMs: 10_000,
  },
};

/** FAULTS_SCALE picks the size; FAULTS_DESKTOPS and FAULTS_RATE (both simulators) override it for experiments. */
export function faultScale(env: Record<string, string | undefined> = process.env): FaultScale {
  const name = env.FAULTS_SCALE ?? 'short';
  if (name !== 'short' && name !== 'full') throw new Error(`FAULTS_SCALE must be short or full, not ${name}`);
  const scale = { ...SCALES[name] };
  if (env.FAULTS_DESKTOPS) scale.desktops = positive('FAULTS_DESKTOPS', Number(env.FAULTS_DESKTOPS));
  if (env.FAULTS_RATE) {
    const rate = Number(env.FAULTS_RATE);
    if (!(rate >= 0 && rate <= 1)) throw new Error('FAULTS_RATE must be between 0 and 1');
    scale.proxmoxRate = rate;
    scale.guacamoleRate = rate;
  }
  return scale;
}

function positive(name: string, n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
}

export function faultSeed(env: Record<string, string | undefined> = process.env): number {
  const seed = Number(env.FAULTS_SEED ?? 20261121);
  if (!Number.isInteger(seed)) throw new Error('FAULTS_SEED must be an integer');
  return seed;
}
