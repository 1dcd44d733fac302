import { IdentityMode } from '../../../lambda/core/customer';
import { MeteringRecord } from '../../../lambda/core/metering/hour-bucket';
import { MeteringRequest, PlanInput, planRequests, wireBody } from '../../../lambda/core/metering/request-plan';

const MB = 1024 * 1024;
const HOUR = new Date('2026-11-02T09:00:00.000Z');

let serial = 0;
function input(productCode: string, identityMode: IdentityMode, record: Partial<MeteringRecord> = {}): PlanInput {
  const n = ++serial;
  const identity =
    identityMode === 'license'
      ? { CustomerAWSAccountId: String(100000000000 + n), LicenseArn: `arn:aws:license-manager::${100000000000 + n}:license:l-${n}` }
      : { CustomerIdentifier: `cust-${n}` };
  return {
    bucketKey: `bucket-${n}`,
    productCode,
    identityMode,
    record: { Timestamp: HOUR, Dimension: 'requests', Quantity: n, ...identity, ...record },
  };
}

const inputs = (count: number, productCode = 'prod-a', mode: IdentityMode = 'license', record: Partial<MeteringRecord> = {}) =>
  Array.from({ length: count }, () => input(productCode, mode, record));

/** A record carrying `allocations` allocations of five long tags each: a large record. */
function allocations(count: number): MeteringRecord['UsageAllocations'] {
  return Array.from({ length: count }, (_, i) => ({
    AllocatedUsageQuantity: 1,
    Tags: Array.from({ length: 5 }, (_, t) => ({ Key: `key-${t}-${'k'.repeat(80)}`, Value: `${i}-${'v'.repeat(240)}` })),
  }));
}

const bytes = (request: Pick<MeteringRequest, 'productCode' | 'identityMode' | 'records'>) => Buffer.byteLength(wireBody(request));

function expectEveryRecordOnce(requests: readonly MeteringRequest[], given: readonly PlanInput[]) {
  const planned = requests.flatMap((r) => r.records.map((p) => p.bucketKey));
  expect([...planned].sort()).toEqual(given.map((g) => g.bucketKey).sort());
}

describe('planRequests', () => {
  it('plans nothing for no records', () => {
    expect(planRequests([])).toEqual([]);
  });

  it.each([
    [1, [1]],
    [25, [25]],
    [26, [25, 1]],
    [60, [25, 25, 10]],
    [100, [25, 25, 25, 25]],
  ])('chunks %d records of one product as %p', (count, sizes) => {
    const given = inputs(count);
    const requests = planRequests(given);
    expect(requests.map((r) => r.records.length)).toEqual(sizes);
    // In the order given.
    expect(requests.flatMap((r) => r.records.map((p) => p.bucketKey))).toEqual(given.map((g) => g.bucketKey));
  });

  it('plans a run of 50,000 records (a large seller\'s zero-usage hour) into full requests, each record once', () => {
    const given = [...inputs(30_000, 'prod-a'), ...inputs(20_000, 'prod-b', 'legacy')];
    const requests = planRequests(given);
    expect(requests).toHaveLength(2000);
    expect(requests.every((r) => r.records.length === 25)).toBe(true);
    expectEveryRecordOnce(requests, given);
  });

  it('never mixes products or identity modes in one request', () => {
    const given = [
      ...inputs(30, 'prod-a', 'license'),
      ...inputs(3, 'prod-b', 'legacy'),
      ...inputs(2, 'prod-a', 'legacy'),
      ...inputs(4, 'prod-b', 'license'),
      ...inputs(1, 'prod-a', 'license'),
    ];
    // Interleave them, as the ledger hands them out by hour.
    const interleaved = given.map((g, i) => ({ g, k: (i * 7919) % given.length })).sort((a, b) => a.k - b.k).map((x) => x.g);
    const byKey = new Map(interleaved.map((g) => [g.bucketKey, g]));

    const requests = planRequests(interleaved);

    for (const request of requests) {
      for (const planned of request.records) {
        const origin = byKey.get(planned.bucketKey)!;
        expect([origin.productCode, origin.identityMode]).toEqual([request.productCode, request.identityMode]);
        expect(planned.record).toBe(origin.record);
      }
    }
    const groups = requests.map((r) => `${r.productCode}/${r.identityMode}:${r.records.length}`).sort();
    expect(groups).toEqual(['prod-a/legacy:2', 'prod-a/license:25', 'prod-a/license:6', 'prod-b/legacy:3', 'prod-b/license:4']);
    expectEveryRecordOnce(requests, interleaved);
  });

  it('puts the ProductCode in legacy requests only, and timestamps in epoch seconds', () => {
    const [license] = planRequests(inputs(2, 'prod-a', 'license'));
    const [legacy] = planRequests(inputs(2, 'prod-b', 'legacy'));
    const licenseBody = JSON.parse(wireBody(license));
    const legacyBody = JSON.parse(wireBody(legacy));
    expect(licenseBody).not.toHaveProperty('ProductCode');
    expect(legacyBody.ProductCode).toBe('prod-b');
    expect(licenseBody.UsageRecords[0].Timestamp).toBe(HOUR.getTime() / 1000);
    expect(licenseBody.UsageRecords[0]).toMatchObject({ CustomerAWSAccountId: expect.any(String), LicenseArn: expect.any(String) });
    expect(legacyBody.UsageRecords[0]).toEqual({ Timestamp: HOUR.getTime() / 1000, Dimension: 'requests', Quantity: expect.any(Number), CustomerIdentifier: expect.any(String) });
  });

  describe('size', () => {
    it('splits large records so that every request stays under 1 MB, with as few requests as possible', () => {
      const big = { UsageAllocations: allocations(180) };
      const recordBytes = bytes({ productCode: 'prod-a', identityMode: 'license', records: inputs(1, 'prod-a', 'license', big) });
      // Precondition of the scenario: three such records fit under 1 MB, four do not.
      expect(3 * recordBytes).toBeLessThan(MB - 2048);
      expect(4 * recordBytes).toBeGreaterThan(MB);

      const given = inputs(10, 'prod-a', 'license', big);
      const requests = planRequests(given);

      expect(requests.map((r) => r.records.length)).toEqual([3, 3, 3, 1]);
      for (const request of requests) expect(bytes(request)).toBeLessThan(MB);
      expectEveryRecordOnce(requests, given);
    });

    it('fills each request before starting the next one, with records of mixed sizes', () => {
      // Deterministic mix of small and large records (up to ~0.6 MB).
      const sizes = [0, 450, 10, 120, 0, 300, 300, 5, 450, 60, 0, 200, 380, 1, 90, 0, 420, 33];
      const given = sizes.map((n) => input('prod-a', 'license', n ? { UsageAllocations: allocations(n) } : {}));
      const requests = planRequests(given);

      for (const request of requests) {
        expect(request.records.length).toBeLessThanOrEqual(25);
        expect(bytes(request)).toBeLessThan(MB);
      }
      // No request could have taken the next record: it would have reached the 1 MB limit (within the planner's margin).
      for (let i = 0; i + 1 < requests.length; i++) {
        const merged = { ...requests[i], records: [...requests[i].records, requests[i + 1].records[0]] };
        expect(merged.records.length > 25 || bytes(merged) > MB - 2048).toBe(true);
      }
      expect(requests.flatMap((r) => r.records.map((p) => p.bucketKey))).toEqual(given.map((g) => g.bucketKey));
    });

    it('honours custom limits', () => {
      const requests = planRequests(inputs(5), { maxRecords: 2, maxBytes: MB });
      expect(requests.map((r) => r.records.length)).toEqual([2, 2, 1]);
      const one = bytes({ productCode: 'prod-a', identityMode: 'license', records: inputs(1) });
      const bySize = planRequests(inputs(5), { maxRecords: 25, maxBytes: 2 * one + 10 });
      expect(bySize.every((r) => r.records.length <= 2)).toBe(true);
    });
  });
});
