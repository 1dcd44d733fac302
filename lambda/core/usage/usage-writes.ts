import { MAX_ALLOCATIONS_PER_EVENT } from './usage-event';
import type { UsageAddition } from './ingest';

/**
 * How a message's usage is written: events for the same hour bucket are summed into one bucket
 * update, which goes in one DynamoDB transaction with each event's de-duplication marker; several
 * buckets share a transaction up to its item limit. Fewer, larger transactions: one per message
 * instead of one per event, and no conflicts between events of one message on one bucket.
 */

/** DynamoDB TransactWriteItems: items per transaction. */
export const MAX_TRANSACTION_ITEMS = 100;

/** One bucket update and the markers of the events it adds. */
export interface BucketWrite {
  readonly bucket: UsageAddition['bucket'];
  readonly additions: readonly UsageAddition[];
  readonly quantity: number;
  /** Quantity per allocation tag set, summed over the additions. */
  readonly allocations: Readonly<Record<string, number>>;
}

/** One transaction: each bucket at most once (DynamoDB refuses two operations on one item). */
export type UsageTransaction = readonly BucketWrite[];

export interface UsageWritePlanOptions {
  /** Additions that must be written on their own (a merged update was too large for the item). */
  readonly alone?: ReadonlySet<UsageAddition>;
}

interface DraftWrite {
  readonly bucket: UsageAddition['bucket'];
  readonly additions: UsageAddition[];
  readonly allocations: Record<string, number>;
  quantity: number;
  tagSets: number;
}

/** Groups additions into bucket writes and packs those into transactions, in input order. */
export function planUsageWrites(additions: readonly UsageAddition[], options: UsageWritePlanOptions = {}): UsageTransaction[] {
  const writes: DraftWrite[] = [];
  const mergeable = new Map<string, DraftWrite>();
  for (const addition of additions) {
    const alone = options.alone?.has(addition) ?? false;
    let write = alone ? undefined : mergeable.get(addition.bucket.bucketKey);
    // A bucket write holds at most MAX_TRANSACTION_ITEMS - 1 markers, and no more tag sets than one
    // event may carry: the update expression has a size limit.
    if (write && (write.additions.length >= MAX_TRANSACTION_ITEMS - 1 || write.tagSets + newTagSets(write, addition) > MAX_ALLOCATIONS_PER_EVENT)) {
      write = undefined;
    }
    if (!write) {
      write = { bucket: addition.bucket, additions: [], allocations: {}, quantity: 0, tagSets: 0 };
      writes.push(write);
      if (!alone) mergeable.set(addition.bucket.bucketKey, write);
    }
    write.additions.push(addition);
    write.quantity += addition.quantity;
    write.tagSets += newTagSets(write, addition);
    for (const tagSet in addition.allocations) {
      write.allocations[tagSet] = (write.allocations[tagSet] ?? 0) + addition.allocations[tagSet];
    }
  }
  return packTransactions(writes);
}

function newTagSets(write: DraftWrite, addition: UsageAddition): number {
  let count = 0;
  for (const tagSet in addition.allocations) if (!(tagSet in write.allocations)) count++;
  return count;
}

/** First fit: each write goes in the first transaction with room for its items and without its bucket. */
function packTransactions(writes: readonly BucketWrite[]): UsageTransaction[] {
  const transactions: { writes: BucketWrite[]; items: number; buckets: Set<string> }[] = [];
  for (const write of writes) {
    const items = write.additions.length + 1;
    let target = transactions.find((t) => t.items + items <= MAX_TRANSACTION_ITEMS && !t.buckets.has(write.bucket.bucketKey));
    if (!target) transactions.push((target = { writes: [], items: 0, buckets: new Set() }));
    target.writes.push(write);
    target.items += items;
    target.buckets.add(write.bucket.bucketKey);
  }
  return transactions.map((t) => t.writes);
}
