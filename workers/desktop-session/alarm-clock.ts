/**
 * The desktop's one alarm, multiplexed over its clocks, outbox retries and database
 * catch-up: written to storage only when it would change, which saves a storage write on
 * most transitions.
 */
export class AlarmClock {
  /** As this instance last set it (undefined: unknown, e.g. after an alarm rang or a transaction rolled back). */
  private at: number | null | undefined;

  constructor(private readonly storage: DurableObjectStorage) {}

  forget(): void {
    this.at = undefined;
  }

  /** Inside a transition's storage transaction: make sure it rings by `wake`; one already set no later (and not yet rung) serves. */
  ringBy(wake: number, now: number): void {
    if (this.at && this.at <= wake && this.at > now) return;
    this.at = wake;
    void this.storage.setAlarm(wake);
  }

  /** Exactly at `at`, or never (null). */
  async ringAt(at: number | null): Promise<void> {
    if (at === this.at) return;
    this.at = at;
    await (at === null ? this.storage.deleteAlarm() : this.storage.setAlarm(at));
  }
}
