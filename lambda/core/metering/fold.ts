import { MarketplaceLimits as Limits } from '../marketplace-limits';
import { entryIdOf, JournalCustomer, JournalEntry } from '../usage/usage-journal';
import { RejectionReason } from '../usage/usage-event';
import { redrivenEventOf } from '../usage/dead-letter-redrive';
import { BucketIdentity, bucketKeyOf } from './hour-bucket';
import { EventIdSet } from './event-id-set';
import { MessagePositionSet } from './message-position-set';

/**
 * Folding a sealed hour's journal entries into hour buckets, free of AWS. The result depends only on
 * the entries, the order they are taken in (entry-id order, late entries last) and what is already
 * known of the hour, so folding again after a crash gives the same buckets.
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

/** An event folding refuses, with what the dead-letter queue needs to explain it. */
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
   * entries that early metering counted: their other events of the hour came too late, but for
   * copies of events those entries hold (duplicates).
   */
  readonly flushed?: ReadonlyMap<string, ReadonlySet<string>>;
  /**
   * Whether a late event (its own hour was sealed when it arrived) was seen in an earlier hour, by
   * seenKeyOf(its own hour, customer, eventId).
   */
  readonly seenBefore?: (seenKey: string) => boolean;
  /** Fold only this customer's events (early metering of one customer). */
  readonly customerKey?: string;
}

export interface FoldResult {
  readonly buckets: FoldedBucket[];
  readonly rejected: FoldRejection[];
  /** Events dropped because an event with the same customer, eventId and own hour came before. */
  readonly duplicates: number;
  /** Per customer, the ids of the entries holding its events, counted or not (when folding one customer). */
  readonly sources: ReadonlyMap<string, readonly string[]>;
}

/**
 * DynamoDB keeps an item under 400 KB: a bucket's allocations (tag set keys and quantities) are kept
 * well under that, and under AWS's 2,500 allocations per record.
 */
export const MAX_ALLOCATION_BYTES_PER_BUCKET = 300_000;

/** The identity of an event for de-duplication: its own hour, customer and eventId. */
export function seenKeyOf(ownHour: string, customerKey: string, eventId: string): string {
  return `${ownHour}|${customerKey}|${eventId}`;
}

/**
 * The identity of an event without an eventId: its own hour, customer, message id and position (the
 * `#` after the hour keeps it apart from any seenKeyOf).
 */
export function positionSeenKeyOf(ownHour: string, customerKey: string, messageId: string, position: number): string {
  return `${ownHour}#${customerKey}|${messageId}|${position}`;
}

/**
 * An entry's event's identity for de-duplication: seenKeyOf, or positionSeenKeyOf without an eventId
 * (and with the eventId a dead-letter redrive gives such an event: redrivenEventOf).
 */
export function eventSeenKeyOf(ownHour: string, entry: Pick<JournalEntry, 'messageId' | 'customers'>, event: JournalEntry['events'][number]): string {
  const { customerKey } = entry.customers[event.c];
  if (event.id === undefined) return positionSeenKeyOf(ownHour, customerKey, entry.messageId, event.p);
  const redriven = redrivenEventOf(event.id);
  return redriven ? positionSeenKeyOf(ownHour, customerKey, redriven.messageId, redriven.position) : seenKeyOf(ownHour, customerKey, event.id);
}

/** Adds an entry's event to those seen; false when it was there already. */
function addSeen(seen: SeenEvents, messageId: string, event: JournalEntry['events'][number]): boolean {
  if (event.id === undefined) return seen.positions.add(messageId, event.p);
  const redriven = redrivenEventOf(event.id);
  return redriven ? seen.positions.add(redriven.messageId, redriven.position) : seen.ids.add(event.id);
}

interface DraftBucket {
  readonly identity: BucketIdentity & { bucketKey: string };
  quantity: number;
  readonly allocations: Record<string, number>;
  allocationBytes: number;
  tagSets: number;
  usageEvents: number;
  firstUsageAt: string;
  lastUsageAt: string;
}

/** Events seen: by eventId, or without one by message id and position. */
interface SeenEvents {
  readonly ids: EventIdSet;
  readonly positions: MessagePositionSet;
}

const noneSeen = (): SeenEvents => ({ ids: new EventIdSet(), positions: new MessagePositionSet() });

/** What folding keeps per customer: looked up once per event, nothing allocated per event. */
interface CustomerFold {
  readonly customer: JournalCustomer;
  readonly skip: boolean;
  /** Set when the customer was metered early: the entries that counted. */
  readonly flushedEntries?: ReadonlySet<string>;
  /** Metered early: the events (eventSeenKeyOf) of the entries the early metering read. */
  readonly flushedSeen?: Set<string>;
  /** Metered early: the events of other entries, judged once every entry of the hour is in (result). */
  afterFlush?: { readonly seenKey: string; readonly refused: FoldRejection }[];
  readonly buckets: Map<string, DraftBucket>;
  /** The customer's events seen for this hour (late events keep theirs per own hour, apart). */
  readonly seen: SeenEvents;
  /** The last entry (by index) listed in the customer's sources. */
  lastCounted: number;
}

/**
 * Folds an hour's entries, all in memory: entries on time in entry-id order, then late ones (see
 * HourFold).
 */
export function foldHour(input: FoldInput): FoldResult {
  const fold = new HourFold(input);
  const late: JournalEntry[] = [];
  for (const entry of inEntryIdOrder(input.entries)) {
    if (entry.rolledFrom === undefined) fold.add(entry);
    else late.push(entry);
  }
  for (const entry of late) fold.add(entry, input.seenBefore);
  return fold.result();
}

/** Entries sorted by entry id (code-unit order; the journal's keys are ASCII). */
export function inEntryIdOrder(entries: readonly JournalEntry[]): JournalEntry[] {
  const ordered = entries.map((entry) => ({ entry, entryId: entryIdOf(entry) }));
  ordered.sort((a, b) => (a.entryId < b.entryId ? -1 : a.entryId > b.entryId ? 1 : 0));
  return ordered.map(({ entry }) => entry);
}

/**
 * A fold taking an hour's entries one at a time, so an hour never has to be in memory: what it
 * keeps is the buckets and each customer's eventIds. The result depends on the order entries are
 * added in; the metering run adds the entries on time in the journal's order (entry id) and the
 * late ones after them, sorted, so a fold repeated after a crash comes to the same buckets.
 */
export class HourFold {
  private readonly customers = new Map<string, CustomerFold>();
  /** Late events seen, by own hour and customer. */
  private readonly seenLate = new Map<string, SeenEvents>();
  private readonly rejected: FoldRejection[] = [];
  private readonly sources = new Map<string, string[]>();
  private duplicates = 0;
  private entriesAdded = 0;

  constructor(private readonly input: Omit<FoldInput, 'entries' | 'seenBefore'>) {}

  /**
   * Folds an entry's events in. `seenBefore` (late entries only): whether the hours before this
   * one saw an event, by seenKeyOf.
   */
  add(entry: JournalEntry, seenBefore?: FoldInput['seenBefore']): void {
    const { hourStart, flushed, customerKey: onlyCustomer } = this.input;
    const { customers } = this;
    const entryIndex = this.entriesAdded++;
    let entryId: string | undefined;
    const late = entry.rolledFrom !== undefined;
    for (const event of entry.events) {
      const customer = entry.customers[event.c];
      let fold = customers.get(customer.customerKey);
      if (!fold) {
        const flushedEntries = flushed?.get(customer.customerKey);
        fold = {
          customer,
          skip: onlyCustomer !== undefined && customer.customerKey !== onlyCustomer,
          flushedEntries,
          ...(flushedEntries ? { flushedSeen: new Set<string>(), afterFlush: [] } : {}),
          buckets: new Map(),
          seen: noneSeen(),
          lastCounted: -1,
        };
        customers.set(customer.customerKey, fold);
      }
      if (fold.skip) continue;
      // Only early metering needs the entries it read: the hour's fold skips their events.
      if (onlyCustomer !== undefined && fold.lastCounted !== entryIndex) {
        fold.lastCounted = entryIndex;
        entryId ??= entryIdOf(entry);
        const list = this.sources.get(customer.customerKey);
        if (list) list.push(entryId);
        else this.sources.set(customer.customerKey, [entryId]);
      }
      if (fold.flushedEntries) {
        entryId ??= entryIdOf(entry);
        const seenKey = eventSeenKeyOf(entry.rolledFrom ?? hourStart, entry, event);
        if (fold.flushedEntries.has(entryId)) fold.flushedSeen!.add(seenKey);
        // Counted by an earlier hour (a late copy): a duplicate, as in any hour.
        else if (late && seenBefore?.(seenKey)) this.duplicates++;
        // Whether the early metering read a copy of it (another delivery of the same message, or the
        // same eventId) is known only once every entry is in: entries come in entry-id order.
        else fold.afterFlush!.push({ seenKey, refused: rejection(entry, event, customer, 'hour-already-billed', `the customer's usage for ${hourStart} was already metered (its access ended)`) });
        continue;
      }
      // Counted once per customer and own hour: by eventId, or by message id and position.
      if (late && seenBefore?.(eventSeenKeyOf(entry.rolledFrom!, entry, event))) {
        this.duplicates++;
        continue;
      }
      let seen = fold.seen;
      if (late) {
        const lateKey = `${entry.rolledFrom}|${customer.customerKey}`;
        seen = this.seenLate.get(lateKey) ?? noneSeen();
        this.seenLate.set(lateKey, seen);
      }
      if (!addSeen(seen, entry.messageId, event)) {
        this.duplicates++;
        continue;
      }
      let bucket = fold.buckets.get(event.d);
      if (!bucket) {
        bucket = {
          identity: {
            bucketKey: bucketKeyOf(customer.customerKey, event.d, hourStart),
            customerKey: customer.customerKey,
            productCode: fold.customer.productCode,
            identityMode: fold.customer.identityMode,
            customerAWSAccountId: fold.customer.customerAWSAccountId,
            licenseArn: fold.customer.licenseArn,
            customerIdentifier: fold.customer.customerIdentifier,
            dimension: event.d,
            hourStart,
          },
          quantity: 0,
          allocations: {},
          allocationBytes: 0,
          tagSets: 0,
          usageEvents: 0,
          firstUsageAt: '',
          lastUsageAt: '',
        };
        fold.buckets.set(event.d, bucket);
      }
      if (event.a !== undefined && !addAllocations(bucket, event.a)) {
        this.rejected.push(rejection(entry, event, customer, 'too-many-tag-sets', `the hour bucket ${bucket.identity.bucketKey} holds too many distinct allocation tag sets`));
        continue;
      }
      bucket.quantity += event.q;
      bucket.usageEvents += 1;
      // Times of counted events only (a refused first event does not date the bucket).
      if (entry.writtenAt !== bucket.lastUsageAt) {
        if (bucket.firstUsageAt === '' || entry.writtenAt < bucket.firstUsageAt) bucket.firstUsageAt = entry.writtenAt;
        if (entry.writtenAt > bucket.lastUsageAt) bucket.lastUsageAt = entry.writtenAt;
      }
    }
  }

  result(): FoldResult {
    const buckets: FoldedBucket[] = [];
    for (const fold of this.customers.values()) {
      // A customer metered early: its events the early metering did not read came too late, unless
      // they are copies of one it read (counted then, so billed: refusing it too would dead-letter a
      // billed event), or of one refused here already (one letter per event).
      const refusedKeys = new Set<string>();
      for (const { seenKey, refused } of fold.afterFlush ?? []) {
        if (fold.flushedSeen!.has(seenKey) || refusedKeys.has(seenKey)) {
          this.duplicates++;
          continue;
        }
        refusedKeys.add(seenKey);
        this.rejected.push(refused);
      }
      // Judged once, should the result be asked for again.
      if (fold.afterFlush) fold.afterFlush.length = 0;
      for (const b of fold.buckets.values()) {
        if (b.usageEvents === 0) continue;
        // Field by field: spreading the identity cost about 10 µs a bucket (an hour can hold 100,000s).
        const { identity } = b;
        buckets.push({
          bucketKey: identity.bucketKey,
          customerKey: identity.customerKey,
          productCode: identity.productCode,
          identityMode: identity.identityMode,
          customerAWSAccountId: identity.customerAWSAccountId,
          licenseArn: identity.licenseArn,
          customerIdentifier: identity.customerIdentifier,
          dimension: identity.dimension,
          hourStart: identity.hourStart,
          quantity: b.quantity,
          allocations: b.allocations,
          usageEvents: b.usageEvents,
          firstUsageAt: b.firstUsageAt,
          lastUsageAt: b.lastUsageAt,
        });
      }
    }
    return { buckets, rejected: this.rejected, duplicates: this.duplicates, sources: this.sources };
  }
}

function rejection(
  entry: JournalEntry,
  event: JournalEntry['events'][number],
  customer: JournalCustomer,
  reason: RejectionReason,
  message: string,
): FoldRejection {
  return {
    reason,
    message,
    messageId: entry.messageId,
    position: event.p,
    customerKey: customer.customerKey,
    dimension: event.d,
    quantity: event.q,
    ...(event.id === undefined ? {} : { eventId: event.id }),
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
