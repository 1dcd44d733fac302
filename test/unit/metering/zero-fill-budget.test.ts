/**
 * The metering run gives zero-filling a bounded share of its time, before it sends: a slow fill
 * (many customers) is told to stop at a quarter of the time left, and the run's real usage is still
 * sent, with whatever zero buckets the fill made by then.
 */
import { HourBucket } from '../../../lambda/core/metering/hour-bucket';
import { runMetering, ZeroUsage } from '../../../lambda/core/metering/metering-run';
import { FakeClock, FakeDeadLetters, FakeMarketplace, FakeMeteringLedger } from './fake-metering-ports';
import { licenseBucket, nthLicenseBucket } from './fixtures';

const NOW = new Date('2026-11-02T10:20:00Z');
const LAST_HOUR = '2026-11-02T09:00:00.000Z';

/**
 * A fill that never finishes on its own: one zero bucket per simulated second until told to stop.
 * Hours in `done` were filled by earlier runs: they return nothing at once, and are not recorded.
 */
class EndlessZeroUsage implements ZeroUsage {
  readonly calls: { hourStart: string; stoppedAt?: number }[] = [];
  constructor(
    private readonly clock: FakeClock,
    private readonly zeros: readonly HourBucket[],
    private readonly done: ReadonlySet<string> = new Set(['2026-11-02T07:00:00.000Z', '2026-11-02T08:00:00.000Z']),
  ) {}

  async fillHour(hourStart: Date, _now: Date, outOfTime: () => boolean): Promise<HourBucket[]> {
    if (this.done.has(hourStart.toISOString())) return [];
    const call: { hourStart: string; stoppedAt?: number } = { hourStart: hourStart.toISOString() };
    this.calls.push(call);
    const created: HourBucket[] = [];
    for (let i = 0; !outOfTime(); i++) {
      if (i < this.zeros.length) created.push(this.zeros[i]);
      await this.clock.sleep(1000);
    }
    call.stoppedAt = this.clock.now();
    return created;
  }
}

it('stops the zero fill at a quarter of the time left, then sends real usage and the zeros made', async () => {
  const clock = new FakeClock(NOW.getTime());
  const ledger = new FakeMeteringLedger();
  const api = new FakeMarketplace(clock).product('prod-license', 'license', ['requests', 'storage']);
  const usage = licenseBucket({ quantity: 5 });
  const zeros = [1, 2, 3].map((n) => ({ ...nthLicenseBucket(n, { quantity: 0, hourStart: LAST_HOUR }) }));
  for (const b of [usage, ...zeros]) api.customer(b);
  ledger.put(usage, ...zeros);
  const zeroUsage = new EndlessZeroUsage(clock, zeros);
  const deadline = new Date(NOW.getTime() + 400_000);

  const report = await runMetering({ ledger, deadLetters: new FakeDeadLetters(), api, clock, zeroUsage, random: () => 0.5 }, { now: NOW, deadline });

  expect(zeroUsage.calls).toEqual([{ hourStart: LAST_HOUR, stoppedAt: NOW.getTime() + 100_000 }]);
  expect(report).toMatchObject({ zeroRecords: 3, metered: 4, deferred: 0 });
  expect(ledger.get(usage.bucketKey).status).toBe('metered');
});

it('gives the fill no time once the deadline has passed', async () => {
  const clock = new FakeClock(NOW.getTime());
  const ledger = new FakeMeteringLedger();
  const api = new FakeMarketplace(clock).product('prod-license', 'license', ['requests']);
  const zeroUsage = new EndlessZeroUsage(clock, []);

  const report = await runMetering(
    { ledger, deadLetters: new FakeDeadLetters(), api, clock, zeroUsage },
    { now: NOW, deadline: new Date(NOW.getTime() - 1) },
  );

  expect(zeroUsage.calls).toEqual([]);
  expect(report.zeroRecords).toBe(0);
});

it('finishes an earlier hour whose fill is unfinished before the latest one, oldest first, within the same budget', async () => {
  const clock = new FakeClock(NOW.getTime());
  const ledger = new FakeMeteringLedger();
  const api = new FakeMarketplace(clock).product('prod-license', 'license', ['requests']);
  // 07:00 was finished by earlier runs; 08:00 was not; 06:00 is older than the runs look.
  const zeroUsage = new EndlessZeroUsage(clock, [], new Set(['2026-11-02T07:00:00.000Z']));
  const deadline = new Date(NOW.getTime() + 400_000);

  await runMetering({ ledger, deadLetters: new FakeDeadLetters(), api, clock, zeroUsage }, { now: NOW, deadline });

  // The unfinished 08:00 takes the whole budget; the latest hour waits for the next run.
  expect(zeroUsage.calls).toEqual([{ hourStart: '2026-11-02T08:00:00.000Z', stoppedAt: NOW.getTime() + 100_000 }]);
});
