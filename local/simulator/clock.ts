/**
 * The simulator's notion of "now". Token expiry, the metering time window and the unsubscribe grace
 * hour are all judged against it, so tests and demos can move time instead of waiting for it.
 */
export interface SimulatorClockOptions {
  /** The time the clock shows at construction. @default the real time */
  readonly start?: Date;
  /** A frozen clock only moves when told to; a running one ticks with real time. @default false */
  readonly frozen?: boolean;
}

export class SimulatorClock {
  private readonly frozen: boolean;
  /** Frozen: the time shown. Running: the offset from real time, in milliseconds. */
  private value: number;
  private readonly initialValue: number;

  constructor(options: SimulatorClockOptions = {}) {
    this.frozen = options.frozen ?? false;
    const start = options.start?.getTime() ?? Date.now();
    this.value = this.frozen ? start : start - Date.now();
    this.initialValue = this.value;
  }

  /** Back to the time (or the offset from real time) the clock was created with. */
  reset(): void {
    this.value = this.initialValue;
  }

  now(): Date {
    return new Date(this.frozen ? this.value : Date.now() + this.value);
  }

  set(now: Date): void {
    if (Number.isNaN(now.getTime())) throw new RangeError('invalid date');
    this.value = this.frozen ? now.getTime() : now.getTime() - Date.now();
  }

  advance(seconds: number): void {
    this.set(new Date(this.now().getTime() + seconds * 1000));
  }
}
