/**
 * A legacy customer in unsubscribe-pending is metered for about an hour, not indefinitely.
 * marketplace-facts.md, Subscription lifecycle (legacy SNS): "unsubscribe-pending (about one hour left to
 * meter), unsubscribe-success (no more metering)"; BatchMeterUsage: CustomerNotSubscribed covers
 * "unsubscribed past the grace hour"; Seller Guide practice: "After an unsubscribe there is about one hour to
 * send the final usage."
 */
import { BatchMeterUsageCommand } from '@aws-sdk/client-marketplace-metering';
import { at, legacyRecord, resultFor, seedWorld, useSimulator } from './helpers';

describe('unsubscribe-pending has about one hour left to meter', () => {
  const ctx = useSimulator();

  test('three hours after unsubscribe-pending, a record for the latest hour is CustomerNotSubscribed', async () => {
    const world = await seedWorld(ctx.admin); // clock 10:20
    await ctx.admin.setSubscription({ customerIdentifier: world.carol.customerIdentifier! }, 'unsubscribe-pending');
    await ctx.admin.advanceClock(3 * 3600); // 13:20
    const record = legacyRecord(world.carol, { Timestamp: at('2026-11-02T13:05:00Z') });
    const out = await ctx.meteringOnce.send(new BatchMeterUsageCommand({ ProductCode: world.legacy.productCode, UsageRecords: [record] }));
    expect(resultFor(out.Results, record).Status).toBe('CustomerNotSubscribed');
    expect(await ctx.admin.meteringRecords()).toEqual([]);
  });
});
