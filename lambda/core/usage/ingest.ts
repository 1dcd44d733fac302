import { CustomerIdentity, legacyCustomerKey, licenseCustomerKey } from '../customer';
import { licenseIdOf } from '../marketplace-limits';
import { bucketKeyOf } from '../metering/hour-bucket';
import { ProductConfig } from '../product-config';
import { utcHourKeyOfMs, utcHourStart } from '../utc-hour';
import { AppendOutcome, JournalEntry, JournalEntryBuilder, JournalEvent, UsageJournal } from './usage-journal';
import { eventTimeMs, invalidEventRejection, isUsageEvent, messageBodyEvents, Rejection, RejectionReason, UsageEvent } from './usage-event';
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

export interface QueueMessage {
  readonly messageId: string;
  readonly body: string;
  /** How many times SQS has delivered the message, this time included (ApproximateReceiveCount). @default 1 */
  readonly receiveCount?: number;
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
  const bodies = messages.map((message) => messageBodyEvents(message.body));
  const keys = bodies.map((events) => (Array.isArray(events) ? customerKeysOf(events) : []));
  const alternates = bodies.map((events, m) => (Array.isArray(events) ? legacyKeysOf(events, keys[m]) : undefined));
  // The batch's customers in one lookup, not one per event.
  const asked = [...keys.flat(), ...alternates.flatMap((a) => a ?? [])].filter((k): k is string => typeof k === 'string');
  const customers = await ports.customers.find([...new Set(asked)]);

  const writtenAt = now.toISOString();
  const outcomes: MessageResult[] = [];
  // Each entry's message: where its events' results go.
  const owners = new Map<JournalEntry, Owner>();
  const entriesByMessage: JournalEntry[][] = [];
  /** What an earlier delivery counted stays counted, once; the message's other entries are written as supplements. */
  const afterEarlier = async (owner: Owner, ownEntries: readonly JournalEntry[]): Promise<JournalEntry[]> => {
    const [stored, refused] = await Promise.all([
      ports.journal.storedPositions(owner.messageId, ownHoursOf(owner.events, owner.keys)),
      ports.journal.refusedPositions(owner.messageId),
    ]);
    return afterEarlierDeliveries(owner.messageId, ownEntries, { stored, refused }, owner.events, owner.results);
  };
  await Promise.all(
    messages.map(async (message, m) => {
      const events = bodies[m];
      if (!Array.isArray(events)) {
        outcomes[m] = { rejectedMessage: events as Rejection };
        return;
      }
      const owner: Owner = { messageId: message.messageId, results: new Array<EventResult>(events.length), events, keys: keys[m] };
      outcomes[m] = { events: owner.results };
      let messageEntries = journalMessage(message.messageId, events, keys[m], customers, ports, now, writtenAt, owner.results, alternates[m]);
      // A message delivered before may be judged differently now (a clock moved, a buyer registered).
      if ((message.receiveCount ?? 1) > 1) messageEntries = await afterEarlier(owner, messageEntries);
      for (const entry of messageEntries) owners.set(entry, owner);
      entriesByMessage[m] = messageEntries;
    }),
  );
  const entries = entriesByMessage.flat();
  const settle = (entry: JournalEntry, outcome: AppendOutcome, rolledOver: boolean) => {
    const { results, events } = owners.get(entry)!;
    settleEntry(entry, outcome, rolledOver, events, results);
  };

  /**
   * Writes entries (rolling those of sealed hours into the current one); returns those found written
   * already. Usage of a customer whose hour was metered early (its access ended) is written like any
   * other, and refused as `hour-already-billed` when that hour is folded: two deliveries of a message
   * can judge it differently (their clocks on either side of an hour turn roll a late event into
   * different hours, one metered early, the other not yet; or one comes after the early metering
   * billed what the other wrote), and only the journal's entry keys, which the fold reads, decide
   * between them. Refused here, without a write, the event could also be counted by the other
   * delivery and billed: both billed and dead-lettered.
   */
  const write = async (first: readonly JournalEntry[]): Promise<JournalEntry[]> => {
    const clashed: JournalEntry[] = [];
    const settleOrKeep = (entry: JournalEntry, outcome: AppendOutcome, rolledOver: boolean) => {
      settle(entry, outcome, rolledOver);
      if (outcome === 'duplicate') clashed.push(entry);
    };
    const appended = first.length > 0 ? await ports.journal.append(first) : [];
    // Events whose hour was already sealed (and maybe billed) count in the current hour instead.
    const currentHour = utcHourKeyOfMs(now.getTime());
    const moved: JournalEntry[] = [];
    first.forEach((entry, i) => {
      if (appended[i] !== 'sealed' || entry.hourStart === currentHour || entry.rolledFrom !== undefined) return settleOrKeep(entry, appended[i], entry.rolledFrom !== undefined);
      const late = { ...entry, hourStart: currentHour, rolledFrom: entry.hourStart };
      owners.set(late, owners.get(entry)!);
      moved.push(late);
    });
    const lateAppended = moved.length > 0 ? await ports.journal.append(moved) : [];
    moved.forEach((entry, i) => settleOrKeep(entry, lateAppended[i], true));
    return clashed;
  };

  let clashed = await write(entries);
  // An entry written already: by an earlier delivery, or by one running alongside this one, which
  // may have judged the events differently. Its events that no written entry holds are written now
  // (a few rounds: deliveries rarely overlap).
  for (let round = 0; round < MAX_CLASH_ROUNDS && clashed.length > 0; round++) {
    const byOwner = new Map<Owner, JournalEntry[]>();
    for (const entry of clashed) {
      const owner = owners.get(entry)!;
      const list = byOwner.get(owner);
      if (list) list.push(entry);
      else byOwner.set(owner, [entry]);
    }
    const retry: JournalEntry[] = [];
    await Promise.all(
      [...byOwner].map(async ([owner, ownEntries]) => {
        for (const entry of await afterEarlier(owner, ownEntries)) {
          owners.set(entry, owner);
          retry.push(entry);
        }
      }),
    );
    clashed = retry.length > 0 ? await write(retry) : [];
  }
  await countedElsewhere(ports, messages, bodies, keys, outcomes);
  await recordRefusals(ports, messages, outcomes, now);
  return outcomes;
}

/**
 * Refusals that depend on when, or with which cache, an event is judged, so that one delivery of a
 * message can reach them after another counted the event: the customer's final usage window closed
 * in between (a customer leaving while its usage flows), the event grew too old for the billing
 * window, the clock caught up with an event ahead of it, a container's cache did not know a buyer
 * who registered meanwhile. The other refusals depend on the body alone: every delivery agrees.
 */
const REFUSALS_AFTER_A_COUNT: ReadonlySet<RejectionReason> = new Set(['customer-not-subscribed', 'timestamp-out-of-window', 'timestamp-in-future', 'unknown-customer']);

/**
 * Before a message's events are refused for a reason another delivery may not have reached
 * (REFUSALS_AFTER_A_COUNT): those that another delivery of the message wrote to the journal are
 * duplicates, not refused. SQS may deliver a message again with the same ApproximateReceiveCount
 * (its at-least-once duplicate, which reads no earlier delivery) or while the first delivery still
 * runs, and that delivery may have counted the event, billed since (by the final usage flush, say):
 * refusing it too would dead-letter a billed event. One read per such message, only for messages
 * with such a refusal.
 */
async function countedElsewhere(
  ports: IngestPorts,
  messages: readonly QueueMessage[],
  bodies: readonly unknown[],
  keys: readonly (readonly (string | null | undefined)[])[],
  outcomes: MessageResult[],
): Promise<void> {
  await Promise.all(
    outcomes.map(async (outcome, m) => {
      if (!('events' in outcome)) return;
      const suspect = (r: EventResult) => r.status === 'rejected' && REFUSALS_AFTER_A_COUNT.has(r.rejection.reason);
      if (!outcome.events.some(suspect)) return;
      const events = bodies[m] as readonly unknown[];
      const stored = await ports.journal.storedPositions(messages[m].messageId, ownHoursOf(events, keys[m]));
      const results = outcome.events as EventResult[];
      results.forEach((result, position) => {
        if (!suspect(result) || !stored.has(position)) return;
        results[position] = { status: 'duplicate', messageId: messages[m].messageId, hourStart: utcHourKeyOfMs(eventTimeMs(events[position] as UsageEvent)) };
      });
    }),
  );
}

/**
 * Records each message's refused events before the caller dead-letters them (UsageJournal
 * recordRefused). A whole message refused needs no record: its body is judged the same way again.
 */
async function recordRefusals(ports: IngestPorts, messages: readonly QueueMessage[], outcomes: readonly MessageResult[], now: Date): Promise<void> {
  await Promise.all(
    outcomes.map(async (outcome, m) => {
      if (!('events' in outcome)) return;
      const refused = new Map<number, Rejection>();
      outcome.events.forEach((result, position) => {
        if (result.status === 'rejected') refused.set(position, result.rejection);
      });
      if (refused.size > 0) await ports.journal.recordRefused(messages[m].messageId, refused, now);
    }),
  );
}

/** A message being ingested: where its events' results go, and what judging them again needs. */
interface Owner {
  readonly messageId: string;
  readonly results: EventResult[];
  readonly events: readonly unknown[];
  readonly keys: readonly (string | null | undefined)[];
}

/** Rounds of writing again what an overlapping delivery's entries did not hold. */
const MAX_CLASH_ROUNDS = 3;

/** The own hours of a message's schema-valid events: where earlier deliveries wrote them. */
function ownHoursOf(events: readonly unknown[], keys: readonly (string | null | undefined)[]): string[] {
  const hours = new Set<string>();
  events.forEach((event, position) => {
    if (keys[position] !== null) hours.add(utcHourKeyOfMs(eventTimeMs(event as UsageEvent)));
  });
  return [...hours];
}

/**
 * A redelivered message's entries, given what its earlier deliveries did: the events they counted
 * (`stored`) are duplicates, whatever they are judged now (even refused: they were counted once);
 * the events they refused (`refused`, dead-lettered then) are refused again, for the same reason,
 * whatever they are judged now; the others, counted now, go in supplement entries, whose ids no
 * earlier delivery used.
 */
function afterEarlierDeliveries(
  messageId: string,
  entries: readonly JournalEntry[],
  earlier: { readonly stored: ReadonlySet<number>; readonly refused: ReadonlyMap<number, Rejection> },
  events: readonly unknown[],
  results: EventResult[],
): JournalEntry[] {
  const { stored, refused } = earlier;
  if (stored.size === 0 && refused.size === 0) return [...entries];
  for (const position of stored) {
    const event = events[position] as UsageEvent | undefined;
    if (event === undefined) continue;
    results[position] = { status: 'duplicate', messageId, hourStart: utcHourKeyOfMs(eventTimeMs(event)) };
  }
  for (const [position, rejection] of refused) {
    if (stored.has(position) || position >= events.length) continue;
    results[position] = rejected(rejection, events[position], position);
  }
  return entries.flatMap((entry) => {
    const uncounted = entry.events.filter((e) => !stored.has(e.p) && !refused.has(e.p));
    if (uncounted.length === 0) return [];
    // Nothing of the message was written: the entries keep their ids.
    if (stored.size === 0) return [uncounted.length === entry.events.length ? entry : { ...entry, events: uncounted }];
    const { part: _part, ...rest } = entry;
    return [{ ...rest, supplement: smallestPosition(uncounted), events: uncounted }];
  });
}

function smallestPosition(events: readonly JournalEvent[]): number {
  let smallest = events[0].p;
  for (const e of events) if (e.p < smallest) smallest = e.p;
  return smallest;
}

/**
 * First pass over a message's events: each is checked against the schema, and the Customers key of
 * each valid one is read (null: not a usage event; undefined: a licence ARN without a licence id).
 */
export function customerKeysOf(events: readonly unknown[]): (string | null | undefined)[] {
  const keys: (string | null | undefined)[] = new Array(events.length);
  for (let i = 0; i < events.length; i++) {
    const event = events[i];
    keys[i] = isUsageEvent(event) ? customerKeyOf(event) : null;
  }
  return keys;
}

/**
 * Second pass: the events of registered customers that pass every rule, as the message's journal
 * entries (one per hour); each other event gets its rejection in `results`.
 */
export function journalMessage(
  messageId: string,
  events: readonly unknown[],
  keys: readonly (string | null | undefined)[],
  customers: ReadonlyMap<string, KnownCustomer>,
  settings: Pick<IngestPorts, 'products' | 'window'>,
  now: Date,
  writtenAt: string,
  results: EventResult[],
  /** Per event, its legacy key when it names a licence too (legacyKeysOf): used when the licence is unknown. */
  legacyKeys?: readonly (string | undefined)[],
): JournalEntry[] {
  const builder = new JournalEntryBuilder(messageId, writtenAt);
  for (let position = 0; position < events.length; position++) {
    const key = keys[position];
    if (key === null) {
      results[position] = rejected(invalidEventRejection(events[position]), events[position], position);
      continue;
    }
    const event = events[position] as UsageEvent;
    let customer = key === undefined ? undefined : customers.get(key);
    const legacyKey = legacyKeys?.[position];
    if (!customer && legacyKey !== undefined) customer = customers.get(legacyKey);
    if (!customer) {
      const rejection: Rejection =
        key === undefined
          ? { reason: 'invalid-event', message: 'the licence ARN has no licence id' }
          : { reason: 'unknown-customer', message: `no registered customer ${key}` };
      results[position] = rejected(rejection, event, position);
      continue;
    }
    const timeMs = eventTimeMs(event);
    const rejection = checkEventFor(customer, event, settings.products, now, settings.window, timeMs);
    if (rejection) {
      results[position] = rejected(rejection, event, position);
      continue;
    }
    let allocations: Record<string, number> | undefined;
    if (event.allocations) {
      allocations = {};
      for (const allocation of event.allocations) allocations[tagSetKey(allocation.tags)] = allocation.quantity;
    }
    builder.add(utcHourKeyOfMs(timeMs), customer, event.dimension, event.quantity, position, event.eventId, allocations);
  }
  return builder.build();
}

function rejected(rejection: Rejection, event: unknown, position: number): EventResult {
  return { status: 'rejected', rejection, event, position };
}

/** Each event of an entry gets the entry's outcome. */
function settleEntry(entry: JournalEntry, outcome: AppendOutcome, rolledOver: boolean, events: readonly unknown[], results: EventResult[]): void {
  for (const e of entry.events) {
    const position = e.p;
    if (outcome === 'appended') {
      results[position] = { status: 'counted', bucketKey: bucketKeyOf(entry.customers[e.c].customerKey, e.d, entry.hourStart), rolledOver };
    } else if (outcome === 'duplicate') {
      results[position] = { status: 'duplicate', messageId: entry.messageId, hourStart: entry.rolledFrom ?? entry.hourStart };
    } else {
      // The current hour is sealed too: metering ran as if later than this clock (local mode).
      const rejection: Rejection = { reason: 'hour-already-billed', message: `the usage for ${entry.hourStart} was already metered` };
      results[position] = rejected(rejection, events[position], position);
    }
  }
}

/** Whether the customer's product, identity, subscription and the event's own rules allow the event. */
export function checkEventFor(
  customer: KnownCustomer,
  event: UsageEvent,
  products: readonly ProductConfig[],
  now: Date,
  window?: UsageWindow,
  timeMs = eventTimeMs(event),
): Rejection | null {
  let product: ProductConfig | undefined;
  for (const candidate of products) if (candidate.productCode === customer.productCode) product = candidate;
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
  // A legacy customer found by its CustomerIdentifier: a licence the event names must be its own.
  if (customer.identityMode === 'legacy' && event.licenseArn !== undefined && customer.licenseArn !== undefined && licenseIdOf(event.licenseArn) !== licenseIdOf(customer.licenseArn)) {
    return { reason: 'identity-mismatch', message: 'licenseArn does not match the customer' };
  }
  const rejection = checkUsageEvent(event, product, now, window, timeMs);
  if (rejection) return rejection;
  const status = customer.subscription?.status;
  if (status !== undefined && status !== 'subscribed' && billingDecision(customer.subscription, utcHourStart(new Date(timeMs)), now) === 'closed') {
    return { reason: 'customer-not-subscribed', message: 'the customer is not subscribed and its final usage window has closed' };
  }
  return null;
}

/**
 * Per event, the legacy key of an event that names both a licence and a legacy customer (product +
 * CustomerIdentifier: ResolveCustomer gives legacy buyers a LicenseArn too), to find a legacy
 * customer when no customer holds the licence; undefined when no event of the message does.
 */
function legacyKeysOf(events: readonly unknown[], keys: readonly (string | null | undefined)[]): (string | undefined)[] | undefined {
  let legacyKeys: (string | undefined)[] | undefined;
  events.forEach((raw, position) => {
    if (keys[position] === null) return;
    const event = raw as UsageEvent;
    if (event.licenseArn === undefined || event.productCode === undefined || event.customerIdentifier === undefined) return;
    legacyKeys ??= new Array<string | undefined>(events.length);
    legacyKeys[position] = legacyCustomerKey(event.productCode, event.customerIdentifier);
  });
  return legacyKeys;
}

/** The Customers table key an event names: its licence, or its legacy product + customer. */
export function customerKeyOf(event: UsageEvent): string | undefined {
  if (event.licenseArn !== undefined) {
    // Every event carries its ARN: its key is worked out once per ARN.
    let key = licenseKeys.get(event.licenseArn);
    if (key === undefined) {
      try {
        key = licenseCustomerKey(event.licenseArn);
      } catch {
        return undefined;
      }
      if (licenseKeys.size >= 10_000) licenseKeys.clear();
      licenseKeys.set(event.licenseArn, key);
    }
    return key;
  }
  return legacyCustomerKey(event.productCode!, event.customerIdentifier!);
}

const licenseKeys = new Map<string, string>();
