import { StoredSubscription } from '../../../lambda/core/lifecycle/subscription-state';
import { HourBucket, meteringRecordOf } from '../../../lambda/core/metering/hour-bucket';
import { MeteringApiError, MeteringSettings, runMetering } from '../../../lambda/core/metering/metering-run';
import { tagSetKey } from '../../../lambda/core/usage/usage-rules';
import { failIfStopped } from '../../../lambda/metering/metering-job';
import { FakeClock, FakeDeadLetters, FakeMarketplace, FakeMeteringLedger } from './fake-metering-ports';
import { legacyBucket, licenseBucket, nthLicenseBucket } from './fixtures';

const NOW = new Date('2026-11-02T10:20:00Z');
const LAST_HOUR = '2026-11-02T09:00:00.000Z';
const CURRENT_HOUR = '2026-11-02T10:00:00.000Z';

const throttling = () => new MeteringApiError('ThrottlingException', 'Rate exceeded', 400);
const serverError = () => new MeteringApiError('InternalServiceErrorException', 'internal error', 500);
const disabled = () => new MeteringApiError('DisabledApiException', 'the API is disabled', 400);
/** An error about one record (its allocations), whatever the others hold. */
const badAllocations = () => new MeteringApiError('InvalidUsageAllocationsException', 'allocations do not add up', 400);
const outOfBounds = () => new MeteringApiError('TimestampOutOfBoundsException', 'the timestamp is out of bounds', 400);
const badProductCode = () => new MeteringApiError('InvalidProductCodeException', 'unknown product code', 400);

function setup(now: Date = NOW) {
  const clock = new FakeClock(now.getTime());
  const ledger = new FakeMeteringLedger();
  const deadLetters = new FakeDeadLetters();
  const api = new FakeMarketplace(clock).product('prod-license', 'license', ['requests', 'storage']).product('prod-legacy', 'legacy', ['requests']);
  /** Sealed buckets, known to AWS. */
  const sealed = (...buckets: HourBucket[]) => {
    for (const b of buckets) api.customer(b);
    ledger.put(...buckets);
    return buckets;
  };
  const run = (
    options: {
      now?: Date;
      deadline?: Date;
      settings?: Partial<MeteringSettings>;
      random?: () => number;
      subscriptions?: Map<string, StoredSubscription>;
      /** First registration times, by customer key. */
      registeredAt?: Map<string, string>;
      /** Licence active times from lifecycle notifications, by customer key. */
      activeSince?: Map<string, string>;
    } = {},
  ) => {
    const runNow = options.now ?? new Date(clock.now());
    const keys = new Set([...(options.subscriptions?.keys() ?? []), ...(options.registeredAt?.keys() ?? []), ...(options.activeSince?.keys() ?? [])]);
    const subscriptions =
      keys.size > 0
        ? {
            billingStates: async () =>
              new Map(
                [...keys].map((key) => [
                  key,
                  { subscription: options.subscriptions?.get(key), firstRegisteredAt: options.registeredAt?.get(key), activeSince: options.activeSince?.get(key) },
                ]),
              ),
          }
        : undefined;
    return runMetering(
      { ledger, deadLetters, api, clock, subscriptions, random: options.random ?? (() => 0.5) },
      { now: runNow, deadline: options.deadline ?? new Date(runNow.getTime() + 600_000), settings: options.settings },
    );
  };
  return { clock, ledger, deadLetters, api, sealed, run };
}

describe('runMetering', () => {
  describe('sealing', () => {
    it('seals and meters the hours that ended more than the grace period ago, and leaves the current hour open', async () => {
      const { ledger, api, run } = setup();
      const lastHour = [licenseBucket({ status: 'open', quantity: 4 }), legacyBucket({ status: 'open', quantity: 6 })];
      const current = licenseBucket({ status: 'open', hourStart: CURRENT_HOUR });
      for (const b of [...lastHour, current]) api.customer(b);
      ledger.put(...lastHour, current);

      const report = await run();

      expect(report).toEqual({ sealed: 2, usageRejected: 0, duplicates: 0, metered: 2, deadLettered: 0, deferred: 0, held: 0, zeroRecords: 0, finalUsage: 0, finalUsageWithdrawn: 0, calls: 2 });
      expect(ledger.get(current.bucketKey).status).toBe('open');
      for (const b of lastHour) {
        const stored = ledger.get(b.bucketKey);
        expect(stored.status).toBe('metered');
        expect(stored.meteringRecordId).toMatch(/^mrid-/);
      }
      expect(api.billedQuantity()).toBe(10);
      // Each sealed bucket sent once, though it is both "just sealed" and "waiting to be metered".
      expect(api.sentRecords()).toHaveLength(2);
    });

    it('seals and meters the current hour of a customer whose final usage is due, not of one whose flush is not due yet', async () => {
      const { ledger, api, run } = setup();
      const due = licenseBucket({ status: 'open', hourStart: CURRENT_HOUR, quantity: 7 });
      const later = legacyBucket({ status: 'open', hourStart: CURRENT_HOUR, quantity: 3 });
      for (const b of [due, later]) api.customer(b);
      ledger.put(due, later);
      ledger.finalUsage.push({ customerKey: due.customerKey, dueAt: NOW.toISOString() }, { customerKey: later.customerKey, dueAt: new Date(NOW.getTime() + 1).toISOString() });

      const report = await run();

      expect(report).toMatchObject({ finalUsage: 1, sealed: 1, metered: 1, calls: 1 });
      expect(ledger.get(due.bucketKey).status).toBe('metered');
      expect(ledger.get(later.bucketKey).status).toBe('open');
      expect(ledger.finalUsage.map((f) => f.customerKey)).toEqual([later.customerKey]);
      // Its time comes: the next run seals and meters it.
      expect(await run({ now: new Date(NOW.getTime() + 1) })).toMatchObject({ finalUsage: 1, metered: 1 });
      expect(api.billedQuantity()).toBe(10);
    });

    it('withdraws a due flush whose customer changed since (subscribed again, or ended again later): its hour stays open; one still standing is sealed', async () => {
      const { ledger, api, run } = setup();
      const resubscribed = nthLicenseBucket(1, { status: 'open', hourStart: CURRENT_HOUR, quantity: 7 });
      const endedAgain = nthLicenseBucket(2, { status: 'open', hourStart: CURRENT_HOUR, quantity: 5 });
      const ending = nthLicenseBucket(3, { status: 'open', hourStart: CURRENT_HOUR, quantity: 3 });
      for (const b of [resubscribed, endedAgain, ending]) api.customer(b);
      ledger.put(resubscribed, endedAgain, ending);
      const until = new Date(NOW.getTime() + 3_600_000).toISOString();
      ledger.finalUsage.push(
        { customerKey: resubscribed.customerKey, dueAt: NOW.toISOString(), statusVersion: 'v1-pending' },
        { customerKey: endedAgain.customerKey, dueAt: NOW.toISOString(), statusVersion: 'v1-pending' },
        { customerKey: ending.customerKey, dueAt: NOW.toISOString(), statusVersion: 'v1-pending' },
      );
      const states = new Map<string, StoredSubscription>([
        [resubscribed.customerKey, { status: 'subscribed', statusVersion: 'v2-subscribed' }],
        [endedAgain.customerKey, { status: 'unsubscribe-pending', finalUsageUntil: until, statusVersion: 'v3-pending' }],
        [ending.customerKey, { status: 'unsubscribe-pending', finalUsageUntil: until, statusVersion: 'v1-pending' }],
      ]);

      const report = await run({ subscriptions: states });

      expect(report).toMatchObject({ finalUsage: 1, finalUsageWithdrawn: 2, sealed: 1, metered: 1 });
      expect([resubscribed, endedAgain, ending].map((b) => ledger.get(b.bucketKey).status)).toEqual(['open', 'open', 'metered']);
      expect(ledger.finalUsage).toEqual([]);
    });

    it('reports final usage flushes that failed, and bills the rest', async () => {
      const { ledger, sealed, run } = setup();
      sealed(licenseBucket({ quantity: 2 }));
      const failure = { customerKey: 'license#l-stuck', dueAt: NOW.toISOString(), message: 'ValidationException: too big', givenUp: false };
      ledger.sealFinalUsageDue = async () => ({ buckets: [], rejected: [], duplicates: 0, customers: 0, withdrawn: 0, failed: [failure] });

      const report = await run();

      expect(report).toMatchObject({ metered: 1, finalUsage: 0, finalUsageFailed: [failure] });
    });

    it.each([
      ['2026-11-02T10:09:59.999Z', 0],
      ['2026-11-02T10:10:00.000Z', 1],
    ])('with the default 10-minute grace period, at %s seals %d bucket(s) of the 09:00 hour', async (now, count) => {
      const { ledger, api, run } = setup(new Date(now));
      const bucket = licenseBucket({ status: 'open' });
      api.customer(bucket);
      ledger.put(bucket);
      const report = await run();
      expect(report.sealed).toBe(count);
      expect(report.metered).toBe(count);
    });
  });

  it('sends license-mode records without ProductCode and legacy ones with it, stamped at the hour start', async () => {
    const { api, sealed, run } = setup();
    sealed(licenseBucket({ quantity: 4 }), legacyBucket({ quantity: 6 }));

    await run();

    const license = api.calls.find((c) => c.call.productCode === undefined)!;
    const legacy = api.calls.find((c) => c.call.productCode === 'prod-legacy')!;
    expect(license.call.records).toEqual([
      { Timestamp: new Date(LAST_HOUR), Dimension: 'requests', Quantity: 4, CustomerAWSAccountId: '111122223333', LicenseArn: expect.stringContaining('l-0123') },
    ]);
    expect(legacy.call.records).toEqual([{ Timestamp: new Date(LAST_HOUR), Dimension: 'requests', Quantity: 6, CustomerIdentifier: 'cust-legacy-1' }]);
  });

  it('bills exactly once across a crash between AWS answering and the outcome being stored', async () => {
    const { clock, ledger, api, sealed, run } = setup();
    const buckets = sealed(nthLicenseBucket(1, { quantity: 5 }), nthLicenseBucket(2, { quantity: 7 }), nthLicenseBucket(3, { quantity: 11 }));
    // The function dies with the answer in hand: none of the three outcomes is stored.
    ledger.crashOnRecordMetered = 3;

    await expect(run()).rejects.toThrow(/timed out/);
    // AWS billed all three in the one call; nothing was stored as metered: every bucket is still sealed.
    expect(api.calls).toHaveLength(1);
    expect(api.billed.size).toBe(3);
    const firstIds = new Map([...api.billed.values()].map((b) => [b.quantity, b.meteringRecordId]));
    expect(ledger.withStatus('sealed')).toHaveLength(3);

    clock.time += 5 * 60_000;
    const report = await run();

    expect(report.metered).toBe(3);
    // AWS saw every record twice, identical, and answered the same MeteringRecordId.
    const sent = api.sentRecords();
    expect(sent).toHaveLength(6);
    for (const b of buckets) {
      const copies = sent.filter((r) => r.Quantity === b.quantity);
      expect(copies).toHaveLength(2);
      expect(copies[0]).toEqual(copies[1]);
      expect(ledger.get(b.bucketKey).meteringRecordId).toBe(firstIds.get(b.quantity));
    }
    expect(api.billed.size).toBe(3);
    expect(api.billedQuantity()).toBe(5 + 7 + 11);
    expect(api.calls).toHaveLength(2);
  });

  describe('a request-level error is isolated to the record at fault', () => {
    it.each([0, 12, 24])('25 records, the one at %d with an unknown dimension: 24 metered, 1 dead-lettered, few calls', async (poisonAt) => {
      const { ledger, deadLetters, api, sealed, run } = setup();
      const buckets = sealed(...Array.from({ length: 25 }, (_, i) => nthLicenseBucket(i + 1, { dimension: i === poisonAt ? 'not-a-dimension' : 'requests', quantity: i + 1 })));
      const poison = buckets[poisonAt];

      const report = await run();

      expect(report).toMatchObject({ metered: 24, deadLettered: 1, deferred: 0 });
      expect(api.billed.size).toBe(24);
      expect(deadLetters.letters).toHaveLength(1);
      expect(deadLetters.letters[0]).toMatchObject({ reason: 'InvalidUsageDimensionException', bucket: { bucketKey: poison.bucketKey }, record: { Dimension: 'not-a-dimension' } });
      expect(ledger.get(poison.bucketKey)).toMatchObject({ status: 'failed', failure: { reason: 'InvalidUsageDimensionException' } });
      expect(ledger.withStatus('metered')).toHaveLength(24);
      // Halving: about 2 log2(25) + 1 calls, not one per record.
      expect(report.calls).toBe(api.calls.length);
      expect(report.calls).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(25)) + 1);
      expect(report.calls).toBeGreaterThan(1);
    });

    it('halves over what the error is about: one unknown dimension among 25 records costs 3 calls, not 2 log2(25)', async () => {
      const { deadLetters, api, sealed, run } = setup();
      sealed(...Array.from({ length: 25 }, (_, i) => nthLicenseBucket(i + 1, { dimension: i === 17 ? 'not-a-dimension' : 'requests' })));
      const report = await run();
      expect(report).toMatchObject({ metered: 24, deadLettered: 1, calls: 3 });
      expect(api.calls.map((c) => [c.outcome, c.call.records.length])).toEqual([
        ['InvalidUsageDimensionException', 25],
        ['answered', 24],
        ['InvalidUsageDimensionException', 1],
      ]);
      expect(deadLetters.letters.map((l) => l.record?.Dimension)).toEqual(['not-a-dimension']);
    });

    it('refuses a request whose records all share what the error is about at once: every record dead-lettered, one call', async () => {
      const { deadLetters, api, sealed, run } = setup();
      // One hour: a timestamp error is about all of them.
      const buckets = sealed(...Array.from({ length: 6 }, (_, i) => nthLicenseBucket(i + 1)));
      api.failNext = [outOfBounds()];
      const report = await run();
      expect(report).toMatchObject({ metered: 0, deadLettered: 6, calls: 1 });
      expect(deadLetters.letters.map((l) => [l.reason, l.bucket.bucketKey]).sort()).toEqual(buckets.map((b) => ['TimestampOutOfBoundsException', b.bucketKey]).sort());
      expect(api.calls).toHaveLength(1);
    });

    it('skips a product whose code AWS refuses, and bills the other products: its buckets stay sealed, the run fails loudly', async () => {
      const { deadLetters, api, ledger, sealed, run } = setup();
      // The legacy product's bucket is first in line (its hour is the oldest).
      const refused = legacyBucket({ hourStart: '2026-11-02T08:00:00.000Z' });
      ledger.put(refused);
      sealed(...Array.from({ length: 100 }, (_, i) => nthLicenseBucket(i + 1)));
      api.failWhenSent = { error: badProductCode, picks: (r) => r.CustomerIdentifier !== undefined };
      const report = await run();
      expect(report).toMatchObject({ metered: 100, deadLettered: 0, deferred: 1, stoppedProducts: { 'prod-legacy': 'InvalidProductCodeException' } });
      expect(report.stoppedBy).toBeUndefined();
      expect(ledger.get(refused.bucketKey).status).toBe('sealed');
      expect(deadLetters.letters).toEqual([]);
      expect(() => failIfStopped(report)).toThrow('metering skipped prod-legacy (InvalidProductCodeException)');
    });

    it.each([
      ['expired credentials', () => new MeteringApiError('ExpiredTokenException', 'The security token included in the request is expired', 400)],
      ['a clock too far off', () => new MeteringApiError('RequestExpired', 'Request has expired', 400)],
    ])('stops at %s: no record is dead-lettered, every bucket stays sealed for the next run', async (_, error) => {
      const { deadLetters, api, ledger, sealed, run } = setup();
      sealed(...Array.from({ length: 30 }, (_, i) => nthLicenseBucket(i + 1)));
      api.failAlways = error();
      const report = await run();
      expect(report).toMatchObject({ metered: 0, deadLettered: 0, deferred: 30, stoppedBy: error().errorName });
      // One call per request already on its way (the run sends up to 3 at once), none after.
      expect(report.calls).toBeLessThanOrEqual(2);
      expect(deadLetters.letters).toEqual([]);
      expect(ledger.withStatus('sealed')).toHaveLength(30);
      // The Lambda invocation fails, so the failed-runs alarm goes off.
      expect(() => failIfStopped(report)).toThrow(`metering stopped by ${error().errorName}`);
    });

    it('does not dead-letter records for an undocumented error that every call gets: the run stops, the buckets stay sealed', async () => {
      const { deadLetters, api, ledger, sealed, run } = setup();
      sealed(...Array.from({ length: 50 }, (_, i) => nthLicenseBucket(i + 1)));
      api.failAlways = new MeteringApiError('SomethingNewException', 'no idea', 400);
      const report = await run();
      expect(report).toMatchObject({ metered: 0, deadLettered: 0, deferred: 50, stoppedBy: 'SomethingNewException' });
      expect(deadLetters.letters).toEqual([]);
      expect(ledger.withStatus('sealed')).toHaveLength(50);
      // Halving stops after a few single records were refused with no call answered.
      expect(report.calls).toBeLessThan(40);
    });

    it('dead-letters the record an undocumented error is about once other calls got through', async () => {
      const { deadLetters, api, ledger, sealed, run } = setup();
      // The bad record first: its half is refused down to the record before any call is answered.
      const buckets = sealed(...Array.from({ length: 25 }, (_, i) => nthLicenseBucket(i + 1, { quantity: i + 1 })));
      api.failWhenSent = { error: () => new MeteringApiError('SomethingNewException', 'no idea', 400), picks: (r) => r.Quantity === 1 };
      const report = await run();
      expect(report).toMatchObject({ metered: 24, deadLettered: 1, deferred: 0 });
      expect(report.stoppedBy).toBeUndefined();
      expect(deadLetters.letters.map((l) => [l.reason, l.bucket.bucketKey])).toEqual([['SomethingNewException', buckets[0].bucketKey]]);
      expect(ledger.get(buckets[0].bucketKey)).toMatchObject({ status: 'failed' });
      expect(failIfStopped(report)).toBe(report);
      // A leaving customer's final usage that could not be sealed fails the run too (the alarm).
      const failed = { ...report, finalUsageFailed: [{ customerKey: 'license#l-1', dueAt: NOW.toISOString(), message: 'ValidationException: too big', givenUp: false }] };
      expect(() => failIfStopped(failed)).toThrow('the final usage of license#l-1 (ValidationException: too big) could not be sealed');
    });

    it('still halves record by record for an error about one record (allocations): 25 records, one call per level', async () => {
      const { deadLetters, api, sealed, run } = setup();
      sealed(...Array.from({ length: 25 }, (_, i) => nthLicenseBucket(i + 1)));
      api.failNext = [badAllocations()];
      const report = await run();
      // The error came once: the halves then succeed, so no record was at fault after all.
      expect(report).toMatchObject({ metered: 25, deadLettered: 0, calls: 3 });
      expect(api.calls.map((c) => c.call.records.length)).toEqual([25, 13, 12]);
      expect(deadLetters.letters).toEqual([]);
    });

    it('isolates two bad records in different halves', async () => {
      const { deadLetters, api, sealed, run } = setup();
      sealed(...Array.from({ length: 25 }, (_, i) => nthLicenseBucket(i + 1, { dimension: i === 3 || i === 20 ? 'bad' : 'requests' })));
      const report = await run();
      expect(report).toMatchObject({ metered: 23, deadLettered: 2 });
      expect(deadLetters.letters.map((l) => l.reason)).toEqual(['InvalidUsageDimensionException', 'InvalidUsageDimensionException']);
      expect(api.billed.size).toBe(23);
    });

    describe('a licence that became active during the hour', () => {
      // Subscribed at 08:30:00, registered at 08:31:15: AWS refuses records stamped before 08:30.
      const ACTIVE = new Date('2026-11-02T08:30:00.000Z');
      const REGISTERED = '2026-11-02T08:31:15.000Z';
      const newcomer = () => {
        const first = nthLicenseBucket(1, { hourStart: '2026-11-02T08:00:00.000Z', quantity: 3 });
        const second = nthLicenseBucket(1, { hourStart: LAST_HOUR, quantity: 9 });
        return { first, second };
      };

      it('bills its first hour, stamped when the customer registered', async () => {
        const { api, ledger, run } = setup();
        const { first, second } = newcomer();
        api.customer(first, true, ACTIVE);
        ledger.put(first, second);
        const report = await run({ registeredAt: new Map([[first.customerKey, REGISTERED]]) });
        expect(report).toMatchObject({ metered: 2, deadLettered: 0 });
        expect(api.sentRecords().map((r) => [r.Timestamp.toISOString(), r.Quantity])).toEqual([
          [REGISTERED, 3],
          [LAST_HOUR, 9],
        ]);
      });

      it('not registered (the seller bills it from the lifecycle\'s Subscribed event): its first hour is stamped when a licence notification showed it active', async () => {
        const { api, ledger, run } = setup();
        const { first, second } = newcomer();
        api.customer(first, true, ACTIVE);
        ledger.put(first, second);
        const NOTIFIED = '2026-11-02T08:30:01.000Z';
        const report = await run({ activeSince: new Map([[first.customerKey, NOTIFIED]]) });
        expect(report).toMatchObject({ metered: 2, deadLettered: 0 });
        expect(api.sentRecords().map((r) => r.Timestamp.toISOString())).toEqual([NOTIFIED, LAST_HOUR]);
      });

      it('registered and notified: stamped at the earlier of the two', async () => {
        const { api, ledger, run } = setup();
        const { first, second } = newcomer();
        api.customer(first, true, ACTIVE);
        ledger.put(first, second);
        const NOTIFIED = '2026-11-02T08:30:01.000Z';
        await run({ registeredAt: new Map([[first.customerKey, REGISTERED]]), activeSince: new Map([[first.customerKey, NOTIFIED]]) });
        expect(api.sentRecords()[0].Timestamp.toISOString()).toBe(NOTIFIED);
      });

      it('without a registration time, loses only the refused hour: the licence\'s other hour in the request is billed', async () => {
        const { api, ledger, deadLetters, run } = setup();
        const { first, second } = newcomer();
        api.customer(first, true, ACTIVE);
        ledger.put(first, second);
        const report = await run();
        expect(report).toMatchObject({ metered: 1, deadLettered: 1 });
        expect(ledger.get(second.bucketKey).status).toBe('metered');
        expect(deadLetters.letters.map((l) => [l.reason, l.bucket.bucketKey])).toEqual([['InvalidLicenseException', first.bucketKey]]);
      });
    });

    it('dead-letters a record whose licence AWS refuses, and bills the others', async () => {
      const { deadLetters, api, ledger, run } = setup();
      const good = [nthLicenseBucket(1), nthLicenseBucket(2), nthLicenseBucket(3)];
      const stranger = nthLicenseBucket(4);
      for (const b of good) api.customer(b);
      ledger.put(...good, stranger);
      const report = await run();
      expect(report).toMatchObject({ metered: 3, deadLettered: 1 });
      expect(deadLetters.letters[0]).toMatchObject({ reason: 'InvalidLicenseException', bucket: { bucketKey: stranger.bucketKey } });
    });
  });

  describe('retries', () => {
    it('backs off after throttling, then succeeds', async () => {
      const { clock, api, sealed, run } = setup();
      sealed(nthLicenseBucket(1), nthLicenseBucket(2));
      api.failNext = [throttling(), throttling()];

      const report = await run();

      expect(report).toMatchObject({ metered: 2, deferred: 0, calls: 3 });
      // Full jitter with the injected draw 0.5: half of 100 ms, then half of 200 ms.
      expect(clock.sleeps).toEqual([50, 100]);
      expect(api.calls[2].at - api.calls[0].at).toBe(150);
    });

    it('retries a 5xx', async () => {
      const { api, sealed, run } = setup();
      sealed(nthLicenseBucket(1));
      api.failNext = [serverError()];
      expect(await run()).toMatchObject({ metered: 1, calls: 2 });
    });

    it('resends unprocessed records, and only them, unchanged', async () => {
      const { ledger, api, sealed, run } = setup();
      const buckets = sealed(nthLicenseBucket(1, { quantity: 1 }), nthLicenseBucket(2, { quantity: 2 }), nthLicenseBucket(3, { quantity: 3 }));
      api.unprocessed = [(r) => r.Quantity === 2];

      const report = await run();

      expect(report).toMatchObject({ metered: 3, deferred: 0, calls: 2 });
      expect(api.calls[1].call.records).toEqual([api.calls[0].call.records.find((r) => r.Quantity === 2)]);
      expect(ledger.get(buckets[1].bucketKey).status).toBe('metered');
      expect(ledger.get(buckets[1].bucketKey).attempts).toBe(2);
      expect(ledger.get(buckets[0].bucketKey).attempts).toBe(1);
    });

    it('leaves the records for the next run when the attempts run out', async () => {
      const { ledger, deadLetters, api, sealed, run } = setup();
      const buckets = sealed(nthLicenseBucket(1), nthLicenseBucket(2));
      api.failAlways = throttling();

      const report = await run({ settings: { maxAttempts: 3 } });

      expect(report).toMatchObject({ metered: 0, deadLettered: 0, deferred: 2, calls: 3 });
      expect(deadLetters.letters).toEqual([]);
      for (const b of buckets) expect(ledger.get(b.bucketKey)).toMatchObject({ status: 'sealed', attempts: 3 });

      api.failAlways = undefined;
      expect(await run()).toMatchObject({ metered: 2, deferred: 0 });
    });
  });

  describe('deadline', () => {
    it('makes no call at or after the deadline, even when a backoff crosses it, and defers the rest', async () => {
      const { clock, ledger, api, sealed, run } = setup();
      // Two requests: 25 + 5 records.
      sealed(...Array.from({ length: 30 }, (_, i) => nthLicenseBucket(i + 1)));
      api.failAlways = throttling();
      const deadline = new Date(clock.now() + 1000);

      const report = await run({ deadline, random: () => 0.999, settings: { maxAttempts: 10 } });

      expect(api.calls.length).toBeGreaterThan(1);
      for (const call of api.calls) expect(call.at).toBeLessThan(deadline.getTime());
      expect(report).toMatchObject({ metered: 0, deferred: 30 });
      expect(ledger.withStatus('sealed')).toHaveLength(30);
    });

    it('takes no new work once the deadline has passed, but still seals', async () => {
      const { ledger, api, run } = setup();
      const bucket = licenseBucket({ status: 'open' });
      api.customer(bucket);
      ledger.put(bucket);

      const report = await run({ deadline: new Date(NOW.getTime() - 1) });

      expect(report).toEqual({ sealed: 1, usageRejected: 0, duplicates: 0, metered: 0, deadLettered: 0, deferred: 1, held: 0, zeroRecords: 0, finalUsage: 0, finalUsageWithdrawn: 0, calls: 0 });
      expect(api.calls).toEqual([]);
      expect(ledger.get(bucket.bucketKey).status).toBe('sealed');
    });
  });

  describe('stopping', () => {
    it('stops at DisabledApiException and defers everything, without dead-lettering', async () => {
      const { ledger, deadLetters, api, sealed, run } = setup();
      sealed(nthLicenseBucket(1), nthLicenseBucket(2), legacyBucket());
      api.failAlways = disabled();

      // One request at a time: with several in flight, each may get its own DisabledApiException.
      const report = await run({ settings: { concurrentRequests: 1 } });

      expect(report).toEqual({ sealed: 0, usageRejected: 0, duplicates: 0, metered: 0, deadLettered: 0, deferred: 3, held: 0, zeroRecords: 0, finalUsage: 0, finalUsageWithdrawn: 0, calls: 1, stoppedBy: 'DisabledApiException' });
      expect(deadLetters.letters).toEqual([]);
      expect(ledger.withStatus('sealed')).toHaveLength(3);
    });

    it('makes no further call once stopped, also halfway through isolating a bad record', async () => {
      const { api, sealed, run } = setup();
      sealed(...Array.from({ length: 4 }, (_, i) => nthLicenseBucket(i + 1)));
      api.failNext = [badAllocations()];
      api.failAlways = disabled();

      const report = await run();

      expect(api.calls.map((c) => c.outcome)).toEqual(['InvalidUsageAllocationsException', 'DisabledApiException']);
      expect(report).toMatchObject({ stoppedBy: 'DisabledApiException', calls: 2, deferred: 4, deadLettered: 0 });
    });
  });

  describe('dead letters without a call', () => {
    it('dead-letters a bucket outside the 24-hour billing window', async () => {
      const { ledger, deadLetters, api, sealed, run } = setup();
      const [old, fresh] = sealed(licenseBucket({ hourStart: '2026-11-01T09:00:00.000Z' }), nthLicenseBucket(2));

      const report = await run();

      expect(report).toMatchObject({ metered: 1, deadLettered: 1, calls: 1 });
      expect(api.sentRecords()).toHaveLength(1);
      expect(api.sentRecords()[0].LicenseArn).toBe(fresh.licenseArn);
      expect(deadLetters.letters).toEqual([{ reason: 'TimestampOutOfBounds', message: expect.stringContaining('2026-11-01T09:00'), bucket: expect.objectContaining({ bucketKey: old.bucketKey }), record: undefined }]);
      expect(ledger.get(old.bucketKey)).toMatchObject({ status: 'failed', failure: { reason: 'TimestampOutOfBounds' } });
    });

    it('dead-letters last month\'s bucket after 06:00 UTC on the 1st, though it is less than 24 h old', async () => {
      const { deadLetters, api, sealed, run } = setup(new Date('2026-12-01T06:20:00Z'));
      sealed(licenseBucket({ hourStart: '2026-11-30T23:00:00.000Z' }));
      expect(await run()).toMatchObject({ deadLettered: 1, calls: 0 });
      expect(api.calls).toEqual([]);
      expect(deadLetters.letters[0].reason).toBe('TimestampOutOfBounds');
    });

    it('dead-letters a bucket whose allocations exceed its quantity', async () => {
      const { deadLetters, api, sealed, run } = setup();
      sealed(licenseBucket({ quantity: 3, allocations: { [tagSetKey({ team: 'a' })]: 5 } }));
      expect(await run()).toMatchObject({ deadLettered: 1, calls: 0 });
      expect(api.calls).toEqual([]);
      expect(deadLetters.letters[0]).toMatchObject({ reason: 'InvalidRecord', message: expect.stringMatching(/exceed/) });
    });
  });

  describe('final record statuses', () => {
    it('dead-letters DuplicateRecord, and CustomerNotSubscribed for a customer who left, with their reason; meters the others', async () => {
      const { ledger, deadLetters, api, sealed, run } = setup();
      const [ok] = sealed(nthLicenseBucket(1, { quantity: 3 }));
      const gone = nthLicenseBucket(2, { quantity: 4 });
      api.customer(gone, false);
      ledger.put(gone);
      const [dup] = sealed(nthLicenseBucket(3, { quantity: 9 }));
      // AWS already holds another quantity for that customer's hour.
      const built = meteringRecordOf(dup);
      if (!built.ok) throw new Error(built.message);
      api.preBill({ ...built.record, Quantity: 8 });
      // Lifecycle says the customer is unsubscribing, inside the final window: send, and believe AWS's answer.
      const leaving = new Map<string, StoredSubscription>([
        [gone.customerKey, { status: 'unsubscribe-pending', finalUsageUntil: new Date(NOW.getTime() + 3_600_000).toISOString() }],
      ]);

      const report = await run({ subscriptions: leaving });

      expect(report).toMatchObject({ metered: 1, deadLettered: 2, held: 0, deferred: 0, calls: 1 });
      expect(ledger.get(ok.bucketKey).status).toBe('metered');
      expect(ledger.get(gone.bucketKey)).toMatchObject({ status: 'failed', failure: { reason: 'CustomerNotSubscribed' } });
      expect(ledger.get(dup.bucketKey)).toMatchObject({ status: 'failed', failure: { reason: 'DuplicateRecord' } });
      const reasons = Object.fromEntries(deadLetters.letters.map((l) => [l.bucket.bucketKey, l.reason]));
      expect(reasons).toEqual({ [gone.bucketKey]: 'CustomerNotSubscribed', [dup.bucketKey]: 'DuplicateRecord' });
      expect(deadLetters.letters.every((l) => l.record !== undefined)).toBe(true);
      // The first quantity stays billed.
      expect(api.billedQuantity()).toBe(3 + 8);
    });

    it('holds the usage of a customer AWS does not see as subscribed yet, and dead-letters it once the hour leaves the window', async () => {
      const { ledger, deadLetters, api, sealed, run } = setup();
      const [early] = sealed(nthLicenseBucket(1, { quantity: 5 }));
      api.customer(early, false);

      const first = await run();
      expect(first).toMatchObject({ metered: 0, deadLettered: 0, held: 1, calls: 1 });
      expect(ledger.get(early.bucketKey)).toMatchObject({ status: 'sealed', lastOutcome: 'CustomerNotSubscribed' });
      expect(deadLetters.letters).toEqual([]);

      // Still not subscribed a day later: the hour can no longer be billed.
      const report = await run({ now: new Date(NOW.getTime() + 25 * 3_600_000) });
      expect(report).toMatchObject({ deadLettered: 1, calls: 0 });
      expect(deadLetters.letters[0]).toMatchObject({ reason: 'CustomerNotSubscribed', bucket: { bucketKey: early.bucketKey } });
    });

    it('bills held usage once the customer is subscribed', async () => {
      const { ledger, api, sealed, run } = setup();
      const [early] = sealed(nthLicenseBucket(1, { quantity: 5 }));
      api.customer(early, false);
      expect(await run()).toMatchObject({ held: 1 });
      api.customer(early, true);
      expect(await run()).toMatchObject({ metered: 1, held: 0 });
      expect(ledger.get(early.bucketKey).status).toBe('metered');
      expect(api.billedQuantity()).toBe(5);
    });

    it('does not send usage of a customer whose final window closed, nor of a pending one', async () => {
      const { ledger, deadLetters, api, sealed, run } = setup();
      const [closed, pending] = sealed(nthLicenseBucket(1), nthLicenseBucket(2));
      const states = new Map<string, StoredSubscription>([
        [closed.customerKey, { status: 'unsubscribed', finalUsageUntil: new Date(NOW.getTime() - 60_000).toISOString() }],
        [pending.customerKey, { status: 'pending' }],
      ]);

      const report = await run({ subscriptions: states });

      expect(report).toMatchObject({ deadLettered: 1, held: 1, calls: 0 });
      expect(api.calls).toEqual([]);
      expect(deadLetters.letters[0]).toMatchObject({ reason: 'CustomerNotSubscribed', bucket: { bucketKey: closed.bucketKey } });
      expect(ledger.get(pending.bucketKey).status).toBe('sealed');
    });
  });

  describe('pace', () => {
    const maxCallsInAnySecond = (times: number[]) =>
      Math.max(...times.map((t) => times.filter((u) => u >= t && u < t + 1000).length));

    it('keeps under 10 calls per second (9 by default) over 20 requests', async () => {
      const { api, sealed, run } = setup();
      sealed(...Array.from({ length: 500 }, (_, i) => nthLicenseBucket(i + 1)));

      const report = await run();

      expect(report).toMatchObject({ metered: 500, calls: 20 });
      const times = api.calls.map((c) => c.at);
      expect(maxCallsInAnySecond(times)).toBe(9);
      for (let i = 0; i + 9 < times.length; i++) expect(times[i + 9] - times[i]).toBeGreaterThanOrEqual(1000);
    });

    it('counts retries against the same budget', async () => {
      const { api, sealed, run } = setup();
      sealed(...Array.from({ length: 100 }, (_, i) => nthLicenseBucket(i + 1)));
      api.failNext = [throttling(), throttling(), throttling(), serverError(), throttling()];

      // One request at a time: the fake clock's sleep moves one shared clock, so concurrent backoffs
      // would each move it for all.
      const report = await run({ settings: { callsPerSecond: 2, concurrentRequests: 1 }, random: () => 0 });

      expect(report).toMatchObject({ metered: 100, calls: 9 });
      expect(maxCallsInAnySecond(api.calls.map((c) => c.at))).toBeLessThanOrEqual(2);
    });
  });
});
