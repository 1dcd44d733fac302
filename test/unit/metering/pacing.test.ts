import { backoffDelayMs, CallRateLimiter, Clock, DEFAULT_BACKOFF } from '../../../lambda/core/metering/pacing';

/** A clock that only moves when slept on (or pushed by the test). */
class FakeClock implements Clock {
  readonly sleeps: number[] = [];
  constructor(public time = 1_000_000) {}
  now(): number {
    return this.time;
  }
  async sleep(ms: number): Promise<void> {
    expect(ms).toBeGreaterThanOrEqual(0);
    this.sleeps.push(ms);
    this.time += ms;
  }
}

/** A small deterministic PRNG (mulberry32), for repeatable "random" gaps. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The most calls in any half-open window [t, t + 1000). */
function busiestSecond(times: readonly number[]): number {
  let most = 0;
  for (let i = 0; i < times.length; i++) {
    let j = i;
    while (j < times.length && times[j] < times[i] + 1000) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

describe('backoffDelayMs', () => {
  it('is 0 when the random draw is 0', () => {
    for (const attempt of [0, 1, 5, 30]) expect(backoffDelayMs(attempt, DEFAULT_BACKOFF, () => 0)).toBe(0);
  });

  it.each([
    [0, 99],
    [1, 199],
    [2, 399],
    [3, 799],
    [4, 1598],
    [5, 3196],
    // From here the cap (5000 ms) holds.
    [6, 4995],
    [10, 4995],
    [100, 4995],
    [5000, 4995],
  ])('retry %d with a draw of 0.999 waits %d ms', (attempt, expected) => {
    expect(backoffDelayMs(attempt, DEFAULT_BACKOFF, () => 0.999)).toBe(expected);
  });

  it('stays within [0, min(cap, base x 2^attempt)) for any draw, as a whole number of ms', () => {
    const random = prng(7);
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(DEFAULT_BACKOFF.capMs, DEFAULT_BACKOFF.baseMs * 2 ** attempt);
      for (let i = 0; i < 200; i++) {
        const delay = backoffDelayMs(attempt, DEFAULT_BACKOFF, random);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(ceiling);
      }
    }
  });

  it('draws from the injected source: the same draw gives the same delay, successive draws spread (jitter)', () => {
    const sameDraw = new Set(Array.from({ length: 50 }, () => backoffDelayMs(4, DEFAULT_BACKOFF, prng(1))));
    expect(sameDraw.size).toBe(1);
    const random = prng(2);
    expect(new Set(Array.from({ length: 50 }, () => backoffDelayMs(4, DEFAULT_BACKOFF, random))).size).toBeGreaterThan(20);
  });

  it('honours a custom policy', () => {
    expect(backoffDelayMs(0, { baseMs: 1000, capMs: 1500 }, () => 0.5)).toBe(500);
    expect(backoffDelayMs(3, { baseMs: 1000, capMs: 1500 }, () => 0.5)).toBe(750);
  });
});

describe('CallRateLimiter', () => {
  it('lets the first N calls through at once', async () => {
    const clock = new FakeClock();
    const limiter = new CallRateLimiter(10, clock);
    for (let i = 0; i < 10; i++) (await limiter.acquire())();
    expect(clock.sleeps).toEqual([]);
  });

  it.each([1, 3, 10])('never allows more than %d calls in any 1000 ms window over 100 back-to-back calls', async (perSecond) => {
    const clock = new FakeClock();
    const limiter = new CallRateLimiter(perSecond, clock);
    const times: number[] = [];
    for (let i = 0; i < 100; i++) {
      (await limiter.acquire())();
      times.push(clock.now());
    }
    expect(busiestSecond(times)).toBe(perSecond);
    for (let i = 0; i + perSecond < times.length; i++) expect(times[i + perSecond] - times[i]).toBeGreaterThanOrEqual(1000);
    // And not much slower than the limit: about one window per N calls.
    expect(times[99] - times[0]).toBeLessThanOrEqual(Math.ceil(100 / perSecond) * 1001);
  });

  it('keeps the limit when time also passes between calls', async () => {
    const clock = new FakeClock();
    const limiter = new CallRateLimiter(10, clock);
    const random = prng(42);
    const times: number[] = [];
    for (let i = 0; i < 100; i++) {
      clock.time += Math.floor(random() * 250);
      (await limiter.acquire())();
      times.push(clock.now());
    }
    expect(busiestSecond(times)).toBeLessThanOrEqual(10);
  });

  it('does not wait when calls are slower than the limit', async () => {
    const clock = new FakeClock();
    const limiter = new CallRateLimiter(2, clock);
    for (let i = 0; i < 20; i++) {
      (await limiter.acquire())();
      clock.time += 500;
    }
    expect(clock.sleeps).toEqual([]);
  });

  it('counts a slow call from its answer: the call N places later starts a second after it', async () => {
    const clock = new FakeClock();
    const limiter = new CallRateLimiter(2, clock);
    const first = await limiter.acquire();
    (await limiter.acquire())();
    // The first call takes 3 s to answer (a slow write before it, a slow network).
    clock.time += 3000;
    first();
    const started = clock.now();
    (await limiter.acquire())();
    // The second place freed 1 s after its immediate answer; this one had no wait.
    expect(clock.now()).toBe(started);
    (await limiter.acquire())();
    // The next needs the first place: a second after the first call's answer.
    expect(clock.now()).toBeGreaterThanOrEqual(started + 1000);
  });

  it('waits while every place is held by a call in flight, and goes on when one is answered', async () => {
    const clock = new FakeClock();
    const limiter = new CallRateLimiter(1, clock);
    const inFlight = await limiter.acquire();
    let allowed = false;
    const next = limiter.acquire().then((answered) => {
      allowed = true;
      answered();
    });
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(allowed).toBe(false);
    inFlight();
    await next;
    expect(allowed).toBe(true);
    // Not before a second after the answer.
    expect(clock.sleeps.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1000);
  });

  it('refuses a limit below one call per second', () => {
    expect(() => new CallRateLimiter(0, new FakeClock())).toThrow(RangeError);
  });
});
