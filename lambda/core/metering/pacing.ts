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

/**
 * At most `perSecond` calls in any window of one second, as AWS counts them: by when they arrive,
 * which is somewhere between asking for the call and its answer. So a call holds its place from
 * the moment it is allowed until a second after its answer; the next call waits for a free place.
 * Calls then arrive at least a second apart for every `perSecond` of them, however long each one
 * takes to leave (a write before it, a slow network) or to answer.
 */
export class CallRateLimiter {
  /** Places taken: `answeredAt` is unset while the call is in flight. */
  private places: { answeredAt?: number }[] = [];

  constructor(
    private readonly perSecond: number,
    private readonly clock: Clock,
    /** How long to wait when every place is held by a call still in flight. */
    private readonly pollMs = 10,
  ) {
    if (perSecond < 1) throw new RangeError('perSecond must be at least 1');
  }

  /** Resolves when a call may be made, with the function to call once it is answered (or not made). */
  async acquire(): Promise<() => void> {
    for (;;) {
      const now = this.clock.now();
      this.places = this.places.filter((p) => p.answeredAt === undefined || p.answeredAt > now - 1000);
      if (this.places.length < this.perSecond) {
        const place: { answeredAt?: number } = {};
        this.places.push(place);
        return () => {
          place.answeredAt ??= this.clock.now();
        };
      }
      const answered = this.places.flatMap((p) => (p.answeredAt === undefined ? [] : [p.answeredAt]));
      await this.clock.sleep(answered.length > 0 ? Math.min(...answered) + 1000 - now + 1 : this.pollMs);
    }
  }
}
