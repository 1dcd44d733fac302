import { CustomerIdentity, legacyCustomerKey, licenseCustomerKey } from '../customer';
import { BucketIdentity, bucketKeyOf } from '../metering/hour-bucket';
import { ProductConfig } from '../product-config';
import { utcHourStart } from '../utc-hour';
import { eventTime, parseUsageMessage, Rejection, UsageEvent } from './usage-event';
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

export interface UsageLedger {
  /**
   * Adds the usage to its bucket and writes the marker, both or neither: `duplicate` when the marker
   * exists, `sealed` when the bucket is sealed, `too-large` when the bucket cannot grow (nothing written).
   */
  addUsage(addition: UsageAddition): Promise<'added' | 'duplicate' | 'sealed' | 'too-large'>;
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

/** Ingests one queue message. Infrastructure errors propagate: the caller reports the message as failed. */
/** Events of one message written at the same time (each to its own bucket): DynamoDB round trips overlap. */
const CONCURRENT_BUCKETS = 8;

export async function ingestMessage(ports: IngestPorts, message: { messageId: string; body: string }): Promise<MessageResult> {
  const parsed = parseUsageMessage(message.body);
  if (!Array.isArray(parsed)) return { rejectedMessage: parsed };
  const results: EventResult[] = new Array(parsed.length);
  // Events for the same customer, dimension and hour go one after another (one bucket item: no
  // transaction conflicts); events for different buckets go side by side.
  const lanes = new Map<string, typeof parsed>();
  for (const item of parsed) {
    if (!item.ok) {
      results[item.position] = { status: 'rejected', rejection: item.rejection, event: item.raw, position: item.position };
      continue;
    }
    const lane = `${customerKeyOf(item.event) ?? ''}|${item.event.dimension}|${utcHourStart(eventTime(item.event)).getTime()}`;
    lanes.set(lane, [...(lanes.get(lane) ?? []), item]);
  }
  const queue = [...lanes.values()];
  const worker = async () => {
    for (let lane = queue.shift(); lane; lane = queue.shift()) {
      for (const item of lane) {
        if (!item.ok) continue;
        results[item.position] = await ingestEvent(ports, item.event, item.event.eventId ?? `${message.messageId}#${item.position}`, item.position);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENT_BUCKETS, queue.length) }, worker));
  return { events: results };
}

async function ingestEvent(ports: IngestPorts, event: UsageEvent, eventId: string, position: number): Promise<EventResult> {
  const reject = (rejection: Rejection): EventResult => ({ status: 'rejected', rejection, event, position });
  const customerKey = customerKeyOf(event);
  if (!customerKey) return reject({ reason: 'invalid-event', message: 'the licence ARN has no licence id' });
  const customer = await ports.customers.find(customerKey);
  if (!customer) return reject({ reason: 'unknown-customer', message: `no registered customer ${customerKey}` });
  const product = ports.products.find((p) => p.productCode === customer.productCode);
  if (!product) return reject({ reason: 'unknown-product', message: `${customer.productCode} is not a product of this stack` });
  if (event.productCode !== undefined && event.productCode !== customer.productCode) {
    return reject({ reason: 'identity-mismatch', message: `the licence is for ${customer.productCode}, not ${event.productCode}` });
  }
  if (event.customerAWSAccountId !== undefined && event.customerAWSAccountId !== customer.customerAWSAccountId) {
    return reject({ reason: 'identity-mismatch', message: 'customerAWSAccountId does not match the customer' });
  }
  if (event.customerIdentifier !== undefined && event.customerIdentifier !== customer.customerIdentifier) {
    return reject({ reason: 'identity-mismatch', message: 'customerIdentifier does not match the customer' });
  }
  const now = ports.now();
  const rejection = checkUsageEvent(event, product, now, ports.window);
  if (rejection) return reject(rejection);
  if (billingDecision(customer.subscription, utcHourStart(eventTime(event)), now) === 'closed') {
    return reject({ reason: 'customer-not-subscribed', message: 'the customer is not subscribed and its final usage window has closed' });
  }

  const allocations: Record<string, number> = {};
  for (const a of event.allocations ?? []) allocations[tagSetKey(a.tags)] = a.quantity;
  const addTo = (hourStart: Date) => {
    const hour = hourStart.toISOString();
    const bucket = {
      bucketKey: bucketKeyOf(customer.customerKey, event.dimension, hour),
      customerKey: customer.customerKey,
      productCode: customer.productCode,
      identityMode: customer.identityMode,
      customerAWSAccountId: customer.customerAWSAccountId,
      licenseArn: customer.licenseArn,
      customerIdentifier: customer.customerIdentifier,
      dimension: event.dimension,
      hourStart: hour,
    };
    const eventKey = `${customer.customerKey}|${eventId}`;
    return { bucket, result: ports.ledger.addUsage({ bucket, eventKey, quantity: event.quantity, allocations, at: now }) };
  };

  let attempt = addTo(utcHourStart(eventTime(event)));
  let rolledOver = false;
  if ((await attempt.result) === 'sealed') {
    // The event's hour was already sealed (and maybe billed): its usage counts in the current hour.
    attempt = addTo(utcHourStart(now));
    rolledOver = true;
  }
  const outcome = await attempt.result;
  if (outcome === 'too-large') {
    return reject({ reason: 'too-many-tag-sets', message: `the hour bucket ${attempt.bucket.bucketKey} holds too many distinct allocation tag sets` });
  }
  if (outcome === 'duplicate') return { status: 'duplicate', eventKey: `${customer.customerKey}|${eventId}` };
  if (outcome === 'sealed') {
    // The current hour was sealed early: the customer's access ended and its final usage was metered.
    return reject({ reason: 'hour-already-billed', message: `the customer's usage for ${attempt.bucket.hourStart} was already metered` });
  }
  return { status: 'counted', bucketKey: attempt.bucket.bucketKey, rolledOver };
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
