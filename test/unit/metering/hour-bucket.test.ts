import { MeteringRecord, meteringRecordOf, recordTimestampOf } from '../../../lambda/core/metering/hour-bucket';
import { tagSetKey } from '../../../lambda/core/usage/usage-rules';
import { legacyBucket, LICENSE_ARN, licenseBucket } from './fixtures';

function recordOf(...args: Parameters<typeof meteringRecordOf>): MeteringRecord {
  const result = meteringRecordOf(...args);
  if (!result.ok) throw new Error(`expected a record, got: ${result.message}`);
  return result.record;
}

function refusalOf(...args: Parameters<typeof meteringRecordOf>): string {
  const result = meteringRecordOf(...args);
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.record)}`);
  return result.message;
}

const sumOf = (record: MeteringRecord) => (record.UsageAllocations ?? []).reduce((total, a) => total + a.AllocatedUsageQuantity, 0);

describe('recordTimestampOf: in the bucket\'s hour, never before the customer registered', () => {
  const HOUR = '2026-11-02T09:00:00.000Z';
  it.each([
    ['no registration time known', undefined, '2026-11-02T09:00:00.000Z'],
    ['registered in an earlier hour', '2026-10-30T17:42:10.500Z', '2026-11-02T09:00:00.000Z'],
    ['registered at the hour\'s start', '2026-11-02T09:00:00.000Z', '2026-11-02T09:00:00.000Z'],
    ['registered during the hour (rounded up to the second)', '2026-11-02T09:31:07.250Z', '2026-11-02T09:31:08.000Z'],
    ['registered in its last second', '2026-11-02T09:59:59.400Z', '2026-11-02T09:59:59.000Z'],
    ['registered after the hour (usage stamped early by a producer)', '2026-11-02T10:05:00.000Z', '2026-11-02T09:59:59.000Z'],
    ['an unreadable registration time', 'yesterday', '2026-11-02T09:00:00.000Z'],
  ])('%s', (_, registeredAt, expected) => {
    const stamp = recordTimestampOf(HOUR, registeredAt);
    expect(stamp.toISOString()).toBe(expected);
    expect(stamp.getTime() % 1000).toBe(0);
  });

  it('stamps the first hour\'s record when the customer registered, the others at their start', () => {
    const registeredAt = '2026-11-02T09:31:07.000Z';
    expect(recordOf(licenseBucket({ hourStart: '2026-11-02T09:00:00.000Z' }), registeredAt).Timestamp).toEqual(new Date(registeredAt));
    expect(recordOf(licenseBucket({ hourStart: '2026-11-02T10:00:00.000Z' }), registeredAt).Timestamp).toEqual(new Date('2026-11-02T10:00:00.000Z'));
  });
});

describe('meteringRecordOf', () => {
  it('sends a license-mode bucket with the account id and licence ARN, stamped at the start of its hour', () => {
    const record = recordOf(licenseBucket({ quantity: 42, hourStart: '2026-11-02T09:00:00.000Z' }));
    expect(record).toEqual({
      Timestamp: new Date('2026-11-02T09:00:00.000Z'),
      Dimension: 'requests',
      Quantity: 42,
      CustomerAWSAccountId: '111122223333',
      LicenseArn: LICENSE_ARN,
    });
    expect('CustomerIdentifier' in record).toBe(false);
    expect('UsageAllocations' in record).toBe(false);
  });

  it('sends a legacy bucket with the CustomerIdentifier only (never with the account id as well)', () => {
    const record = recordOf(legacyBucket({ quantity: 3 }));
    expect(record).toEqual({
      Timestamp: new Date('2026-11-02T09:00:00.000Z'),
      Dimension: 'requests',
      Quantity: 3,
      CustomerIdentifier: 'cust-legacy-1',
    });
    expect(record.CustomerAWSAccountId).toBeUndefined();
    expect(record.LicenseArn).toBeUndefined();
  });

  it('sends quantity 0 as 0', () => {
    expect(recordOf(licenseBucket({ quantity: 0 })).Quantity).toBe(0);
  });

  it('gives usage without tags its own untagged allocation, so the allocations add up to Quantity', () => {
    const record = recordOf(
      licenseBucket({
        quantity: 10,
        allocations: { [tagSetKey({ team: 'a', env: 'prod' })]: 4, [tagSetKey({ team: 'b' })]: 1 },
      }),
    );
    expect(record.UsageAllocations).toEqual([
      { AllocatedUsageQuantity: 4, Tags: [{ Key: 'env', Value: 'prod' }, { Key: 'team', Value: 'a' }] },
      { AllocatedUsageQuantity: 1, Tags: [{ Key: 'team', Value: 'b' }] },
      { AllocatedUsageQuantity: 5 },
    ]);
    expect(sumOf(record)).toBe(record.Quantity);
  });

  it('adds no untagged allocation when the tagged ones cover the quantity', () => {
    const record = recordOf(licenseBucket({ quantity: 6, allocations: { [tagSetKey({ team: 'a' })]: 6 } }));
    expect(record.UsageAllocations).toEqual([{ AllocatedUsageQuantity: 6, Tags: [{ Key: 'team', Value: 'a' }] }]);
  });

  it('leaves out tag sets with no usage, and sends no allocations when none has usage', () => {
    const some = recordOf(licenseBucket({ quantity: 6, allocations: { [tagSetKey({ team: 'a' })]: 0, [tagSetKey({ team: 'b' })]: 6 } }));
    expect(some.UsageAllocations).toEqual([{ AllocatedUsageQuantity: 6, Tags: [{ Key: 'team', Value: 'b' }] }]);
    const none = recordOf(licenseBucket({ quantity: 6, allocations: { [tagSetKey({ team: 'a' })]: 0 } }));
    expect(none.UsageAllocations).toBeUndefined();
  });

  it('refuses allocations that exceed the quantity', () => {
    expect(refusalOf(licenseBucket({ quantity: 5, allocations: { [tagSetKey({ team: 'a' })]: 6 } }))).toMatch(/exceed/);
  });

  it('refuses an hour whose quantity exceeds the API maximum', () => {
    expect(refusalOf(licenseBucket({ quantity: 2_147_483_648 }))).toMatch(/exceeds/);
    expect(recordOf(licenseBucket({ quantity: 2_147_483_647 })).Quantity).toBe(2_147_483_647);
  });

  describe('at most 2500 allocations', () => {
    const tagSets = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [tagSetKey({ n: String(i) }), 1]));

    it('accepts 2500 tag sets that cover the quantity', () => {
      const record = recordOf(licenseBucket({ quantity: 2500, allocations: tagSets(2500) }));
      expect(record.UsageAllocations).toHaveLength(2500);
      expect(sumOf(record)).toBe(2500);
    });

    it('refuses 2501 tag sets', () => {
      expect(refusalOf(licenseBucket({ quantity: 2501, allocations: tagSets(2501) }))).toMatch(/2501 allocation tag sets/);
    });

    it('refuses 2500 tag sets plus untagged usage: 2501 allocations', () => {
      expect(refusalOf(licenseBucket({ quantity: 2501, allocations: tagSets(2500) }))).toMatch(/2501/);
    });
  });
});
