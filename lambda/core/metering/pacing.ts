/**
 * Pacing of BatchMeterUsage calls: exponential backoff with full jitter between retries, and a cap
 * on calls per second (AWS allows 10 per account and region).
 */

export interface BackoffPolicy {
  /** @default 100 */
  readonly baseMs: number;
  /** @default 5000 */
  readonly capMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 100, capMs: 5000 };

/** Delay before retry number `attempt` (0 for the first retry): uniformly random up to base x 2^attempt. */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** At most `perSecond` calls in any window of one second. */
export class CallRateLimiter {
  private readonly recent: number[] = [];

  constructor(
    private readonly perSecond: number,
    private readonly clock: Clock,
  ) {
    if (perSecond < 1) throw new RangeError('perSecond must be at least 1');
  }

  /** Resolves when a call may be made, and counts it. */
  async acquire(): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      while (this.recent.length && this.recent[0] <= now - 1000) this.recent.shift();
      if (this.recent.length < this.perSecond) {
        this.recent.push(now);
        return;
      }
      await this.clock.sleep(this.recent[0] + 1000 - now + 1);
    }
  }
}
