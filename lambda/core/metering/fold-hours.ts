import { MarketplaceLimits as Limits } from '../marketplace-limits';
import { HOUR_MS, utcHourStart } from '../utc-hour';
import { JournalEntry } from '../usage/usage-journal';
import { eventSeenKeyOf, FoldedBucket, FoldRejection, FoldResult, HourFold, inEntryIdOrder } from './fold';
import { HourBucket } from './hour-bucket';

/**
 * From the usage journal to sealed hour buckets: each hour that has ended (plus the grace period) is
 * sealed, so ingestion can add nothing more to it, then folded into buckets written once, sealed.
 * A customer whose access ends has its open hours folded at once (early metering); the hour's fold
 * later skips what that counted and refuses what came after.
 */

export interface HourJournal {
  /** The last hour whose fold completed, if any. */
  foldedThrough(): Promise<string | undefined>;
  markFolded(hourStart: string, at: Date): Promise<void>;
  /** Seals the hours: once this resolves, no entry can be appended to them. */
  sealHours(hours: readonly string[], at: Date): Promise<void>;
  /**
   * The hour's entries (a strongly consistent read), one at a time: in the same order every time
   * for a sealed hour (entry id order), so a fold repeated after a crash comes to the same buckets.
   */
  readEntries(hourStart: string): AsyncIterable<JournalEntry>;
  /** Customers of the hour metered early, each with what that early metering read and refused. */
  flushes(hourStart: string): Promise<Map<string, EarlyMetering>>;
  /**
   * Records an early metering of one customer's hour and writes its buckets sealed, all or nothing;
   * `exists` when the hour was already metered early for that customer, or one of the buckets exists.
   */
  recordFlush(hourStart: string, customerKey: string, early: EarlyMetering, buckets: readonly FoldedBucket[], at: Date): Promise<'recorded' | 'exists'>;
}

/** An early metering of one customer's hour, as the hour's fold needs it. */
export interface EarlyMetering {
  /** The entries holding the customer's events when it ran: the hour's fold skips their events. */
  readonly entryIds: ReadonlySet<string> | readonly string[];
  /** Events it refused: dead-lettered by the hour's fold. */
  readonly rejected: readonly FoldRejection[];
}

export interface SealedBucketWriter {
  /**
   * Writes folded buckets sealed, replacing any bucket of the same key, and returns them. Only the
   * metering run writes this way, one run at a time, and before it meters anything: a bucket it
   * replaces was written by an earlier try of the same fold, or by an early metering that landed
   * while this fold ran (see foldSealedHour); neither has been sent to AWS yet.
   */
  putSealedBuckets(buckets: readonly FoldedBucket[], at: Date): Promise<HourBucket[]>;
}

export interface FoldPorts {
  readonly journal: HourJournal;
  readonly buckets: SealedBucketWriter;
}

export interface FoldReport {
  /** Buckets written (sealed) by this call. */
  readonly buckets: HourBucket[];
  /** Events refused while folding: they go to a dead-letter queue. */
  readonly rejected: FoldRejection[];
  /** Events dropped as repeats of a counted eventId. */
  readonly duplicates: number;
}

/** How far back the first fold looks: nothing older can still be billed. */
const FIRST_FOLD_LOOKBACK_MS = Limits.billingWindowSeconds * 1000;

/** Hours after the last folded one (or the billing window, the first time) up to `lastHour`. */
async function hoursToFold(journal: HourJournal, lastHour: number, now: Date): Promise<string[]> {
  const through = await journal.foldedThrough();
  const first = through === undefined ? utcHourStart(new Date(now.getTime() - FIRST_FOLD_LOOKBACK_MS)).getTime() : Date.parse(through) + HOUR_MS;
  const hours: string[] = [];
  for (let hour = first; hour <= lastHour; hour += HOUR_MS) hours.push(new Date(hour).toISOString());
  return hours;
}

/** Seals and folds every hour that ended at or before `cutoff`, oldest first. */
export async function foldHoursEndedBy(ports: FoldPorts, cutoff: Date, now: Date): Promise<FoldReport> {
  const lastHour = utcHourStart(cutoff).getTime() - HOUR_MS;
  const report: FoldReport = { buckets: [], rejected: [], duplicates: 0 };
  const hours = await hoursToFold(ports.journal, lastHour, now);
  // Sealed together (the first run looks back a whole day), then folded in order, each as it is
  // read: a late event's fold checks what the hours before counted.
  await ports.journal.sealHours(hours, now);
  for (const hourStart of hours) {
    addToReport(report, await foldSealedHour(ports, hourStart, now));
    await ports.journal.markFolded(hourStart, now);
  }
  return report;
}

/**
 * Folds a sealed hour, reading its entries as it goes: what it holds is the buckets and the
 * eventIds, not the hour. Customers metered early are known before folding; should an early
 * metering land meanwhile, this fold's bucket replaces its bucket: the hour is sealed, so this fold
 * holds all the customer's usage of the hour, and the early metering's run (queued behind this
 * one) sends the bucket as this fold wrote it.
 */
async function foldSealedHour(ports: FoldPorts, hourStart: string, now: Date): Promise<FoldReport> {
  const early = await ports.journal.flushes(hourStart);
  const flushed = new Map([...early].map(([customerKey, record]) => [customerKey, new Set(record.entryIds)]));
  const result = await foldFromJournal(ports.journal, hourStart, new HourFold({ hourStart, flushed }));
  const written = result.buckets.length > 0 ? await ports.buckets.putSealedBuckets(result.buckets, now) : [];
  const refusedEarly = [...early.values()].flatMap((record) => record.rejected);
  return { buckets: written, rejected: [...refusedEarly, ...result.rejected], duplicates: result.duplicates };
}

/**
 * Feeds the hour's entries to a fold as they are read, except the late ones (their own hour was
 * sealed when they arrived): those are few, kept aside and folded last, in entry id order, once the
 * eventIds of the hours before are known.
 */
async function foldFromJournal(journal: HourJournal, hourStart: string, fold: HourFold, onlyCustomer?: string): Promise<FoldResult> {
  const late: JournalEntry[] = [];
  for await (const entry of journal.readEntries(hourStart)) {
    if (entry.rolledFrom === undefined) fold.add(entry);
    else late.push(entry);
  }
  if (late.length > 0) {
    const seenBefore = await seenBeforeLookup(journal, hourStart, late, onlyCustomer);
    for (const entry of inEntryIdOrder(late)) fold.add(entry, seenBefore);
  }
  return fold.result();
}

/**
 * For late entries: the events (by eventId, or by message id and position) the hours from their own
 * hour up to this one saw for the same customers, read back from those hours' entries (kept for
 * days). Late events are rare and usually an hour late, so this costs nothing in the usual run; an
 * event a day late reads a day of entries, one entry at a time.
 */
async function seenBeforeLookup(journal: HourJournal, hourStart: string, lateEntries: readonly JournalEntry[], onlyCustomer?: string) {
  let earliest = Infinity;
  // Only the customers with late events (or just the one folded): the sets stay small, and hours
  // nobody needs are not read.
  const customers = new Set<string>();
  for (const entry of lateEntries) {
    for (const event of entry.events) {
      const { customerKey } = entry.customers[event.c];
      if (onlyCustomer !== undefined && customerKey !== onlyCustomer) continue;
      earliest = Math.min(earliest, Date.parse(entry.rolledFrom!));
      customers.add(customerKey);
    }
  }
  if (customers.size === 0) return undefined;
  const seen = new Set<string>();
  for (let hour = earliest; hour < Date.parse(hourStart); hour += HOUR_MS) {
    const earlierHour = new Date(hour).toISOString();
    for await (const entry of journal.readEntries(earlierHour)) {
      const ownHour = entry.rolledFrom ?? earlierHour;
      for (const event of entry.events) {
        const { customerKey } = entry.customers[event.c];
        if (customers.has(customerKey)) seen.add(eventSeenKeyOf(ownHour, entry, event));
      }
    }
  }
  return (seenKey: string) => seen.has(seenKey);
}

/**
 * Early metering of one customer (its access is ending): every hour not folded yet, up to the
 * current one or `sealsThrough` if earlier, is folded for that customer alone and its buckets
 * written sealed, with the entries it read and the events it refused (the hour's fold dead-letters
 * those). Returns the buckets written and the events refused.
 */
export async function foldCustomerNow(ports: FoldPorts, customerKey: string, now: Date, sealsThrough?: string): Promise<FoldReport> {
  const report: FoldReport = { buckets: [], rejected: [], duplicates: 0 };
  const lastHour = Math.min(utcHourStart(now).getTime(), sealsThrough === undefined ? Infinity : Date.parse(sealsThrough));
  for (const hourStart of await hoursToFold(ports.journal, lastHour, now)) {
    const flushed = await ports.journal.flushes(hourStart);
    if (flushed.has(customerKey)) continue;
    const result = await foldFromJournal(ports.journal, hourStart, new HourFold({ hourStart, customerKey }), customerKey);
    if (result.buckets.length === 0) continue;
    const early = { entryIds: result.sources.get(customerKey) ?? [], rejected: result.rejected };
    const recorded = await ports.journal.recordFlush(hourStart, customerKey, early, result.buckets, now);
    if (recorded === 'exists') continue;
    addToReport(report, { buckets: result.buckets.map((b) => sealedBucketOf(b, now)), rejected: result.rejected, duplicates: result.duplicates });
  }
  return report;
}

/** Adds an hour's report to the run's; one by one, as an hour can hold more buckets than a call's arguments. */
export function addToReport(report: FoldReport, hour: FoldReport): void {
  for (const bucket of hour.buckets) report.buckets.push(bucket);
  for (const rejection of hour.rejected) report.rejected.push(rejection);
  (report as { duplicates: number }).duplicates += hour.duplicates;
}

/** A folded bucket as the ledger holds it once written. */
export function sealedBucketOf(bucket: FoldedBucket, at: Date): HourBucket {
  // Field by field: a rest-and-spread copy cost about 10 µs a bucket (an hour can hold 100,000s).
  return {
    bucketKey: bucket.bucketKey,
    customerKey: bucket.customerKey,
    productCode: bucket.productCode,
    identityMode: bucket.identityMode,
    customerAWSAccountId: bucket.customerAWSAccountId,
    licenseArn: bucket.licenseArn,
    customerIdentifier: bucket.customerIdentifier,
    dimension: bucket.dimension,
    hourStart: bucket.hourStart,
    quantity: bucket.quantity,
    allocations: bucket.allocations,
    status: 'sealed',
    attempts: 0,
    sealedAt: at.toISOString(),
  };
}
