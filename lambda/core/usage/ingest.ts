import { CustomerIdentity, legacyCustomerKey, licenseCustomerKey } from '../customer';
import { BucketIdentity, bucketKeyOf } from '../metering/hour-bucket';
import { ProductConfig } from '../product-config';
import { utcHourKeyOfMs, utcHourStart } from '../utc-hour';
import { eventTimeMs, parseUsageMessage, Rejection, UsageEvent } from './usage-event';
import { checkUsageEvent, tagSetKey, UsageWindow } from './usage-rules';
import { billingDecision, StoredSubscription } from '../lifecycle/subscription-state';

/**
 * Usage ingestion, free of AWS: a queue message's events are validated, matched to a registered
 * customer, and added to their hour bucket together with a de-duplication marker, so a redelivered
 * message adds nothing.
 */

export interface UsageAddition {
  readonly bucket: BucketIdentity & { readonly bucketKey: string };
  /** De-duplication marker: the same key is counted once. */
  readonly eventKey: string;
  readonly quantity: number;
  /** Quantity per allocation tag set. */
  readonly allocations: Readonly<Record<string, number>>;
  readonly at: Date;
}

export type AddUsageOutcome = 'added' | 'duplicate' | 'sealed' | 'too-large';

export interface UsageLedger {
  /**
   * Adds each usage to its bucket and writes its marker, both or neither; one outcome per addition,
   * in order: `duplicate` when the marker exists, `sealed` when the bucket is sealed, `too-large`
   * when the bucket cannot grow (for those, nothing is written).
   */
  addUsage(additions: readonly UsageAddition[]): Promise<AddUsageOutcome[]>;
}

/** A registered customer, with its subscription state when lifecycle events have told it. */
export type KnownCustomer = CustomerIdentity & { readonly subscription?: StoredSubscription };

/** Registered customers, from the Customers table. */
export interface CustomerDirectory {
  find(customerKey: string): Promise<KnownCustomer | undefined>;
}

export interface IngestPorts {
  readonly ledger: UsageLedger;
  readonly customers: CustomerDirectory;
  readonly products: readonly ProductConfig[];
  readonly now: () => Date;
  readonly window?: UsageWindow;
}

export type EventResult =
  | { readonly status: 'counted'; readonly bucketKey: string; readonly rolledOver: boolean }
  | { readonly status: 'duplicate'; readonly eventKey: string }
  | { readonly status: 'rejected'; readonly rejection: Rejection; readonly event: unknown; readonly position: number };

export type MessageResult = { readonly rejectedMessage: Rejection } | { readonly events: readonly EventResult[] };

/**
 * Ingests one queue message: its valid events are written together (see usage-writes.ts).
 * Infrastructure errors propagate: the caller reports the message as failed, SQS delivers it again,
 * and the markers keep what was already counted from counting twice.
 */
export async function ingestMessage(ports: IngestPorts, message: { messageId: string; body: string }): Promise<MessageResult> {
  const parsed = parseUsageMessage(message.body);
  if (!Array.isArray(parsed)) return { rejectedMessage: parsed };
  const results: EventResult[] = new Array(parsed.length);
  const now = ports.now();
  const accepted: { position: number; event: UsageEvent; customer: KnownCustomer; eventId: string }[] = [];
  for (const item of parsed) {
    const { position } = item;
    const reject = (rejection: Rejection, event: unknown) => {
      results[position] = { status: 'rejected', rejection, event, position };
    };
    if (!item.ok) {
      reject(item.rejection, item.raw);
      continue;
    }
    const found = await findCustomer(ports.customers, item.event);
    if ('reason' in found) {
      reject(found, item.event);
      continue;
    }
    const eventId = item.event.eventId ?? `${message.messageId}#${position}`;
    const rejection = checkEventFor(found, item.event, ports.products, now, ports.window);
    if (rejection) reject(rejection, item.event);
    else accepted.push({ position, event: item.event, customer: found, eventId });
  }

  const additions = accepted.map((a) => usageAddition(a.customer, a.event, a.eventId, eventHourStart(a.event), now));
  const outcomes = additions.length > 0 ? await ports.ledger.addUsage(additions) : [];
  // Events whose hour was already sealed (and maybe billed) count in the current hour instead.
  const rolled = outcomes.flatMap((outcome, i) => (outcome === 'sealed' ? [i] : []));
  const rolledAdditions = rolled.map((i) => usageAddition(accepted[i].customer, accepted[i].event, accepted[i].eventId, utcHourStart(now), now));
  const rolledOutcomes = rolledAdditions.length > 0 ? await ports.ledger.addUsage(rolledAdditions) : [];
  rolled.forEach((i, j) => {
    outcomes[i] = rolledOutcomes[j];
    additions[i] = rolledAdditions[j];
  });

  accepted.forEach(({ position, event }, i) => {
    const addition = additions[i];
    const reject = (rejection: Rejection) => {
      results[position] = { status: 'rejected', rejection, event, position };
    };
    switch (outcomes[i]) {
      case 'added':
        results[position] = { status: 'counted', bucketKey: addition.bucket.bucketKey, rolledOver: rolled.includes(i) };
        break;
      case 'duplicate':
        results[position] = { status: 'duplicate', eventKey: addition.eventKey };
        break;
      case 'too-large':
        reject({ reason: 'too-many-tag-sets', message: `the hour bucket ${addition.bucket.bucketKey} holds too many distinct allocation tag sets` });
        break;
      case 'sealed':
        // The current hour was sealed early: the customer's access ended and its final usage was metered.
        reject({ reason: 'hour-already-billed', message: `the customer's usage for ${addition.bucket.hourStart} was already metered` });
        break;
    }
  });
  return { events: results };
}

/** The registered customer an event names, or why there is none. */
async function findCustomer(customers: CustomerDirectory, event: UsageEvent): Promise<KnownCustomer | Rejection> {
  const customerKey = customerKeyOf(event);
  if (!customerKey) return { reason: 'invalid-event', message: 'the licence ARN has no licence id' };
  const customer = await customers.find(customerKey);
  return customer ?? { reason: 'unknown-customer', message: `no registered customer ${customerKey}` };
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

/** What an accepted event adds to the ledger: its quantity and allocations, in the bucket of `hourStart`. */
export function usageAddition(customer: KnownCustomer, event: UsageEvent, eventId: string, hourStart: Date, now: Date): UsageAddition {
  const allocations: Record<string, number> = {};
  if (event.allocations) for (const a of event.allocations) allocations[tagSetKey(a.tags)] = a.quantity;
  const hour = utcHourKeyOfMs(hourStart.getTime());
  return {
    bucket: {
      bucketKey: bucketKeyOf(customer.customerKey, event.dimension, hour),
      customerKey: customer.customerKey,
      productCode: customer.productCode,
      identityMode: customer.identityMode,
      customerAWSAccountId: customer.customerAWSAccountId,
      licenseArn: customer.licenseArn,
      customerIdentifier: customer.customerIdentifier,
      dimension: event.dimension,
      hourStart: hour,
    },
    eventKey: `${customer.customerKey}|${eventId}`,
    quantity: event.quantity,
    allocations,
    at: now,
  };
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
