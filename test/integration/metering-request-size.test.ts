/**
 * BatchMeterUsage's 1 MB request limit on real components: hour buckets with many allocation tag
 * sets make records of about 300 KB each, so a few records, far fewer than 25, already exceed 1 MB
 * together. Metering must split its requests by size; the simulator refuses any request of 1 MB or
 * more, as AWS does.
 */
import { ProductConfig } from '../../lambda/core/product-config';
import { MarketplaceLimits } from '../../lambda/core/marketplace-limits';
import { Customer, inUsageHour, METER_USAGE_HOUR, useMeteringEnvironment, USAGE_HOUR } from '../support/metering-environment';

const PRODUCT: ProductConfig = { productCode: 'allocated-product', identityMode: 'license', dimensions: ['requests'] };

const env = useMeteringEnvironment({
  stackProducts: [PRODUCT],
  simulatorProducts: [{ productCode: PRODUCT.productCode, identityMode: 'license', dimensions: ['requests'] }],
});

const CUSTOMERS = 6;
const TAG_SETS_PER_BUCKET = 1200;
const ALLOCATIONS_PER_EVENT = 100;

/** A long tag value (AWS allows 256 characters), distinct per customer and tag set. */
const tenant = (customer: number, tagSet: number) => `tenant-${customer}-${tagSet}-`.padEnd(200, 'x');

test('records too big to share one request are split by size (not count) into requests under 1 MB, and all are billed', async () => {
  const customers: Customer[] = [];
  for (let i = 0; i < CUSTOMERS; i++) customers.push(await env.newCustomer(PRODUCT.productCode));
  const events = customers.flatMap((customer, c) =>
    Array.from({ length: TAG_SETS_PER_BUCKET / ALLOCATIONS_PER_EVENT }, (_, e) => ({
      licenseArn: customer.licenseArn,
      dimension: 'requests',
      quantity: ALLOCATIONS_PER_EVENT,
      timestamp: inUsageHour(e + 1),
      allocations: Array.from({ length: ALLOCATIONS_PER_EVENT }, (_, a) => ({
        quantity: 1,
        tags: { tenant: tenant(c, e * ALLOCATIONS_PER_EVENT + a) },
      })),
    })),
  );
  await env.send(events, 4);
  await env.drain();
  expect(await env.usageDeadLetters()).toEqual([]);
  // Journaled in their hour: per customer, every event with its hundred allocations.
  const journaled = await env.journalEvents(USAGE_HOUR);
  expect(env.ingested()).toMatchObject({ counted: events.length, duplicates: 0, rejected: 0 });
  for (const customer of customers) {
    const own = journaled.filter((e) => e.customerKey === customer.customerKey);
    expect(own).toHaveLength(TAG_SETS_PER_BUCKET / ALLOCATIONS_PER_EVENT);
    expect(own.reduce((sum, e) => sum + e.quantity, 0)).toBe(TAG_SETS_PER_BUCKET);
    expect(new Set(own.flatMap((e) => Object.keys(e.allocations ?? {}))).size).toBe(TAG_SETS_PER_BUCKET);
  }

  const report = await env.meterAt(METER_USAGE_HOUR);
  expect(report).toMatchObject({ sealed: CUSTOMERS, metered: CUSTOMERS, deadLettered: 0, deferred: 0 });

  const records = await env.billed();
  expect(records).toHaveLength(CUSTOMERS);
  for (const record of records) {
    expect(record.quantity).toBe(TAG_SETS_PER_BUCKET);
    expect(record.allocations).toHaveLength(TAG_SETS_PER_BUCKET);
    expect(record.allocations!.every((a) => a.AllocatedUsageQuantity === 1 && a.Tags?.length === 1)).toBe(true);
  }
  expect(new Set(records.map((r) => r.licenseArn)).size).toBe(CUSTOMERS);

  // All records in one request, as the SDK would serialize it: over the limit, so a split was needed.
  const oneRequestBytes = Buffer.byteLength(
    JSON.stringify({
      UsageRecords: records.map((r) => ({
        Timestamp: Date.parse(r.timestamp) / 1000,
        Dimension: r.dimension,
        Quantity: r.quantity,
        CustomerAWSAccountId: r.customerAWSAccountId,
        LicenseArn: r.licenseArn,
        UsageAllocations: r.allocations,
      })),
    }),
  );
  expect(oneRequestBytes).toBeGreaterThan(MarketplaceLimits.maxRequestBytes);

  // Every request accepted (the simulator refuses 1 MB or more), each with fewer records than the
  // count limit would allow, and no more requests than needed plus one.
  const calls = await env.meteringCalls();
  expect(calls.every((c) => c.outcome === 'Success')).toBe(true);
  expect(calls.reduce((n, c) => n + (c.recordCount ?? 0), 0)).toBe(CUSTOMERS);
  expect(calls.length).toBeGreaterThanOrEqual(Math.ceil(oneRequestBytes / MarketplaceLimits.maxRequestBytes));
  expect(calls.length).toBeLessThanOrEqual(Math.ceil(oneRequestBytes / MarketplaceLimits.maxRequestBytes) + 1);
  expect(calls.every((c) => c.recordCount! < CUSTOMERS)).toBe(true);
  expect(calls.length).toBe(report.calls);

  // The metering run folded each customer's hour into one bucket holding every tag set, then billed it.
  for (const customer of customers) {
    const bucket = await env.bucket(customer, 'requests', USAGE_HOUR);
    expect(bucket).toMatchObject({
      status: 'metered',
      attempts: 1,
      quantity: TAG_SETS_PER_BUCKET,
      usageEvents: TAG_SETS_PER_BUCKET / ALLOCATIONS_PER_EVENT,
      sealedAt: METER_USAGE_HOUR.toISOString(),
    });
    expect(Object.keys(bucket!).filter((k) => k.startsWith('alloc#'))).toHaveLength(TAG_SETS_PER_BUCKET);
  }
});
