/**
 * Usage to bill, end to end on real components: customers registered through our registration
 * endpoint against the AWS Marketplace simulator, usage sent with the producer client to fauxqs,
 * ingested into the usage journal in DynamoDB Local by the ingest handler, folded into hour buckets
 * of the Metering ledger and billed by the metering run through the real
 * `@aws-sdk/client-marketplace-metering` against the simulator, which bills each customer x
 * dimension x hour at most once and lists what it billed.
 */
import { CustomerSubscriptions } from '../../lambda/adapters/customer-directory';
import { DeadLetterQueue } from '../../lambda/adapters/dead-letter-queue';
import { meteringEngineClient, sdkMeteringApi } from '../../lambda/adapters/metering-api';
import { DynamoDbMeteringLedger } from '../../lambda/adapters/metering-ledger';
import { MeteringPorts } from '../../lambda/core/metering/metering-run';
import { ProductConfig } from '../../lambda/core/product-config';
import { utcHourStart } from '../../lambda/core/utc-hour';
import { tagSetKey } from '../../lambda/core/usage/usage-rules';
import { meteringDeadLetters, meterNow } from '../../lambda/metering/metering-job';
import { LOCAL_CREDENTIALS } from '../../local/services';
import {
  BilledRecord,
  Customer,
  HOUR_MS,
  inUsageHour,
  METER_USAGE_HOUR,
  useMeteringEnvironment,
  USAGE_HOUR,
} from '../support/metering-environment';

/** The stack sells a `gpu_hours` dimension that the listing on AWS Marketplace does not have (a misconfiguration). */
const LICENSE_PRODUCT: ProductConfig = { productCode: 'metered-license', identityMode: 'license', dimensions: ['requests', 'storage_gb', 'gpu_hours'] };
const LEGACY_PRODUCT: ProductConfig = { productCode: 'metered-legacy', identityMode: 'legacy', dimensions: ['seats'] };

const env = useMeteringEnvironment({
  stackProducts: [LICENSE_PRODUCT, LEGACY_PRODUCT],
  simulatorProducts: [
    { productCode: LICENSE_PRODUCT.productCode, identityMode: 'license', dimensions: ['requests', 'storage_gb'] },
    { productCode: LEGACY_PRODUCT.productCode, identityMode: 'legacy', dimensions: ['seats'] },
  ],
});

const usage = (customer: Customer, dimension: string, quantity: number, extra: Record<string, unknown> = {}) => ({
  ...env.identityOf(customer),
  dimension,
  quantity,
  timestamp: inUsageHour(30),
  ...extra,
});

/** The simulator's billed records for a customer (by licence, or legacy identifier). */
const recordsOf = (records: BilledRecord[], customer: Customer) =>
  records.filter((r) => (customer.identityMode === 'license' ? r.licenseArn === customer.licenseArn : r.customerIdentifier === customer.customerIdentifier));

/** Each customer x dimension x hour billed at most once: no two records share one. */
function expectNoDuplicateBilling(records: BilledRecord[]): void {
  const keys = records.map((r) => [r.productCode, r.licenseArn ?? r.customerIdentifier, r.dimension, r.hour].join('|'));
  expect(new Set(keys).size).toBe(keys.length);
}

const sortAllocations = (allocations: BilledRecord['allocations'] = []) =>
  [...allocations].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

describe('metering against the simulator, DynamoDB Local and fauxqs', () => {
  test('usage → journal → hour buckets → one Success per customer x dimension x hour, with the summed quantity and allocations', async () => {
    const alice = await env.newCustomer(LICENSE_PRODUCT.productCode);
    const bob = await env.newCustomer(LICENSE_PRODUCT.productCode);
    const legacy = await env.newCustomer(LEGACY_PRODUCT.productCode);
    expect(legacy.customerKey).toBe(`legacy#${LEGACY_PRODUCT.productCode}#${legacy.customerIdentifier}`);

    const currentHourEvent = usage(bob, 'requests', 100, { timestamp: new Date().toISOString() });
    await env.send(
      [
        usage(alice, 'requests', 5, { allocations: [{ quantity: 5, tags: { team: 'red' } }], timestamp: inUsageHour(1) }),
        usage(alice, 'requests', 7, { allocations: [{ quantity: 7, tags: { team: 'blue' } }], timestamp: inUsageHour(20) }),
        usage(alice, 'requests', 11, { timestamp: inUsageHour(40) }),
        // Tag order does not matter: the same tag set as the first event's, summed with it.
        usage(alice, 'requests', 3, { allocations: [{ quantity: 2, tags: { team: 'red' } }, { quantity: 1, tags: { env: 'prod', team: 'blue' } }], timestamp: inUsageHour(59) }),
        usage(alice, 'storage_gb', 1),
        usage(alice, 'storage_gb', 2),
        usage(bob, 'requests', 4),
        usage(legacy, 'seats', 9),
        usage(legacy, 'seats', 1, { timestamp: inUsageHour(59.9) }),
        currentHourEvent,
      ],
      2, // two events per message: five messages, ingested in separate batches
    );
    expect(await env.drain()).toBeGreaterThanOrEqual(1);
    expect(env.ingested()).toEqual({ messages: 5, counted: 10, duplicates: 0, rolledOver: 0, rejected: 0 });

    // Journaled in their hours, as sent; no bucket before the metering run folds the hour.
    const journaled = await env.journalEvents(USAGE_HOUR);
    expect(journaled).toHaveLength(9);
    // (Entries come back in message id order, which SQS chose: compare by quantity.)
    const aliceRequests = journaled.filter((e) => e.customerKey === alice.customerKey && e.dimension === 'requests');
    expect(aliceRequests.map((e) => [e.quantity, e.allocations]).sort(([a], [b]) => Number(a) - Number(b))).toEqual([
      [3, { [tagSetKey({ team: 'red' })]: 2, [tagSetKey({ env: 'prod', team: 'blue' })]: 1 }],
      [5, { [tagSetKey({ team: 'red' })]: 5 }],
      [7, { [tagSetKey({ team: 'blue' })]: 7 }],
      [11, undefined],
    ]);
    expect(journaled.filter((e) => e.customerKey === legacy.customerKey).map((e) => e.quantity).sort((a, b) => a - b)).toEqual([1, 9]);
    expect(await env.buckets()).toEqual([]);

    const report = await env.meterAt(METER_USAGE_HOUR);
    expect(report).toMatchObject({ sealed: 4, metered: 4, deadLettered: 0, deferred: 0, calls: 2 });

    const records = await env.billed();
    expect(records).toHaveLength(4);
    expectNoDuplicateBilling(records);
    const hour = USAGE_HOUR.toISOString();
    const [aliceRequestsRecord] = recordsOf(records, alice).filter((r) => r.dimension === 'requests');
    expect(aliceRequestsRecord).toMatchObject({
      productCode: LICENSE_PRODUCT.productCode,
      licenseArn: alice.licenseArn,
      customerAWSAccountId: alice.customerAWSAccountId,
      hour,
      // In this hour, never before the registration: these buyers subscribed in it (simulator time)
      // but registered later (real time), so their records carry its last second.
      timestamp: new Date(USAGE_HOUR.getTime() + HOUR_MS - 1000).toISOString(),
      quantity: 26,
    });
    expect(aliceRequestsRecord.customerIdentifier).toBeUndefined();
    expect(sortAllocations(aliceRequestsRecord.allocations)).toEqual(
      sortAllocations([
        { AllocatedUsageQuantity: 7, Tags: [{ Key: 'team', Value: 'red' }] },
        { AllocatedUsageQuantity: 7, Tags: [{ Key: 'team', Value: 'blue' }] },
        { AllocatedUsageQuantity: 1, Tags: [{ Key: 'env', Value: 'prod' }, { Key: 'team', Value: 'blue' }] },
        // Usage reported without allocations: one untagged allocation, so they add up to the quantity.
        { AllocatedUsageQuantity: 11 },
      ]),
    );
    expect(recordsOf(records, alice).find((r) => r.dimension === 'storage_gb')).toMatchObject({ quantity: 3, hour });
    expect(recordsOf(records, alice).find((r) => r.dimension === 'storage_gb')!.allocations).toBeUndefined();
    expect(recordsOf(records, bob)).toEqual([expect.objectContaining({ dimension: 'requests', quantity: 4, hour })]);
    expect(recordsOf(records, legacy)).toEqual([
      expect.objectContaining({ productCode: LEGACY_PRODUCT.productCode, customerIdentifier: legacy.customerIdentifier, dimension: 'seats', quantity: 10, hour }),
    ]);
    expect(recordsOf(records, legacy)[0].licenseArn).toBeUndefined();

    // One request per product and identity mode, never mixed.
    const calls = await env.meteringCalls();
    expect(calls.map((c) => [c.outcome, c.recordCount]).sort()).toEqual([['Success', 1], ['Success', 3]]);

    // The ledger holds each bucket as the fold wrote it (quantity, events folded), with its outcome
    // and the simulator's MeteringRecordId.
    const usageEvents: Record<string, number> = {
      [`${alice.customerKey}|requests`]: 4,
      [`${alice.customerKey}|storage_gb`]: 2,
      [`${bob.customerKey}|requests`]: 1,
      [`${legacy.customerKey}|seats`]: 2,
    };
    for (const record of records) {
      const customer = [alice, bob, legacy].find((c) => recordsOf([record], c).length === 1)!;
      expect(await env.bucket(customer, record.dimension, USAGE_HOUR)).toMatchObject({
        status: 'metered',
        outcome: 'Success',
        meteringRecordId: record.meteringRecordId,
        quantity: record.quantity,
        usageEvents: usageEvents[`${customer.customerKey}|${record.dimension}`],
        attempts: 1,
        sealedAt: METER_USAGE_HOUR.toISOString(),
      });
    }
    expect(await env.bucket(alice, 'requests', USAGE_HOUR)).toMatchObject({
      [`alloc#${tagSetKey({ team: 'red' })}`]: 7,
      [`alloc#${tagSetKey({ team: 'blue' })}`]: 7,
      [`alloc#${tagSetKey({ env: 'prod', team: 'blue' })}`]: 1,
    });
    // The current hour is not over: its usage waits in the journal, not folded, for a later run.
    const currentHour = utcHourStart(new Date(currentHourEvent.timestamp));
    expect(await env.journalEvents(currentHour)).toEqual([
      expect.objectContaining({ customerKey: bob.customerKey, dimension: 'requests', quantity: 100, hourStart: currentHour.toISOString() }),
    ]);
    expect(await env.bucket(bob, 'requests', currentHour)).toBeUndefined();
    expect(recordsOf(records, bob).some((r) => r.quantity === 100)).toBe(false);

    // A second run at the same time has nothing to do.
    expect(await env.meterAt(METER_USAGE_HOUR)).toMatchObject({ sealed: 0, metered: 0, deadLettered: 0, deferred: 0, calls: 0 });
    expect(await env.billed()).toHaveLength(4);
    expect(await env.usageDeadLetters()).toEqual([]);
    expect(await env.meteringDeadLetters()).toEqual([]);
  });

  test('the same events sent twice (same eventIds), also after their hour was billed: folded into the bucket once and billed once', async () => {
    const customer = await env.newCustomer(LICENSE_PRODUCT.productCode);
    const events = [1, 2, 3, 4, 5].map((q) => usage(customer, 'requests', q, { eventId: `order-${q}`, timestamp: inUsageHour(q * 10) }));
    await env.send(events);
    await env.drain();
    await env.send(events);
    await env.drain();
    // Two messages (the producer sent the events again): each journaled; the eventIds are
    // de-duplicated when the hour is folded.
    expect(env.ingested()).toEqual({ messages: 2, counted: 10, duplicates: 0, rolledOver: 0, rejected: 0 });
    const journaled = await env.journalEvents(USAGE_HOUR);
    expect(new Set(journaled.map((e) => e.messageId)).size).toBe(2);
    const eventIds = [1, 2, 3, 4, 5].map((q) => `order-${q}`);
    expect(journaled.map((e) => e.eventId).sort()).toEqual([...eventIds, ...eventIds].sort());

    expect(await env.meterAt(METER_USAGE_HOUR)).toMatchObject({ sealed: 1, duplicates: 5, metered: 1, deadLettered: 0 });
    expect(await env.bucket(customer, 'requests', USAGE_HOUR)).toMatchObject({ quantity: 15, usageEvents: 5, status: 'metered' });

    // Sent once more after the hour was sealed and billed: journaled as late usage of the current
    // hour, and dropped as repeats of the eventIds their own hour counted when that hour is folded.
    await env.send(events);
    await env.drain();
    const ingestedBy = utcHourStart(new Date());
    expect(env.ingested()).toMatchObject({ messages: 3, counted: 15, rolledOver: 5 });
    expect(await env.meterAt(new Date(ingestedBy.getTime() + HOUR_MS + 15 * 60_000))).toMatchObject({ sealed: 0, duplicates: 5, metered: 0, usageRejected: 0 });
    const buckets = await env.buckets();
    expect(buckets).toHaveLength(1);
    expect(buckets[0]).toMatchObject({ hourStart: USAGE_HOUR.toISOString(), quantity: 15, usageEvents: 5, status: 'metered' });

    const records = await env.billed();
    expect(records).toEqual([expect.objectContaining({ licenseArn: customer.licenseArn, dimension: 'requests', quantity: 15 })]);
    expect(await env.usageDeadLetters()).toEqual([]);
  });

  test('a crash after BatchMeterUsage answered but before the outcomes were stored: the next run sends the same records, AWS answers with the same MeteringRecordIds, nothing is billed twice', async () => {
    const customers = [await env.newCustomer(LICENSE_PRODUCT.productCode), await env.newCustomer(LICENSE_PRODUCT.productCode)];
    await env.send(customers.flatMap((c, i) => [usage(c, 'requests', 10 + i), usage(c, 'requests', 20 + i)]));
    await env.drain();

    // The metering function's ports, built from the same adapters as the Lambda handler, except that
    // the process "dies" when it stores the first outcome.
    const ledger = new DynamoDbMeteringLedger(env.usage.documents, env.usage.meteringTableName, env.usage.journalTableName);
    const crashingLedger = Object.create(ledger) as DynamoDbMeteringLedger;
    crashingLedger.recordMetered = async () => {
      throw new Error('the metering function was killed');
    };
    const ports: MeteringPorts = {
      ledger: crashingLedger,
      deadLetters: meteringDeadLetters(new DeadLetterQueue(env.usage.sqs, env.usage.meteringDeadLetterQueueUrl)),
      api: sdkMeteringApi(meteringEngineClient({ endpoint: env.simulator.url, credentials: { ...LOCAL_CREDENTIALS } })),
      subscriptions: new CustomerSubscriptions(env.usage.documents, env.usage.customersTableName),
      clock: { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) },
    };
    await env.admin('POST', '/_admin/clock', { now: METER_USAGE_HOUR.toISOString() });
    const silent = { info: () => undefined, error: () => undefined };
    await expect(meterNow(ports, silent, { now: METER_USAGE_HOUR, deadline: new Date(Date.now() + 60_000) })).rejects.toThrow('killed');

    // AWS billed both; the ledger only knows they were sealed and sent once.
    const billedBeforeCrash = await env.billed();
    expect(billedBeforeCrash).toHaveLength(2);
    for (const customer of customers) {
      const bucket = await env.bucket(customer, 'requests', USAGE_HOUR);
      expect(bucket).toMatchObject({ status: 'sealed', attempts: 1 });
      expect(bucket!.meteringRecordId).toBeUndefined();
    }

    // The next scheduled run, with the ordinary ports.
    expect(await env.meterAt(METER_USAGE_HOUR)).toMatchObject({ sealed: 0, metered: 2, deadLettered: 0, deferred: 0, calls: 1 });
    const records = await env.billed();
    expect(records).toEqual(billedBeforeCrash);
    expect(records.map((r) => r.quantity).sort()).toEqual([30, 32]);
    for (const customer of customers) {
      const [record] = recordsOf(records, customer);
      expect(await env.bucket(customer, 'requests', USAGE_HOUR)).toMatchObject({
        status: 'metered',
        meteringRecordId: record.meteringRecordId,
        quantity: record.quantity,
        attempts: 2,
      });
    }
    expect((await env.meteringCalls()).map((c) => c.outcome)).toEqual(['Success', 'Success']);
    expect(await env.meteringDeadLetters()).toEqual([]);
  });

  test('ThrottlingException twice: retried with backoff, every record billed once', async () => {
    const customers = await Promise.all([1, 2, 3].map(() => env.newCustomer(LICENSE_PRODUCT.productCode)));
    await env.send(customers.map((c, i) => usage(c, 'requests', i + 1)));
    await env.drain();
    await env.admin('POST', '/_admin/faults', { operation: 'BatchMeterUsage', error: 'ThrottlingException', count: 2 });

    expect(await env.meterAt(METER_USAGE_HOUR)).toMatchObject({ sealed: 3, metered: 3, deadLettered: 0, deferred: 0, calls: 3 });
    expect((await env.meteringCalls()).map((c) => [c.outcome, c.recordCount])).toEqual([
      ['ThrottlingException', 3],
      ['ThrottlingException', 3],
      ['Success', 3],
    ]);
    const records = await env.billed();
    expect(records.map((r) => r.quantity).sort()).toEqual([1, 2, 3]);
    expectNoDuplicateBilling(records);
    for (const customer of customers) expect(await env.bucket(customer, 'requests', USAGE_HOUR)).toMatchObject({ status: 'metered', attempts: 3 });
  });

  test('UnprocessedRecords (half of them, twice): only those are resent, every record billed once', async () => {
    const customers = await Promise.all([1, 2, 3, 4].map(() => env.newCustomer(LICENSE_PRODUCT.productCode)));
    await env.send(customers.map((c, i) => usage(c, 'requests', i + 1)));
    await env.drain();
    await env.admin('POST', '/_admin/faults', { operation: 'BatchMeterUsage', unprocessedFraction: 0.5, count: 2 });

    expect(await env.meterAt(METER_USAGE_HOUR)).toMatchObject({ sealed: 4, metered: 4, deadLettered: 0, deferred: 0, calls: 3 });
    // 4 sent, 2 unprocessed; 2 resent, 1 unprocessed; 1 resent.
    expect((await env.meteringCalls()).map((c) => [c.outcome, c.recordCount])).toEqual([
      ['Success', 4],
      ['Success', 2],
      ['Success', 1],
    ]);
    const records = await env.billed();
    expect(records.map((r) => r.quantity).sort()).toEqual([1, 2, 3, 4]);
    expectNoDuplicateBilling(records);
    const attempts = await Promise.all(customers.map(async (c) => (await env.bucket(c, 'requests', USAGE_HOUR))!.attempts));
    expect(attempts.sort()).toEqual([1, 1, 2, 3]);
  });

  test('a batch of 25 with one record of a dimension AWS does not know: the 24 others billed, that one dead-lettered with InvalidUsageDimensionException', async () => {
    const customers: Customer[] = [];
    for (let i = 0; i < 24; i++) customers.push(await env.newCustomer(LICENSE_PRODUCT.productCode));
    const misfit = customers[7];
    await env.send([...customers.map((c, i) => usage(c, 'requests', i + 1)), usage(misfit, 'gpu_hours', 3)], 25);
    await env.drain();

    const report = await env.meterAt(METER_USAGE_HOUR);
    expect(report).toMatchObject({ sealed: 25, metered: 24, deadLettered: 1, deferred: 0 });
    const calls = await env.meteringCalls();
    expect(calls[0]).toMatchObject({ outcome: 'InvalidUsageDimensionException', recordCount: 25 });
    // Split in halves down to the culprit: never more than 2 calls per halving level.
    expect(calls.length).toBe(report.calls);
    expect(calls.length).toBeLessThanOrEqual(1 + 2 * Math.ceil(Math.log2(25)));
    expect(calls.filter((c) => c.outcome === 'InvalidUsageDimensionException').at(-1)!.recordCount).toBe(1);

    const records = await env.billed();
    expect(records).toHaveLength(24);
    expect(records.every((r) => r.dimension === 'requests')).toBe(true);
    expect(records.map((r) => r.quantity).sort((a, b) => a - b)).toEqual(customers.map((_, i) => i + 1));
    expectNoDuplicateBilling(records);

    const letters = await env.meteringDeadLetters();
    expect(letters).toEqual([
      {
        reason: 'InvalidUsageDimensionException',
        body: expect.objectContaining({
          reason: 'InvalidUsageDimensionException',
          message: expect.stringContaining('gpu_hours'),
          bucket: expect.objectContaining({ customerKey: misfit.customerKey, dimension: 'gpu_hours', quantity: 3, hourStart: USAGE_HOUR.toISOString() }),
          record: expect.objectContaining({ Dimension: 'gpu_hours', Quantity: 3, LicenseArn: misfit.licenseArn }),
        }),
      },
    ]);
    const stored = await env.bucket(misfit, 'gpu_hours', USAGE_HOUR);
    expect(stored).toMatchObject({ status: 'failed', outcome: 'InvalidUsageDimensionException' });
    // The letter's audit trail is the ledger's: the calls this run made with the record counted.
    expect(stored!.attempts).toBeGreaterThan(1);
    expect((letters[0].body as { bucket: { attempts: number } }).bucket.attempts).toBe(stored!.attempts);
    // Final: a later run does not send it again.
    const before = calls.length;
    expect(await env.meterAt(new Date(METER_USAGE_HOUR.getTime() + 5 * 60_000))).toMatchObject({ calls: 0, deadLettered: 0 });
    expect(await env.meteringCalls()).toHaveLength(before);
  });

  test('a registered customer AWS does not see as subscribed: CustomerNotSubscribed, held and resent each run, dead-lettered once the hour leaves the billing window; the other customer billed', async () => {
    const pending = await env.newCustomer(LICENSE_PRODUCT.productCode, { subscribed: false });
    const active = await env.newCustomer(LICENSE_PRODUCT.productCode);
    await env.send([usage(pending, 'requests', 6), usage(active, 'requests', 8)]);
    await env.drain();

    expect(await env.meterAt(METER_USAGE_HOUR)).toMatchObject({ sealed: 2, metered: 1, held: 1, deadLettered: 0, deferred: 0, calls: 1 });
    expect(await env.billed()).toEqual([expect.objectContaining({ licenseArn: active.licenseArn, quantity: 8 })]);
    expect(await env.bucket(pending, 'requests', USAGE_HOUR)).toMatchObject({ status: 'sealed', outcome: 'CustomerNotSubscribed', attempts: 1 });
    expect(await env.meteringDeadLetters()).toEqual([]);

    // The next run asks again (the subscription may have become active meanwhile).
    expect(await env.meterAt(new Date(METER_USAGE_HOUR.getTime() + 5 * 60_000))).toMatchObject({ sealed: 0, metered: 0, held: 1, deadLettered: 0, calls: 1 });
    expect(await env.bucket(pending, 'requests', USAGE_HOUR)).toMatchObject({ status: 'sealed', attempts: 2 });

    // Once AWS would no longer accept the hour at all: dead-lettered with the reason, without a call.
    const windowClosed = new Date(USAGE_HOUR.getTime() + 25 * HOUR_MS);
    expect(await env.meterAt(windowClosed)).toMatchObject({ metered: 0, held: 0, deadLettered: 1, calls: 0 });
    expect((await env.meteringCalls()).map((c) => [c.outcome, c.recordCount])).toEqual([
      ['Success', 2],
      ['Success', 1],
    ]);
    expect(await env.meteringDeadLetters()).toEqual([
      {
        reason: 'CustomerNotSubscribed',
        body: expect.objectContaining({
          reason: 'CustomerNotSubscribed',
          bucket: expect.objectContaining({ customerKey: pending.customerKey, quantity: 6, attempts: 2 }),
        }),
      },
    ]);
    expect(await env.bucket(pending, 'requests', USAGE_HOUR)).toMatchObject({ status: 'failed', outcome: 'CustomerNotSubscribed' });
    expect(await env.billed()).toHaveLength(1);
  });

  test('a late event for an hour already sealed and billed is counted in the current hour and billed with it', async () => {
    const customer = await env.newCustomer(LICENSE_PRODUCT.productCode);
    await env.send([usage(customer, 'requests', 5, { eventId: 'on-time' })]);
    await env.drain();
    expect(await env.meterAt(METER_USAGE_HOUR)).toMatchObject({ metered: 1 });

    await env.send([usage(customer, 'requests', 3, { eventId: 'late', timestamp: inUsageHour(45) })]);
    const ingestedFrom = utcHourStart(new Date());
    await env.drain();
    const ingestedBy = utcHourStart(new Date());
    expect(env.logLines).toContainEqual(expect.objectContaining({ message: 'usage message ingested', attributes: expect.objectContaining({ counted: 1, rolledOver: 1 }) }));

    // The billed hour is untouched; the late usage is a late entry of the current hour.
    expect(await env.bucket(customer, 'requests', USAGE_HOUR)).toMatchObject({ quantity: 5, usageEvents: 1, status: 'metered' });
    expect((await env.journalEvents(USAGE_HOUR)).map((e) => e.eventId)).toEqual(['on-time']);
    const lateHours = [...new Set([ingestedFrom.getTime(), ingestedBy.getTime()])].map((t) => new Date(t));
    const late = (await Promise.all(lateHours.map((hour) => env.journalEvents(hour)))).flat();
    expect(late).toEqual([
      expect.objectContaining({ customerKey: customer.customerKey, dimension: 'requests', quantity: 3, eventId: 'late', rolledFrom: USAGE_HOUR.toISOString() }),
    ]);
    const lateHour = new Date(late[0].hourStart);
    expect(await env.bucket(customer, 'requests', lateHour)).toBeUndefined();

    // Folding the late entry's hour bills it in that hour.
    expect(await env.meterAt(new Date(lateHour.getTime() + HOUR_MS + 15 * 60_000))).toMatchObject({ sealed: 1, metered: 1, deadLettered: 0, duplicates: 0 });
    expect(await env.bucket(customer, 'requests', lateHour)).toMatchObject({ quantity: 3, usageEvents: 1, status: 'metered', hourStart: lateHour.toISOString() });
    const records = await env.billed();
    expect(records.map((r) => [r.hour, r.quantity]).sort()).toEqual([
      [USAGE_HOUR.toISOString(), 5],
      [lateHour.toISOString(), 3],
    ]);
    expect((await env.meteringCalls()).map((c) => c.outcome)).toEqual(['Success', 'Success']);
  });
});
