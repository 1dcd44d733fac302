import { CustomerIdentity, legacyCustomerKey, licenseCustomerKey } from '../customer';
import { bucketKeyOf } from '../metering/hour-bucket';
import { ProductConfig } from '../product-config';
import { utcHourKeyOfMs, utcHourStart } from '../utc-hour';
import { AppendOutcome, JournalEntry, JournalEntryBuilder, JournalEvent, UsageJournal } from './usage-journal';
import { eventTimeMs, ParsedEvent, parseUsageMessage, Rejection, UsageEvent } from './usage-event';
import { checkUsageEvent, tagSetKey, UsageWindow } from './usage-rules';
import { billingDecision, StoredSubscription } from '../lifecycle/subscription-state';

/**
 * Usage ingestion, free of AWS: a queue message's events are validated, matched to a registered
 * customer, and written to the usage journal; a redelivered message adds nothing.
 */

/** A registered customer, with its subscription state when lifecycle events have told it. */
export type KnownCustomer = CustomerIdentity & { readonly subscription?: StoredSubscription };

/** Registered customers, from the Customers table. */
export interface CustomerDirectory {
  /** The registered customers among `customerKeys` (unknown keys are absent from the map). */
  find(customerKeys: readonly string[]): Promise<ReadonlyMap<string, KnownCustomer>>;
}

export interface IngestPorts {
  readonly journal: UsageJournal;
  readonly customers: CustomerDirectory;
  readonly products: readonly ProductConfig[];
  readonly now: () => Date;
  readonly window?: UsageWindow;
}

export type EventResult =
  | { readonly status: 'counted'; readonly bucketKey: string; readonly rolledOver: boolean }
  | { readonly status: 'duplicate'; readonly messageId: string; readonly hourStart: string }
  | { readonly status: 'rejected'; readonly rejection: Rejection; readonly event: unknown; readonly position: number };

export type MessageResult = { readonly rejectedMessage: Rejection } | { readonly events: readonly EventResult[] };

interface AcceptedEvent {
  readonly position: number;
  readonly event: UsageEvent;
  readonly customer: KnownCustomer;
}

export interface QueueMessage {
  readonly messageId: string;
  readonly body: string;
}

/** Ingests one queue message (see ingestMessages). */
export async function ingestMessage(ports: IngestPorts, message: QueueMessage): Promise<MessageResult> {
  return (await ingestMessages(ports, [message]))[0];
}

/**
 * Ingests a batch of queue messages: their valid events are written to the usage journal, one entry
 * per message and hour they count in (usage-journal.ts), all in one append. Infrastructure errors
 * propagate: the caller reports the messages as failed, SQS delivers them again, and the entries
 * already written make a redelivery add nothing.
 */
export async function ingestMessages(ports: IngestPorts, messages: readonly QueueMessage[]): Promise<MessageResult[]> {
  const now = ports.now();
  const parsed = messages.map((message) => parseUsageMessage(message.body));
  const customerKeys = parsed.map((items) => (Array.isArray(items) ? items.map((item) => (item.ok ? customerKeyOf(item.event) : undefined)) : []));
  // The batch's customers in one lookup, not one per event.
  const customers = await ports.customers.find([...new Set(customerKeys.flat().filter((k): k is string => k !== undefined))]);

  const writtenAt = now.toISOString();
  const outcomes: (MessageResult & { events?: EventResult[] })[] = [];
  const pending: { results: EventResult[]; accepted: AcceptedEvent[]; entries: JournalEntry[] }[] = [];
  messages.forEach((message, m) => {
    const items = parsed[m];
    if (!Array.isArray(items)) {
      outcomes.push({ rejectedMessage: items });
      return;
    }
    const results: EventResult[] = new Array(items.length);
    const accepted = acceptEvents(ports, items, customerKeys[m], customers, now, results);
    const entries = accepted.length > 0 ? journalEntries(message.messageId, accepted, writtenAt) : [];
    outcomes.push({ events: results });
    pending.push({ results, accepted, entries });
  });

  const entries = pending.flatMap((p) => p.entries);
  const appended = entries.length > 0 ? await ports.journal.append(entries) : [];
  // Events whose hour was already sealed (and maybe billed) count in the current hour instead.
  const currentHour = utcHourKeyOfMs(now.getTime());
  const late = entries.filter((entry, i) => appended[i] === 'sealed' && entry.hourStart !== currentHour);
  const lateEntries = late.map((entry) => ({ ...entry, hourStart: currentHour, rolledFrom: entry.hourStart }));
  const lateAppended = lateEntries.length > 0 ? await ports.journal.append(lateEntries) : [];
  const outcomeOf = new Map<JournalEntry, { entry: JournalEntry; outcome: AppendOutcome; rolledOver: boolean }>();
  entries.forEach((entry, i) => outcomeOf.set(entry, { entry, outcome: appended[i], rolledOver: false }));
  late.forEach((entry, i) => outcomeOf.set(entry, { entry: lateEntries[i], outcome: lateAppended[i], rolledOver: true }));

  for (const { results, accepted, entries: messageEntries } of pending) {
    for (const original of messageEntries) {
      const { entry, outcome, rolledOver } = outcomeOf.get(original)!;
      settleEntry(entry, outcome, rolledOver, accepted, results);
    }
  }
  return outcomes;
}

/** The message's events that pass every check; the others get their rejection in `results`. */
function acceptEvents(
  ports: IngestPorts,
  items: readonly ParsedEvent[],
  customerKeys: readonly (string | undefined)[],
  customers: ReadonlyMap<string, KnownCustomer>,
  now: Date,
  results: EventResult[],
): AcceptedEvent[] {
  const accepted: AcceptedEvent[] = [];
  for (const item of items) {
    const { position } = item;
    const reject = (rejection: Rejection, event: unknown) => {
      results[position] = { status: 'rejected', rejection, event, position };
    };
    if (!item.ok) {
      reject(item.rejection, item.raw);
      continue;
    }
    const customerKey = customerKeys[position];
    const customer = customerKey === undefined ? undefined : customers.get(customerKey);
    if (!customer) {
      reject(
        customerKey === undefined
          ? { reason: 'invalid-event', message: 'the licence ARN has no licence id' }
          : { reason: 'unknown-customer', message: `no registered customer ${customerKey}` },
        item.event,
      );
      continue;
    }
    const rejection = checkEventFor(customer, item.event, ports.products, now, ports.window);
    if (rejection) reject(rejection, item.event);
    else accepted.push({ position, event: item.event, customer });
  }
  return accepted;
}

/** Each event of an entry gets the entry's outcome. */
function settleEntry(entry: JournalEntry, outcome: AppendOutcome, rolledOver: boolean, accepted: readonly AcceptedEvent[], results: EventResult[]): void {
  for (const e of entry.events) {
    const position = e.p;
    if (outcome === 'appended') {
      results[position] = { status: 'counted', bucketKey: bucketKeyOf(entry.customers[e.c].customerKey, e.d, entry.hourStart), rolledOver };
    } else if (outcome === 'duplicate') {
      results[position] = { status: 'duplicate', messageId: entry.messageId, hourStart: entry.rolledFrom ?? entry.hourStart };
    } else {
      // The current hour is sealed too: metering ran as if later than this clock (local mode).
      results[position] = {
        status: 'rejected',
        rejection: { reason: 'hour-already-billed', message: `the usage for ${entry.hourStart} was already metered` },
        event: accepted.find((a) => a.position === position)!.event,
        position,
      };
    }
  }
}

/** The message's accepted events as journal entries, one per hour. */
export function journalEntries(messageId: string, accepted: readonly AcceptedEvent[], writtenAt: string): JournalEntry[] {
  const builder = new JournalEntryBuilder(messageId, writtenAt);
  for (const { position, event, customer } of accepted) {
    builder.add(utcHourKeyOfMs(eventTimeMs(event)), customer, journalEventOf(event, position));
  }
  return builder.build();
}

/** What the journal keeps of an accepted event. */
export function journalEventOf(event: UsageEvent, position: number): Omit<JournalEvent, 'c'> {
  let a: Record<string, number> | undefined;
  if (event.allocations) {
    a = {};
    for (const allocation of event.allocations) a[tagSetKey(allocation.tags)] = allocation.quantity;
  }
  return {
    d: event.dimension,
    q: event.quantity,
    p: position,
    ...(event.eventId === undefined ? {} : { id: event.eventId }),
    ...(a === undefined ? {} : { a }),
  };
}

/** Whether the customer's product, identity, subscription and the event's own rules allow the event. */
export function checkEventFor(
  customer: KnownCustomer,
  event: UsageEvent,
  products: readonly ProductConfig[],
  now: Date,
  window?: UsageWindow,
): Rejection | null {
  const product = products.find((p) => p.productCode === customer.productCode);
  if (!product) return { reason: 'unknown-product', message: `${customer.productCode} is not a product of this stack` };
  if (event.productCode !== undefined && event.productCode !== customer.productCode) {
    return { reason: 'identity-mismatch', message: `the licence is for ${customer.productCode}, not ${event.productCode}` };
  }
  if (event.customerAWSAccountId !== undefined && event.customerAWSAccountId !== customer.customerAWSAccountId) {
    return { reason: 'identity-mismatch', message: 'customerAWSAccountId does not match the customer' };
  }
  if (event.customerIdentifier !== undefined && event.customerIdentifier !== customer.customerIdentifier) {
    return { reason: 'identity-mismatch', message: 'customerIdentifier does not match the customer' };
  }
  const rejection = checkUsageEvent(event, product, now, window);
  if (rejection) return rejection;
  if (customer.subscription && billingDecision(customer.subscription, eventHourStart(event), now) === 'closed') {
    return { reason: 'customer-not-subscribed', message: 'the customer is not subscribed and its final usage window has closed' };
  }
  return null;
}

function eventHourStart(event: UsageEvent): Date {
  return utcHourStart(new Date(eventTimeMs(event)));
}

/** The Customers table key an event names: its licence, or its legacy product + customer. */
export function customerKeyOf(event: UsageEvent): string | undefined {
  if (event.licenseArn !== undefined) {
    try {
      return licenseCustomerKey(event.licenseArn);
    } catch {
      return undefined;
    }
  }
  return legacyCustomerKey(event.productCode!, event.customerIdentifier!);
}
