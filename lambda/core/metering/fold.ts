import { MarketplaceLimits as Limits } from '../marketplace-limits';
import { entryIdOf, eventKeyOf, JournalEntry } from '../usage/usage-journal';
import { RejectionReason } from '../usage/usage-event';
import { BucketIdentity, bucketKeyOf } from './hour-bucket';

/**
 * Folding a sealed hour's journal entries into hour buckets, free of AWS. The result depends only on
 * the entries (in entry-id order) and what is already known of the hour, so folding again after a
 * crash gives the same buckets: they are written once and never change.
 */

export interface FoldedBucket extends BucketIdentity {
  readonly bucketKey: string;
  readonly quantity: number;
  /** Quantity per allocation tag set (tagSetKey). */
  readonly allocations: Readonly<Record<string, number>>;
  readonly usageEvents: number;
  readonly firstUsageAt: string;
  readonly lastUsageAt: string;
}

/** An event folding refuses, with what the usage dead-letter queue needs to explain it. */
export interface FoldRejection {
  readonly reason: RejectionReason;
  readonly message: string;
  readonly messageId: string;
  readonly position: number;
  readonly customerKey: string;
  readonly dimension: string;
  readonly quantity: number;
  readonly eventId?: string;
}

export interface FoldInput {
  readonly hourStart: string;
  readonly entries: readonly JournalEntry[];
  /**
   * Customers whose usage of this hour was metered early (their access ended), with the ids of the
   * entries that early metering counted: their other events of the hour came too late.
   */
  readonly flushed?: ReadonlyMap<string, ReadonlySet<string>>;
  /**
   * Whether a late event (one whose own hour was sealed when it arrived) was counted in an earlier
   * hour, by its countedKey (see FoldResult).
   */
  readonly countedBefore?: (countedKey: string) => boolean;
  /** Fold only this customer's events (early metering of one customer). */
  readonly customerKey?: string;
}

export interface FoldResult {
  readonly buckets: FoldedBucket[];
  readonly rejected: FoldRejection[];
  /** Events dropped because an event with the same eventId was counted before. */
  readonly duplicates: number;
  /**
   * `originHour|customerKey|eventId` of every counted event that carries a producer's eventId: a
   * late copy in a later hour is checked against these.
   */
  readonly countedKeys: string[];
  /** Per customer, the ids of the entries whose events were counted. */
  readonly sources: ReadonlyMap<string, readonly string[]>;
}

/**
 * DynamoDB keeps an item under 400 KB: a bucket's allocations (tag set keys and quantities) are kept
 * well under that, and under AWS's 2,500 allocations per record.
 */
export const MAX_ALLOCATION_BYTES_PER_BUCKET = 300_000;

interface DraftBucket {
  identity: BucketIdentity & { bucketKey: string };
  quantity: number;
  allocations: Record<string, number>;
  allocationBytes: number;
  tagSets: number;
  usageEvents: number;
  firstUsageAt: string;
  lastUsageAt: string;
}

export function countedKeyOf(originHour: string, customerKey: string, eventId: string): string {
  return `${originHour}|${eventKeyOf(customerKey, eventId)}`;
}

export function foldHour(input: FoldInput): FoldResult {
  const { hourStart } = input;
  const buckets = new Map<string, DraftBucket>();
  const rejected: FoldRejection[] = [];
  const counted = new Set<string>();
  const countedKeys: string[] = [];
  const sources = new Map<string, string[]>();
  let duplicates = 0;

  const entries = input.entries
    .map((entry) => ({ entry, entryId: entryIdOf(entry) }))
    .sort((a, b) => (a.entryId < b.entryId ? -1 : a.entryId > b.entryId ? 1 : 0));
  for (const { entry, entryId } of entries) {
    const origin = entry.rolledFrom ?? hourStart;
    const counting = new Set<string>();
    for (const event of entry.events) {
      const customer = entry.customers[event.c];
      if (input.customerKey !== undefined && customer.customerKey !== input.customerKey) continue;
      const reject = (reason: RejectionReason, message: string) =>
        rejected.push({
          reason,
          message,
          messageId: entry.messageId,
          position: event.p,
          customerKey: customer.customerKey,
          dimension: event.d,
          quantity: event.q,
          ...(event.id === undefined ? {} : { eventId: event.id }),
        });

      const flushedEntries = input.flushed?.get(customer.customerKey);
      if (flushedEntries) {
        if (!flushedEntries.has(entryId)) {
          reject('hour-already-billed', `the customer's usage for ${hourStart} was already metered (its access ended)`);
        }
        continue;
      }
      if (event.id !== undefined) {
        const key = countedKeyOf(origin, customer.customerKey, event.id);
        if (counted.has(key) || (entry.rolledFrom !== undefined && input.countedBefore?.(key))) {
          duplicates++;
          continue;
        }
        counted.add(key);
        countedKeys.push(key);
      }

      const bucketKey = bucketKeyOf(customer.customerKey, event.d, hourStart);
      let bucket = buckets.get(bucketKey);
      if (!bucket) {
        bucket = {
          identity: { bucketKey, ...customer, dimension: event.d, hourStart },
          quantity: 0,
          allocations: {},
          allocationBytes: 0,
          tagSets: 0,
          usageEvents: 0,
          firstUsageAt: entry.writtenAt,
          lastUsageAt: entry.writtenAt,
        };
        buckets.set(bucketKey, bucket);
      }
      if (event.a && !addAllocations(bucket, event.a)) {
        reject('too-many-tag-sets', `the hour bucket ${bucketKey} holds too many distinct allocation tag sets`);
        continue;
      }
      bucket.quantity += event.q;
      bucket.usageEvents += 1;
      if (entry.writtenAt < bucket.firstUsageAt) bucket.firstUsageAt = entry.writtenAt;
      if (entry.writtenAt > bucket.lastUsageAt) bucket.lastUsageAt = entry.writtenAt;
      counting.add(customer.customerKey);
    }
    for (const customerKey of counting) {
      let list = sources.get(customerKey);
      if (!list) sources.set(customerKey, (list = []));
      list.push(entryId);
    }
  }

  return {
    buckets: [...buckets.values()]
      .filter((b) => b.usageEvents > 0)
      .map((b) => ({
        ...b.identity,
        quantity: b.quantity,
        allocations: b.allocations,
        usageEvents: b.usageEvents,
        firstUsageAt: b.firstUsageAt,
        lastUsageAt: b.lastUsageAt,
      })),
    rejected,
    duplicates,
    countedKeys,
    sources,
  };
}

/** Adds an event's allocations to its bucket, or nothing when the bucket would hold too many tag sets. */
function addAllocations(bucket: DraftBucket, allocations: Readonly<Record<string, number>>): boolean {
  let newTagSets = 0;
  let newBytes = 0;
  for (const tagSet in allocations) {
    if (!(tagSet in bucket.allocations)) {
      newTagSets++;
      newBytes += tagSet.length + 16;
    }
  }
  // One allocation slot stays free for the untagged remainder (meteringRecordOf).
  if (bucket.tagSets + newTagSets > Limits.maxAllocationsPerRecord - 1 || bucket.allocationBytes + newBytes > MAX_ALLOCATION_BYTES_PER_BUCKET) {
    return false;
  }
  for (const tagSet in allocations) bucket.allocations[tagSet] = (bucket.allocations[tagSet] ?? 0) + allocations[tagSet];
  bucket.tagSets += newTagSets;
  bucket.allocationBytes += newBytes;
  return true;
}
