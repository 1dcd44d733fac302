import { readCancellation } from '../../../lambda/adapters/metering-ledger';
import { UsageAddition } from '../../../lambda/core/usage/ingest';
import { MAX_ALLOCATIONS_PER_EVENT } from '../../../lambda/core/usage/usage-event';
import { MAX_TRANSACTION_ITEMS, planUsageWrites, UsageTransaction } from '../../../lambda/core/usage/usage-writes';

const HOUR = '2026-11-02T10:00:00.000Z';
let next = 0;

function addition(customer: string, quantity = 1, allocations: Record<string, number> = {}): UsageAddition {
  return {
    bucket: {
      bucketKey: `license#${customer}|requests|${HOUR}`,
      customerKey: `license#${customer}`,
      productCode: 'prod',
      identityMode: 'license',
      customerAWSAccountId: '111122223333',
      dimension: 'requests',
      hourStart: HOUR,
    },
    eventKey: `license#${customer}|e${next++}`,
    quantity,
    allocations,
    at: new Date('2026-11-02T10:30:00Z'),
  };
}

const itemsOf = (transaction: UsageTransaction) => transaction.reduce((n, w) => n + w.additions.length + 1, 0);

describe('planUsageWrites', () => {
  it('sums the events of a bucket into one write, in the order buckets first appear', () => {
    const a1 = addition('a', 1, { t1: 1 });
    const b1 = addition('b', 5);
    const a2 = addition('a', 2, { t1: 1, t2: 1 });
    const plan = planUsageWrites([a1, b1, a2]);
    expect(plan).toHaveLength(1);
    expect(plan[0].map((w) => ({ bucket: w.bucket.customerKey, additions: w.additions, quantity: w.quantity, allocations: w.allocations }))).toEqual([
      { bucket: 'license#a', additions: [a1, a2], quantity: 3, allocations: { t1: 2, t2: 1 } },
      { bucket: 'license#b', additions: [b1], quantity: 5, allocations: {} },
    ]);
  });

  it(`keeps every transaction within ${MAX_TRANSACTION_ITEMS} items and each bucket once per transaction, and loses no event`, () => {
    const additions = Array.from({ length: 700 }, (_, i) => addition(`c${(i * 7919) % 130}`, i));
    const plan = planUsageWrites(additions);
    for (const transaction of plan) {
      expect(itemsOf(transaction)).toBeLessThanOrEqual(MAX_TRANSACTION_ITEMS);
      const buckets = transaction.map((w) => w.bucket.bucketKey);
      expect(new Set(buckets).size).toBe(buckets.length);
      for (const write of transaction) expect(write.quantity).toBe(write.additions.reduce((n, a) => n + a.quantity, 0));
    }
    const planned = plan.flatMap((t) => t.flatMap((w) => w.additions));
    expect(planned).toHaveLength(additions.length);
    expect(new Set(planned)).toEqual(new Set(additions));
  });

  it('gives one bucket more writes, in different transactions, when its events pass 99 markers', () => {
    const plan = planUsageWrites(Array.from({ length: 250 }, () => addition('hot')));
    expect(plan.map((t) => t.map((w) => w.additions.length))).toEqual([[99], [99], [52]]);
  });

  it(`starts a new write when the tag sets of a bucket would pass ${MAX_ALLOCATIONS_PER_EVENT} (the update expression's size)`, () => {
    const tagSets = (from: number, count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`t${from + i}`, 1]));
    const plan = planUsageWrites([addition('a', 60, tagSets(0, 60)), addition('a', 60, tagSets(30, 60)), addition('a', 60, tagSets(100, 60))]);
    // 60, then 60 + 30 new = 90; the third would bring 60 more.
    expect(plan.map((t) => t.map((w) => Object.keys(w.allocations).length))).toEqual([[90], [60]]);
  });

  it('writes the additions it is told to keep alone on their own', () => {
    const [a1, a2, a3] = [addition('a'), addition('a'), addition('a')];
    const plan = planUsageWrites([a1, a2, a3], { alone: new Set([a2]) });
    expect(plan.map((t) => t.map((w) => w.additions))).toEqual([[[a1, a3]], [[a2]]]);
  });
});

describe('readCancellation (what a cancelled usage transaction says, item by item)', () => {
  const [a1, a2, b1] = [addition('a'), addition('a'), addition('b')];
  const [transaction] = planUsageWrites([a1, a2, b1]);
  // Items: a1 marker, a2 marker, bucket a, b1 marker, bucket b.

  it('makes an event whose marker exists a duplicate, whatever its bucket says, and the others of a sealed bucket sealed', () => {
    const read = readCancellation(transaction, ['ConditionalCheckFailed', 'None', 'ConditionalCheckFailed', 'None', 'None']);
    expect(read.outcomes).toEqual(new Map([[a1, 'duplicate'], [a2, 'sealed']]));
    expect(read).toMatchObject({ alone: [], conflict: false });
  });

  it('splits a merged write that is too large, and refuses a single one', () => {
    const read = readCancellation(transaction, ['None', 'None', 'ValidationError', 'None', 'ValidationError']);
    expect(read.alone).toEqual([a1, a2]);
    expect(read.outcomes).toEqual(new Map([[b1, 'too-large']]));
  });

  it('reports a conflict on any item, and settles nothing for it', () => {
    const read = readCancellation(transaction, ['None', 'None', 'None', 'TransactionConflict', 'None']);
    expect(read).toEqual({ outcomes: new Map(), alone: [], conflict: true });
  });
});
