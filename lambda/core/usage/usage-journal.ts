import { CustomerIdentity } from '../customer';
import type { Rejection } from './usage-event';

/**
 * The usage journal: ingestion writes a queue message's accepted events as one entry per hour they
 * count in, and nothing else. The metering run seals an hour (no entry can be added to it after
 * that), reads the hour's entries and folds them into hour buckets (fold.ts). One write per message
 * and hour instead of one per event and bucket: the entry key (hour, message id) is the
 * de-duplication marker of a redelivered message, and events that repeat an eventId in another
 * message are dropped when the hour is folded.
 */

/** A customer as an entry records it: what its bucket needs, so folding reads no other table. */
export type JournalCustomer = Pick<
  CustomerIdentity,
  'customerKey' | 'productCode' | 'identityMode' | 'customerAWSAccountId' | 'licenseArn' | 'customerIdentifier'
>;

/** One accepted usage event, as small as it can be: entries are paid for by the kilobyte. */
export interface JournalEvent {
  /** Index of the event's customer in the entry's `customers`. */
  readonly c: number;
  /** Dimension. */
  readonly d: string;
  /** Quantity. */
  readonly q: number;
  /** The event's position in its message. */
  readonly p: number;
  /** The producer's eventId, when it gave one (else the message id + position identify the event). */
  readonly id?: string;
  /** Quantity per allocation tag set (tagSetKey). */
  readonly a?: Readonly<Record<string, number>>;
}

export interface JournalEntry {
  /** The SQS message the events came in. */
  readonly messageId: string;
  /** The hour the events count in (ISO 8601 start of the UTC hour). */
  readonly hourStart: string;
  /**
   * Set when the events' own hour was already sealed when they arrived: they count in `hourStart`,
   * the hour then open, instead.
   */
  readonly rolledFrom?: string;
  /** Set when the message's events of this hour did not fit one item: the part's number (1, 2, ...). */
  readonly part?: number;
  /**
   * Set on an entry a redelivery writes for events its message's earlier deliveries did not count
   * (they were refused then, or never written): the smallest position among its events, which no
   * other entry of the message holds, so the entry id is new and a further redelivery finds it.
   */
  readonly supplement?: number;
  readonly customers: readonly JournalCustomer[];
  readonly events: readonly JournalEvent[];
  /** When ingestion wrote it. */
  readonly writtenAt: string;
}

/**
 * What an entry is stored under: unique per message and hour. A late entry's id also names the hour
 * it came from, so a message can have a normal and a late entry in one hour.
 */
export function entryIdOf(entry: Pick<JournalEntry, 'messageId' | 'rolledFrom' | 'part' | 'supplement'>): string {
  let id = entry.supplement === undefined ? entry.messageId : `${entry.messageId}#more${entry.supplement}`;
  if (entry.part !== undefined) id = `${id}#part${entry.part}`;
  return entry.rolledFrom === undefined ? id : `${id}#from#${entry.rolledFrom}`;
}

/**
 * An entry's stored size, near enough (the item's JSON and keys): DynamoDB items hold at most
 * 400 KB, transactions 4 MB.
 */
export function entryBytes(entry: Pick<JournalEntry, 'customers' | 'events'>): number {
  let bytes = 200 + entry.customers.length * 200;
  for (const event of entry.events) bytes += eventBytes(event);
  return bytes;
}

function eventBytes(event: Pick<JournalEvent, 'd' | 'id' | 'a'>): number {
  let bytes = 60 + jsonTextBytes(event.d) + (event.id === undefined ? 0 : jsonTextBytes(event.id));
  if (event.a) for (const tagSet in event.a) bytes += tagSet.length + 16;
  return bytes;
}

/**
 * The UTF-8 bytes of a text inside a JSON string, as entries are stored: an eventId may hold any
 * character, and an escaped control character takes six bytes. (Tag sets need no measuring: their
 * characters are never escaped.)
 */
export function jsonTextBytes(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // Printable ASCII but `"` and `\`: one byte each, the usual case.
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return utf8.encode(JSON.stringify(text)).length - 2;
  }
  return text.length;
}

const utf8 = new TextEncoder();

/** Entry size above which a message's events of one hour are split into parts. */
export const MAX_ENTRY_BYTES = 300_000;

/**
 * The journal partition of a message (0..shards-1): entries of one hour spread over a few partitions,
 * and each partition's seal is a separate item, so concurrent ingestion does not contend on one.
 * FNV-1a: stable across runtimes, no crypto needed.
 */
export function journalShardOf(messageId: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < messageId.length; i++) {
    hash ^= messageId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

/** Groups a message's events by the hour they count in, one entry each, customers listed once per entry. */
export class JournalEntryBuilder {
  private readonly entries = new Map<string, Draft[]>();

  constructor(
    private readonly messageId: string,
    private readonly writtenAt: string,
  ) {}

  /** Adds an event (dimension, quantity, position in its message, eventId, allocations) to its hour's entry. */
  add(hourStart: string, customer: JournalCustomer, d: string, q: number, p: number, id: string | undefined, a: Record<string, number> | undefined): void {
    let drafts = this.entries.get(hourStart);
    if (!drafts) this.entries.set(hourStart, (drafts = [newDraft()]));
    let draft = drafts[drafts.length - 1];
    let c = customerIndexOf(draft, customer);
    // Only events with allocations can fill an item: the others are not measured.
    if (a !== undefined) {
      const bytes = eventBytes({ d, id, a }) + (c === undefined ? 200 : 0);
      if (draft.events.length > 0 && draft.bytes + bytes > MAX_ENTRY_BYTES) {
        drafts.push((draft = newDraft()));
        c = undefined;
      }
      draft.bytes += bytes;
    }
    if (c === undefined) {
      c = draft.customers.length;
      draft.customers.push(journalCustomerOf(customer));
      draft.given.push(customer);
    }
    // One shape for every event; undefined fields are left out when stored (JSON).
    draft.events.push({ c, d, q, p, id, a });
  }

  build(): JournalEntry[] {
    return [...this.entries].flatMap(([hourStart, drafts]) =>
      drafts.map((draft, i) => ({
        messageId: this.messageId,
        hourStart,
        ...(drafts.length > 1 ? { part: i + 1 } : {}),
        customers: draft.customers,
        events: draft.events,
        writtenAt: this.writtenAt,
      })),
    );
  }
}

interface Draft {
  readonly customers: JournalCustomer[];
  /** The customer objects `customers` were made from, index for index (customerIndexOf). */
  readonly given: JournalCustomer[];
  readonly events: JournalEvent[];
  /** Size of the events with allocations, plus their customers. */
  bytes: number;
}

const newDraft = (): Draft => ({ customers: [], given: [], events: [], bytes: 0 });

/**
 * The customer's index in the draft, if listed: found by identity in a scan, not in a Map. A message
 * holds at most MAX_EVENTS_PER_MESSAGE (100) events, and a Map per entry (made, grown and rehashed
 * for every message) cost about 70 bytes of garbage an event. A customer given as two objects is
 * listed twice, which is harmless: folding goes by customerKey.
 */
function customerIndexOf(draft: Draft, customer: JournalCustomer): number | undefined {
  const { given } = draft;
  for (let i = 0; i < given.length; i++) if (given[i] === customer) return i;
  return undefined;
}

/** A customer's journal form, made once per customer object (directories keep theirs for a while). */
function journalCustomerOf(customer: JournalCustomer): JournalCustomer {
  let made = journalCustomers.get(customer);
  if (made === undefined) {
    const { customerKey, productCode, identityMode, customerAWSAccountId, licenseArn, customerIdentifier } = customer;
    // Undefined fields are left out when stored (JSON).
    made = { customerKey, productCode, identityMode, customerAWSAccountId, licenseArn, customerIdentifier };
    journalCustomers.set(customer, made);
  }
  return made;
}

const journalCustomers = new WeakMap<JournalCustomer, JournalCustomer>();

/** What writing an entry came to. */
export type AppendOutcome =
  /** Written: its events will be folded with its hour. */
  | 'appended'
  /** The message's entry for that hour exists (a redelivery): its events were counted already. */
  | 'duplicate'
  /** The hour is sealed: nothing was written; the events belong in the hour now open. */
  | 'sealed';

export interface UsageJournal {
  /** Writes each entry unless its key exists or its hour is sealed; one outcome per entry, in order. */
  append(entries: readonly JournalEntry[]): Promise<AppendOutcome[]>;
  /**
   * The positions of a message's events that the journal holds (counted by earlier deliveries),
   * found from the own hours of its events (`hours`): the entries there, and the hours late entries
   * were counted in. Strongly consistent. Asked only for redelivered messages.
   */
  storedPositions(messageId: string, hours: readonly string[]): Promise<ReadonlySet<number>>;
  /**
   * Records the events of a message that this delivery refused, before their dead letters are sent:
   * a redelivery (this one failed later, say) refuses them again instead of judging them anew, so
   * no event is both counted and dead-lettered as refused.
   */
  recordRefused(messageId: string, refused: ReadonlyMap<number, Rejection>, at: Date): Promise<void>;
  /** The events of a message that earlier deliveries refused (recordRefused), by position. Strongly consistent. */
  refusedPositions(messageId: string): Promise<ReadonlyMap<number, Rejection>>;
}
