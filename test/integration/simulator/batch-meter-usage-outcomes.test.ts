/**
 * BatchMeterUsage per-record outcomes: Success + MeteringRecordId, idempotent repeats, DuplicateRecord,
 * CustomerNotSubscribed (never subscribed, unsubscribed past the grace hour), legacy mode, result order,
 * UnprocessedRecords. Results are always matched to inputs by content.
 */
import { BatchMeterUsageCommand, type BatchMeterUsageCommandOutput, type UsageRecord } from '@aws-sdk/client-marketplace-metering';
import {
  ACCOUNT_A,
  EARLY,
  T0,
  at,
  describeRecord,
  legacyRecord,
  licenseRecord,
  minutesBefore,
  resultFor,
  sameRecord,
  seedWorld,
  useSimulator,
  type Customer,
  type World,
} from './helpers';

describe('BatchMeterUsage outcomes', () => {
  const ctx = useSimulator();
  let world: World;

  beforeEach(async () => {
    world = await seedWorld(ctx.admin);
  });

  const meter = (records: UsageRecord[], productCode?: string): Promise<BatchMeterUsageCommandOutput> =>
    ctx.meteringOnce.send(new BatchMeterUsageCommand({ UsageRecords: records, ...(productCode ? { ProductCode: productCode } : {}) }));

  describe('Success and de-duplication (identity x dimension x UTC hour)', () => {
    test('a first record is Success with a MeteringRecordId, and is billed as sent', async () => {
      const record = licenseRecord(world.alice, { Timestamp: at('2026-11-02T10:05:30Z'), Quantity: 42 });
      const out = await meter([record]);
      const result = resultFor(out.Results, record);
      expect(result.Status).toBe('Success');
      expect(result.MeteringRecordId).toMatch(/\S/);
      expect(out.UnprocessedRecords ?? []).toEqual([]);

      const billed = await ctx.admin.meteringRecords();
      expect(billed).toHaveLength(1);
      expect(billed[0]).toMatchObject({
        meteringRecordId: result.MeteringRecordId,
        productCode: world.lic.productCode,
        licenseArn: world.alice.licenseArn,
        customerAWSAccountId: world.alice.customerAWSAccountId,
        dimension: 'requests',
        quantity: 42,
      });
      expect(Date.parse(billed[0].hour)).toBe(Date.parse('2026-11-02T10:00:00Z'));
      expect(Date.parse(billed[0].timestamp)).toBe(Date.parse('2026-11-02T10:05:30Z'));
      expect(Date.parse(billed[0].billedAt)).toBe(T0.getTime());
    });

    test('an identical repeat is Success with the SAME MeteringRecordId and is not billed again', async () => {
      const record = licenseRecord(world.alice, { Quantity: 7 });
      const first = resultFor((await meter([record])).Results, record);
      await ctx.admin.advanceClock(600);
      const again = resultFor((await meter([record])).Results, record);
      expect(again.Status).toBe('Success');
      expect(again.MeteringRecordId).toBe(first.MeteringRecordId);
      expect(await ctx.admin.meteringRecords()).toHaveLength(1);
    });

    test('the same quantity at another minute of the same hour is the same record (same MeteringRecordId)', async () => {
      const first = licenseRecord(world.alice, { Timestamp: at('2026-11-02T10:05:00Z'), Quantity: 7 });
      const later = licenseRecord(world.alice, { Timestamp: at('2026-11-02T10:59:59Z'), Quantity: 7 });
      const a = resultFor((await meter([first])).Results, first);
      await ctx.admin.setClock(at('2026-11-02T11:00:30Z'));
      const b = resultFor((await meter([later])).Results, later);
      expect(b.Status).toBe('Success');
      expect(b.MeteringRecordId).toBe(a.MeteringRecordId);
      expect(await ctx.admin.meteringRecords()).toHaveLength(1);
    });

    test('a different quantity for the same hour is DuplicateRecord and the first quantity stays billed', async () => {
      const first = licenseRecord(world.alice, { Quantity: 5 });
      const second = licenseRecord(world.alice, { Timestamp: at('2026-11-02T10:15:00Z'), Quantity: 9 });
      expect(resultFor((await meter([first])).Results, first).Status).toBe('Success');
      const duplicate = resultFor((await meter([second])).Results, second);
      expect(duplicate.Status).toBe('DuplicateRecord');
      const billed = await ctx.admin.meteringRecords();
      expect(billed).toHaveLength(1);
      expect(billed[0].quantity).toBe(5);
    });

    test('two records for one hour in the same request are never summed: the first is billed, the other is DuplicateRecord', async () => {
      const first = licenseRecord(world.alice, { Timestamp: at('2026-11-02T10:01:00Z'), Quantity: 3 });
      const second = licenseRecord(world.alice, { Timestamp: at('2026-11-02T10:02:00Z'), Quantity: 4 });
      const out = await meter([first, second]);
      expect(resultFor(out.Results, first).Status).toBe('Success');
      expect(resultFor(out.Results, second).Status).toBe('DuplicateRecord');
      const billed = await ctx.admin.meteringRecords();
      expect(billed.map((r) => r.quantity)).toEqual([3]);
    });

    test('records of different hours are both billed, with different MeteringRecordIds', async () => {
      const nine = licenseRecord(world.alice, { Timestamp: at('2026-11-02T09:10:00Z'), Quantity: 1 });
      const ten = licenseRecord(world.alice, { Timestamp: at('2026-11-02T10:10:00Z'), Quantity: 1 });
      const out = await meter([nine, ten]);
      const a = resultFor(out.Results, nine);
      const b = resultFor(out.Results, ten);
      expect([a.Status, b.Status]).toEqual(['Success', 'Success']);
      expect(a.MeteringRecordId).not.toBe(b.MeteringRecordId);
      const billed = await ctx.admin.meteringRecords();
      expect(billed.map((r) => Date.parse(r.hour)).sort()).toEqual([Date.parse('2026-11-02T09:00:00Z'), Date.parse('2026-11-02T10:00:00Z')]);
    });

    test('different dimensions, customers and licences of one account are separate identities: all billed', async () => {
      const secondLicence = await ctx.admin.createCustomerAt(EARLY, { productCode: world.lic.productCode, customerAWSAccountId: ACCOUNT_A });
      const records = [
        licenseRecord(world.alice, { Dimension: 'requests' }),
        licenseRecord(world.alice, { Dimension: 'storage' }),
        licenseRecord(world.bob, { Dimension: 'requests' }),
        licenseRecord(secondLicence, { Dimension: 'requests' }),
      ];
      const out = await meter(records);
      const ids = records.map((record) => {
        const result = resultFor(out.Results, record);
        expect(result.Status).toBe('Success');
        return result.MeteringRecordId;
      });
      expect(new Set(ids).size).toBe(4);
      expect(await ctx.admin.meteringRecords()).toHaveLength(4);
    });

    test('usage allocations are stored with the billed record', async () => {
      const record = licenseRecord(world.alice, {
        Quantity: 10,
        UsageAllocations: [
          { AllocatedUsageQuantity: 6, Tags: [{ Key: 'team', Value: 'red' }] },
          { AllocatedUsageQuantity: 4, Tags: [{ Key: 'team', Value: 'blue' }] },
        ],
      });
      expect(resultFor((await meter([record])).Results, record).Status).toBe('Success');
      const [billed] = await ctx.admin.meteringRecords();
      expect(billed.quantity).toBe(10);
      expect(billed.allocations).toHaveLength(2);
    });
  });

  describe('legacy mode (ProductCode on the request)', () => {
    test('ProductCode + CustomerIdentifier is billed per product + customer', async () => {
      const record = legacyRecord(world.carol, { Quantity: 3 });
      const out = await meter([record], world.legacy.productCode);
      const result = resultFor(out.Results, record);
      expect(result.Status).toBe('Success');
      const billed = await ctx.admin.meteringRecords();
      expect(billed).toHaveLength(1);
      expect(billed[0]).toMatchObject({
        meteringRecordId: result.MeteringRecordId,
        productCode: world.legacy.productCode,
        customerIdentifier: world.carol.customerIdentifier,
        dimension: 'requests',
        quantity: 3,
      });
      expect(billed[0].licenseArn).toBeUndefined();
    });

    test('ProductCode + CustomerAWSAccountId is billed too', async () => {
      const record = legacyRecord(world.carol, { CustomerIdentifier: undefined, CustomerAWSAccountId: world.carol.customerAWSAccountId, Dimension: 'seats', Quantity: 2 });
      const out = await meter([record], world.legacy.productCode);
      expect(resultFor(out.Results, record).Status).toBe('Success');
      const billed = await ctx.admin.meteringRecords();
      expect(billed).toHaveLength(1);
      expect(billed[0]).toMatchObject({ productCode: world.legacy.productCode, customerAWSAccountId: world.carol.customerAWSAccountId, dimension: 'seats', quantity: 2 });
    });

    test('legacy de-duplication: same quantity repeats the MeteringRecordId, another quantity is DuplicateRecord', async () => {
      const record = legacyRecord(world.carol, { Quantity: 3 });
      const first = resultFor((await meter([record], world.legacy.productCode)).Results, record);
      const repeat = resultFor((await meter([record], world.legacy.productCode)).Results, record);
      expect(repeat).toMatchObject({ Status: 'Success', MeteringRecordId: first.MeteringRecordId });
      const changed = legacyRecord(world.carol, { Quantity: 4 });
      expect(resultFor((await meter([changed], world.legacy.productCode)).Results, changed).Status).toBe('DuplicateRecord');
      expect((await ctx.admin.meteringRecords()).map((r) => r.quantity)).toEqual([3]);
    });

    test('an unknown legacy customer is CustomerNotSubscribed (not a request error)', async () => {
      const byIdentifier = legacyRecord(world.carol, { CustomerIdentifier: 'nobody-we-know' });
      const out = await meter([byIdentifier, legacyRecord(world.carol)], world.legacy.productCode);
      expect(resultFor(out.Results, byIdentifier).Status).toBe('CustomerNotSubscribed');
      expect(resultFor(out.Results, legacyRecord(world.carol)).Status).toBe('Success');
      const byAccount = legacyRecord(world.carol, { CustomerIdentifier: undefined, CustomerAWSAccountId: '999999999999' });
      const out2 = await meter([byAccount], world.legacy.productCode);
      expect(resultFor(out2.Results, byAccount).Status).toBe('CustomerNotSubscribed');
      expect(await ctx.admin.meteringRecords()).toHaveLength(1);
    });
  });

  describe('CustomerNotSubscribed', () => {
    async function notSubscribedCustomer(productCode: string, account: string): Promise<Customer> {
      return ctx.admin.createCustomerAt(EARLY, { productCode, customerAWSAccountId: account, subscribed: false });
    }

    test('a customer created with subscribed: false is CustomerNotSubscribed and nothing is billed', async () => {
      const frank = await notSubscribedCustomer(world.lic.productCode, '777777777777');
      expect(frank.state).not.toBe('subscribed');
      const record = licenseRecord(frank);
      const out = await meter([record]);
      const result = resultFor(out.Results, record);
      expect(result.Status).toBe('CustomerNotSubscribed');
      expect(result.MeteringRecordId).toBeUndefined();
      expect(await ctx.admin.meteringRecords()).toEqual([]);
    });

    test('a legacy customer created with subscribed: false is CustomerNotSubscribed', async () => {
      const gina = await notSubscribedCustomer(world.legacy.productCode, '888888888888');
      const record = legacyRecord(gina);
      const out = await meter([record], world.legacy.productCode);
      expect(resultFor(out.Results, record).Status).toBe('CustomerNotSubscribed');
    });

    test('once subscribed, the same customer is billed', async () => {
      const frank = await notSubscribedCustomer(world.lic.productCode, '777777777777');
      await ctx.admin.setSubscription({ licenseArn: frank.licenseArn }, 'subscribed');
      const record = licenseRecord(frank, { Timestamp: at('2026-11-02T10:21:00Z') });
      await ctx.admin.advanceClock(120);
      expect(resultFor((await meter([record])).Results, record).Status).toBe('Success');
    });

    test('within the hour after an unsubscribe, final usage is still Success', async () => {
      const unsubscribed = await ctx.admin.setSubscription({ licenseArn: world.alice.licenseArn }, 'unsubscribed');
      expect(unsubscribed.state).toBe('unsubscribed');
      await ctx.admin.advanceClock(50 * 60); // 11:10, 50 minutes after the unsubscription at 10:20
      const record = licenseRecord(world.alice, { Timestamp: at('2026-11-02T10:05:00Z') });
      expect(resultFor((await meter([record])).Results, record).Status).toBe('Success');
    });

    test('more than one hour after an unsubscribe, usage is CustomerNotSubscribed', async () => {
      await ctx.admin.setSubscription({ licenseArn: world.alice.licenseArn }, 'unsubscribed');
      await ctx.admin.advanceClock(61 * 60); // 11:21
      const record = licenseRecord(world.alice, { Timestamp: at('2026-11-02T10:05:00Z') });
      expect(resultFor((await meter([record])).Results, record).Status).toBe('CustomerNotSubscribed');
      expect(await ctx.admin.meteringRecords()).toEqual([]);
    });

    test('a record for an hour after the unsubscription is CustomerNotSubscribed, even within the grace hour', async () => {
      await ctx.admin.setSubscription({ licenseArn: world.alice.licenseArn }, 'unsubscribed'); // 10:20
      await ctx.admin.advanceClock(50 * 60); // 11:10
      const record = licenseRecord(world.alice, { Timestamp: at('2026-11-02T11:05:00Z') });
      expect(resultFor((await meter([record])).Results, record).Status).toBe('CustomerNotSubscribed');
    });

    test('a legacy customer unsubscribed two hours ago is CustomerNotSubscribed', async () => {
      await ctx.admin.setClock(minutesBefore(T0, 120));
      await ctx.admin.setSubscription({ customerIdentifier: world.carol.customerIdentifier ?? '' }, 'unsubscribed');
      await ctx.admin.setClock(T0);
      const record = legacyRecord(world.carol, { Timestamp: at('2026-11-02T08:05:00Z') });
      expect(resultFor((await meter([record], world.legacy.productCode)).Results, record).Status).toBe('CustomerNotSubscribed');
    });

    test('unsubscribe-pending still meters; a re-subscribe after an unsubscribe meters again', async () => {
      await ctx.admin.setSubscription({ licenseArn: world.alice.licenseArn }, 'unsubscribe-pending');
      const first = licenseRecord(world.alice, { Timestamp: at('2026-11-02T09:05:00Z') });
      expect(resultFor((await meter([first])).Results, first).Status).toBe('Success');

      await ctx.admin.setSubscription({ licenseArn: world.bob.licenseArn }, 'unsubscribed');
      await ctx.admin.advanceClock(2 * 3600); // 12:20
      const late = licenseRecord(world.bob, { Timestamp: at('2026-11-02T12:05:00Z') });
      expect(resultFor((await meter([late])).Results, late).Status).toBe('CustomerNotSubscribed');
      await ctx.admin.setSubscription({ licenseArn: world.bob.licenseArn }, 'subscribed');
      await ctx.admin.advanceClock(3600); // 13:20
      const back = licenseRecord(world.bob, { Timestamp: at('2026-11-02T13:10:00Z') });
      expect(resultFor((await meter([back])).Results, back).Status).toBe('Success');
    });

    test('one request mixes Success, CustomerNotSubscribed and DuplicateRecord, matched by content', async () => {
      const frank = await notSubscribedCustomer(world.lic.productCode, '777777777777');
      const earlier = licenseRecord(world.bob, { Quantity: 1 });
      await meter([earlier]);
      const ok = licenseRecord(world.alice, { Quantity: 2 });
      const notSubscribed = licenseRecord(frank, { Quantity: 3 });
      const duplicate = licenseRecord(world.bob, { Quantity: 99 });
      const out = await meter([ok, notSubscribed, duplicate]);
      expect(out.Results).toHaveLength(3);
      expect(resultFor(out.Results, ok).Status).toBe('Success');
      expect(resultFor(out.Results, notSubscribed).Status).toBe('CustomerNotSubscribed');
      expect(resultFor(out.Results, duplicate).Status).toBe('DuplicateRecord');
      expect((await ctx.admin.meteringRecords()).map((r) => r.quantity).sort()).toEqual([1, 2]);
    });
  });

  describe('result order', () => {
    /** 25 distinct records: 3 dimensions x 9 hours of one licence. */
    function twentyFive(): UsageRecord[] {
      const dimensions = ['requests', 'storage', 'users'];
      return Array.from({ length: 25 }, (_, i) =>
        licenseRecord(world.alice, { Dimension: dimensions[i % 3], Timestamp: minutesBefore(at('2026-11-02T10:05:00Z'), 60 * Math.floor(i / 3)), Quantity: i }),
      );
    }
    const inRequestOrder = (records: UsageRecord[], out: BatchMeterUsageCommandOutput) =>
      (out.Results ?? []).length === records.length && records.every((record, i) => sameRecord(out.Results?.[i]?.UsageRecord, record));

    test('results are shuffled by default (the order differs from the request at least once in 5 tries)', async () => {
      const records = twentyFive();
      let differed = false;
      // Repeats are idempotent Successes, so the same request can be sent again. 25 records in request
      // order by chance has probability 1/25!, so 5 tries never fail for a real shuffle.
      for (let attempt = 0; attempt < 5 && !differed; attempt++) {
        const out = await meter(records);
        for (const record of records) expect(resultFor(out.Results, record).Status).toBe('Success');
        differed = !inRequestOrder(records, out);
      }
      expect(differed).toBe(true);
    });

    test("resultOrder: 'request' keeps the request order", async () => {
      await ctx.admin.setConfig({ resultOrder: 'request' });
      const records = twentyFive();
      for (let attempt = 0; attempt < 3; attempt++) {
        const out = await meter(records);
        expect(inRequestOrder(records, out)).toBe(true);
      }
    });
  });

  describe('UnprocessedRecords (injected with unprocessedFraction)', () => {
    function fiveRecords(): UsageRecord[] {
      return ['requests', 'storage', 'users'].flatMap((dimension) => [world.alice, world.bob].map((c) => licenseRecord(c, { Dimension: dimension }))).slice(0, 5);
    }

    test('a fraction of 0.5 of 5 records puts 3 (rounded up) into UnprocessedRecords, unbilled; resent unchanged they succeed', async () => {
      await ctx.admin.addFault({ operation: 'BatchMeterUsage', unprocessedFraction: 0.5 });
      const records = fiveRecords();
      const out = await meter(records);
      const unprocessed = out.UnprocessedRecords ?? [];
      const results = out.Results ?? [];
      expect(unprocessed).toHaveLength(3);
      expect(results).toHaveLength(2);
      // Every input is in exactly one of the two lists.
      for (const record of records) {
        const inResults = results.filter((r) => sameRecord(r.UsageRecord, record)).length;
        const inUnprocessed = unprocessed.filter((r) => sameRecord(r, record)).length;
        expect({ record: describeRecord(record), total: inResults + inUnprocessed }).toEqual({ record: describeRecord(record), total: 1 });
      }
      for (const result of results) expect(result.Status).toBe('Success');
      expect(await ctx.admin.meteringRecords()).toHaveLength(2);

      // The fault was for one call only: resend the unprocessed records as they came back.
      const retry = await meter(unprocessed);
      expect(retry.UnprocessedRecords ?? []).toEqual([]);
      for (const record of unprocessed) expect(resultFor(retry.Results, record).Status).toBe('Success');
      expect(await ctx.admin.meteringRecords()).toHaveLength(5);
    });

    test('a fraction of 1 leaves every record unprocessed; 0.1 of 25 leaves 3', async () => {
      await ctx.admin.addFault({ operation: 'BatchMeterUsage', unprocessedFraction: 1 });
      const records = fiveRecords();
      const all = await meter(records);
      expect(all.UnprocessedRecords ?? []).toHaveLength(5);
      expect(all.Results ?? []).toHaveLength(0);
      expect(await ctx.admin.meteringRecords()).toEqual([]);

      await ctx.admin.addFault({ operation: 'BatchMeterUsage', unprocessedFraction: 0.1 });
      const dimensions = ['requests', 'storage', 'users'];
      const many = Array.from({ length: 25 }, (_, i) =>
        licenseRecord(world.bob, { Dimension: dimensions[i % 3], Timestamp: minutesBefore(at('2026-11-02T10:05:00Z'), 60 * Math.floor(i / 3)) }),
      );
      const some = await meter(many);
      expect(some.UnprocessedRecords ?? []).toHaveLength(3);
      expect(some.Results ?? []).toHaveLength(22);
    });
  });
});
