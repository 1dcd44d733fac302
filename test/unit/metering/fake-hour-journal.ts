/**
 * In-memory stand-ins for the fold's ports (lambda/core/metering/fold-hours.ts): a usage journal
 * that keeps entries per hour, seals, early-metering (flush) records and the fold cursor, and a
 * sealed-bucket writer; both write into one ledger map, as the two DynamoDB adapters write into the
 * Metering ledger table. Every port call is logged in order, so tests can check what happened when.
 * Plus builders for journal entries and three customers.
 */
import { FoldedBucket, inEntryIdOrder } from '../../../lambda/core/metering/fold';
import { EarlyMetering, HourJournal, sealedBucketOf, SealedBucketWriter } from '../../../lambda/core/metering/fold-hours';
import { bucketKeyOf, HourBucket } from '../../../lambda/core/metering/hour-bucket';
import { AppendOutcome, entryIdOf, JournalCustomer, JournalEntry, JournalEvent } from '../../../lambda/core/usage/usage-journal';
import { LICENSE_ARN, OTHER_LICENSE_ARN } from './fixtures';

export const CUSTOMER_A: JournalCustomer = {
  customerKey: 'license#l-0123456789abcdef0123',
  productCode: 'prod-license',
  identityMode: 'license',
  customerAWSAccountId: '111122223333',
  licenseArn: LICENSE_ARN,
};

export const CUSTOMER_B: JournalCustomer = {
  customerKey: 'license#l-fedcba9876543210fedc',
  productCode: 'prod-license',
  identityMode: 'license',
  customerAWSAccountId: '444455556666',
  licenseArn: OTHER_LICENSE_ARN,
};

export const CUSTOMER_LEGACY: JournalCustomer = {
  customerKey: 'legacy#prod-legacy#cust-legacy-1',
  productCode: 'prod-legacy',
  identityMode: 'legacy',
  customerAWSAccountId: '777788889999',
  customerIdentifier: 'cust-legacy-1',
};

/** An event as a test writes it: its customer object instead of an index. */
export interface EventSpec {
  readonly customer: JournalCustomer;
  readonly d?: string;
  readonly q: number;
  /** Position in the message; the event's index in the entry when left out. */
  readonly p?: number;
  readonly id?: string;
  readonly a?: Record<string, number>;
}

export interface EntrySpec {
  readonly messageId: string;
  readonly hourStart: string;
  readonly rolledFrom?: string;
  readonly part?: number;
  /** Defaults to ten minutes into `hourStart`. */
  readonly writtenAt?: string;
  readonly events: readonly EventSpec[];
}

/** A journal entry as ingestion writes it: each customer listed once, events pointing at it. */
export function entryOf(spec: EntrySpec): JournalEntry {
  const customers: JournalCustomer[] = [];
  const index = new Map<string, number>();
  const events: JournalEvent[] = spec.events.map((e, i) => {
    let c = index.get(e.customer.customerKey);
    if (c === undefined) {
      c = customers.length;
      index.set(e.customer.customerKey, c);
      customers.push(e.customer);
    }
    return {
      c,
      d: e.d ?? 'requests',
      q: e.q,
      p: e.p ?? i,
      ...(e.id === undefined ? {} : { id: e.id }),
      ...(e.a === undefined ? {} : { a: e.a }),
    };
  });
  return {
    messageId: spec.messageId,
    hourStart: spec.hourStart,
    ...(spec.rolledFrom === undefined ? {} : { rolledFrom: spec.rolledFrom }),
    ...(spec.part === undefined ? {} : { part: spec.part }),
    customers,
    events,
    writtenAt: spec.writtenAt ?? new Date(Date.parse(spec.hourStart) + 10 * 60_000).toISOString(),
  };
}

/** `2026-11-02T09` -> `2026-11-02T09:00:00.000Z`. */
export const hour = (dayAndHour: string): string => `${dayAndHour}:00:00.000Z`;

/** The fields every bucket of the customer, dimension and hour carries. */
export function bucketIdentityOf(customer: JournalCustomer, dimension: string, hourStart: string) {
  return {
    bucketKey: bucketKeyOf(customer.customerKey, dimension, hourStart),
    customerKey: customer.customerKey,
    productCode: customer.productCode,
    identityMode: customer.identityMode,
    customerAWSAccountId: customer.customerAWSAccountId,
    licenseArn: customer.licenseArn,
    customerIdentifier: customer.customerIdentifier,
    dimension,
    hourStart,
  };
}

export interface FlushCall {
  readonly hourStart: string;
  readonly customerKey: string;
  readonly entryIds: readonly string[];
  readonly buckets: readonly FoldedBucket[];
  readonly at: string;
}

const copy = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

export class FakeHourJournal implements HourJournal {
  readonly entriesByHour = new Map<string, JournalEntry[]>();
  readonly sealed = new Set<string>();
  /** hour -> customer -> entry ids counted by its early metering. */
  readonly flushRecords = new Map<string, Map<string, EarlyMetering>>();
  readonly flushCalls: FlushCall[] = [];
  readonly markFoldedCalls: string[] = [];
  cursor: string | undefined;
  /** Entries are copied in and out (so a test cannot change what was stored); off for big hours. */
  copies = true;
  /** entries() of an hour not sealed throws (for the metering run, which must seal first). */
  requireSealedReads = false;
  /** Makes recordFlush answer 'exists' (e.g. a concurrent early metering won). */
  flushExists?: (hourStart: string, customerKey: string) => boolean;
  /** markFolded throws once for this hour (a crash after the buckets were written). */
  crashOnMarkFolded?: string;

  constructor(
    /** The Metering ledger: early metering writes its buckets there. */
    readonly ledger: Map<string, HourBucket> = new Map(),
    readonly log: string[] = [],
  ) {}

  /** Adds entries as they are, whatever the seals (test setup). */
  add(...entries: JournalEntry[]): this {
    for (const entry of entries) {
      if (this.has(entry)) throw new Error(`entry ${entryIdOf(entry)} of ${entry.hourStart} added twice`);
      const list = this.entriesByHour.get(entry.hourStart) ?? [];
      list.push(this.copies ? copy(entry) : entry);
      this.entriesByHour.set(entry.hourStart, list);
      this.entryIds.add(`${entry.hourStart} ${entryIdOf(entry)}`);
    }
    return this;
  }

  private readonly entryIds = new Set<string>();
  private has(entry: JournalEntry): boolean {
    return this.entryIds.has(`${entry.hourStart} ${entryIdOf(entry)}`);
  }

  /** What ingestion's append does to one entry: refused once its hour is sealed. */
  append(entry: JournalEntry): AppendOutcome {
    if (this.has(entry)) return 'duplicate';
    if (this.sealed.has(entry.hourStart)) return 'sealed';
    this.add(entry);
    return 'appended';
  }

  async foldedThrough(): Promise<string | undefined> {
    this.log.push('foldedThrough');
    return this.cursor;
  }

  async markFolded(hourStart: string, _at: Date): Promise<void> {
    this.log.push(`markFolded ${hourStart}`);
    if (this.crashOnMarkFolded === hourStart) {
      this.crashOnMarkFolded = undefined;
      throw new Error(`crash marking ${hourStart} folded`);
    }
    if (!this.sealed.has(hourStart)) throw new Error(`${hourStart} marked folded but never sealed`);
    if (this.cursor !== undefined && hourStart <= this.cursor) throw new Error(`cursor moved back from ${this.cursor} to ${hourStart}`);
    this.markFoldedCalls.push(hourStart);
    this.cursor = hourStart;
  }

  async sealHours(hours: readonly string[], _at: Date): Promise<void> {
    for (const h of hours) {
      this.log.push(`seal ${h}`);
      this.sealed.add(h);
    }
  }

  /** In entry id order, as the DynamoDB journal reads them. */
  async *readEntries(hourStart: string): AsyncGenerator<JournalEntry> {
    this.log.push(`entries ${hourStart}`);
    if (this.requireSealedReads && !this.sealed.has(hourStart)) throw new Error(`entries of ${hourStart} read before the hour was sealed`);
    const entries = this.entriesByHour.get(hourStart) ?? [];
    yield* inEntryIdOrder(this.copies ? copy(entries) : entries);
  }

  async entries(hourStart: string): Promise<JournalEntry[]> {
    const entries: JournalEntry[] = [];
    for await (const entry of this.readEntries(hourStart)) entries.push(entry);
    return entries;
  }

  async flushes(hourStart: string): Promise<Map<string, EarlyMetering>> {
    this.log.push(`flushes ${hourStart}`);
    const records = this.flushRecords.get(hourStart) ?? new Map<string, EarlyMetering>();
    return new Map([...records].map(([customerKey, record]) => [customerKey, { entryIds: new Set(record.entryIds), rejected: copy(record.rejected) }]));
  }

  async recordFlush(hourStart: string, customerKey: string, early: EarlyMetering, buckets: readonly FoldedBucket[], at: Date): Promise<'recorded' | 'exists'> {
    const entryIds = [...early.entryIds];
    this.log.push(`recordFlush ${hourStart} ${customerKey}`);
    this.flushCalls.push(copy({ hourStart, customerKey, entryIds, buckets, at: at.toISOString() }));
    const records = this.flushRecords.get(hourStart) ?? new Map<string, EarlyMetering>();
    if (records.has(customerKey) || buckets.some((b) => this.ledger.has(b.bucketKey)) || this.flushExists?.(hourStart, customerKey)) return 'exists';
    records.set(customerKey, { entryIds: new Set(entryIds), rejected: copy(early.rejected) });
    this.flushRecords.set(hourStart, records);
    for (const bucket of buckets) this.ledger.set(bucket.bucketKey, sealedBucketOf(copy(bucket), at));
    return 'recorded';
  }
}

export class FakeSealedBucketWriter implements SealedBucketWriter {
  /** Every call, in order, with the buckets as given. */
  readonly writes: { buckets: FoldedBucket[]; at: string }[] = [];
  /** putSealedBuckets throws once when asked to write buckets of this hour (nothing written). */
  crashOnHour?: string;
  /** Writes are recorded (copied) in `writes`; off for big hours. */
  recordWrites = true;

  constructor(
    readonly ledger: Map<string, HourBucket>,
    readonly log: string[] = [],
  ) {}

  async putSealedBuckets(buckets: readonly FoldedBucket[], at: Date): Promise<HourBucket[]> {
    const hours = [...new Set(buckets.map((b) => b.hourStart))].sort();
    this.log.push(`put ${hours.join(',')}`);
    if (this.crashOnHour !== undefined && hours.includes(this.crashOnHour)) {
      this.crashOnHour = undefined;
      throw new Error(`crash writing the buckets of ${hours.join(',')}`);
    }
    if (this.recordWrites) this.writes.push(copy({ buckets: [...buckets], at: at.toISOString() }));
    const written = buckets.map((b) => sealedBucketOf(b, at));
    for (const b of written) this.ledger.set(b.bucketKey, b);
    return written;
  }

  /** Bucket keys ever written by the metering run. */
  writtenKeys(): string[] {
    return this.writes.flatMap((w) => w.buckets.map((b) => b.bucketKey));
  }
}

/** A journal and a bucket writer sharing one ledger and one call log. */
export function fakeFoldPorts(): { journal: FakeHourJournal; buckets: FakeSealedBucketWriter; ledger: Map<string, HourBucket>; log: string[] } {
  const ledger = new Map<string, HourBucket>();
  const log: string[] = [];
  return { journal: new FakeHourJournal(ledger, log), buckets: new FakeSealedBucketWriter(ledger, log), ledger, log };
}
