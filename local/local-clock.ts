/**
 * The local stack's time: real time, moved forward when a demo runs metering "as if" later
 * (`POST /_local/metering/run` with `{"now": ISO}`). Ingestion and the metering schedule read it,
 * and the simulator's clock is moved with it, so after a move usage keeps being counted (in the
 * hour that is open by the moved clock) and billed, instead of meeting hours already sealed.
 */
export class LocalClock {
  private offsetMs = 0;

  constructor(private readonly simulatorUrl: string) {}

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  /**
   * Takes up the simulator's time when it is ahead: a simulator that kept its state from an earlier
   * run (PERSIST_DATA) keeps a clock that run moved forward, and so must the tables' hours.
   */
  async catchUpWithSimulator(): Promise<void> {
    const response = await fetch(`${this.simulatorUrl}/_admin/clock`);
    if (!response.ok) throw new Error(`the simulator did not tell its time: ${response.status} ${await response.text()}`);
    const { now } = (await response.json()) as { now: string };
    const aheadMs = new Date(now).getTime() - this.now().getTime();
    if (aheadMs > 0) this.offsetMs += aheadMs;
  }

  /** Moves this clock and the simulator's to `time`; a time not later than now changes nothing. */
  async moveForwardTo(time: Date): Promise<boolean> {
    if (time.getTime() <= this.now().getTime()) return false;
    const response = await fetch(`${this.simulatorUrl}/_admin/clock`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ now: time.toISOString() }),
    });
    if (!response.ok) throw new Error(`the simulator did not move its clock: ${response.status} ${await response.text()}`);
    this.offsetMs = time.getTime() - Date.now();
    return true;
  }
}
