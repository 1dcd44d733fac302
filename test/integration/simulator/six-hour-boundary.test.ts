/**
 * With the `6h` window option (the older documents' rule), a record exactly 6 hours
 * old is refused. AWS API reference, BatchMeterUsage: "Usage records aren't accepted 6 hours or more after
 * an event."
 */
import { BatchMeterUsageCommand } from '@aws-sdk/client-marketplace-metering';
import { T0, licenseRecord, minutesBefore, rejectionOf, seedWorld, useSimulator } from './helpers';

describe('the 6 h window boundary', () => {
  const ctx = useSimulator({ config: { timestampWindow: '6h' } });

  test('a record exactly 6 hours old is TimestampOutOfBoundsException', async () => {
    const world = await seedWorld(ctx.admin);
    const record = licenseRecord(world.alice, { Timestamp: minutesBefore(T0, 6 * 60) });
    const error = await rejectionOf(ctx.meteringOnce.send(new BatchMeterUsageCommand({ UsageRecords: [record] })));
    expect(error.name).toBe('TimestampOutOfBoundsException');
    expect(await ctx.admin.meteringRecords()).toEqual([]);
  });
});
