/**
 * Two UsageAllocations without Tags in one record are two allocations with the same
 * (empty) tag set. marketplace-facts.md, BatchMeterUsage: "no two allocations with the same tag set";
 * AWS API reference (MeterUsage UsageAllocations): "each UsageAllocation must have a unique set of tags
 * (include no tags)"; UsageAllocation.Tags: "For the bucket of items with no tags, this parameter can be
 * left out" (one bucket).
 */
import { BatchMeterUsageCommand } from '@aws-sdk/client-marketplace-metering';
import { licenseRecord, rejectionOf, seedWorld, useSimulator } from './helpers';

describe('two untagged allocations in one record', () => {
  const ctx = useSimulator();

  test('two allocations without Tags are the same tag set: the request is rejected and nothing is billed', async () => {
    const world = await seedWorld(ctx.admin);
    const record = licenseRecord(world.alice, {
      Quantity: 2,
      UsageAllocations: [{ AllocatedUsageQuantity: 1 }, { AllocatedUsageQuantity: 1 }],
    });
    const error = await rejectionOf(ctx.meteringOnce.send(new BatchMeterUsageCommand({ UsageRecords: [record] })));
    expect(['InvalidTagException', 'InvalidUsageAllocationsException']).toContain(error.name);
    expect(await ctx.admin.meteringRecords()).toEqual([]);
  });
});
