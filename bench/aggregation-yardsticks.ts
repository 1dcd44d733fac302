import { EventIdSet } from '../lambda/core/metering/event-id-set';
import validateUsageEvent from '../lambda/core/usage/generated/usage-event-validator';
import { HOUR_MS } from '../lambda/core/utc-hour';

/**
 * Yardsticks for the validate + bucket figure: what this machine allows, not candidate
 * implementations. Each takes the bench's events (licence-mode, UTC `...Z` timestamps, all valid)
 * and returns the quantity it bucketed, which the bench checks against the events.
 *
 * - bareLoop: one pass with the least work a validate + bucket can be in JavaScript: type checks,
 *   the customer, the dimension, the allocations' sum, a Set of eventIds and a Map of buckets per
 *   customer, keyed by numbers. No schema library, no journal.
 * - twoPassFloor: the least this design can do. Ingestion validates each event with the same
 *   compiled JSON Schema validator and writes journal entries (one per message and hour); the fold
 *   reads the entries and de-duplicates eventIds with the same EventIdSet. None of the production
 *   rules beyond those (identity, product, time window, subscription, tag-set names, entry sizes,
 *   redeliveries).
 */
export interface YardstickInput {
  readonly licenses: readonly string[];
  readonly dimensions: readonly string[];
  readonly now: Date;
}

type BareEvent = {
  eventId?: string;
  licenseArn?: string;
  dimension?: unknown;
  quantity?: unknown;
  timestamp?: unknown;
  allocations?: { quantity: number; tags: Record<string, string> }[];
};

/** The hour number (epoch ms / 1 h) of a UTC ISO timestamp ending in `Z`, read from its fixed positions. */
function utcHourNumber(t: string): number {
  if (t.length !== 24 || t.charCodeAt(23) !== 90 /* Z */) return Math.floor(Date.parse(t) / HOUR_MS);
  const digit = (i: number) => t.charCodeAt(i) - 48;
  const year = digit(0) * 1000 + digit(1) * 100 + digit(2) * 10 + digit(3);
  const ms = Date.UTC(year, digit(5) * 10 + digit(6) - 1, digit(8) * 10 + digit(9), digit(11) * 10 + digit(12));
  return ms / HOUR_MS;
}

export function bareLoop(input: YardstickInput, messages: readonly unknown[]): number {
  type Customer = { readonly buckets: Map<number, { quantity: number }>[]; readonly seen: Set<string> };
  const { dimensions } = input;
  const byLicense = new Map<string, Customer>(input.licenses.map((arn) => [arn, { buckets: dimensions.map(() => new Map()), seen: new Set() }]));
  const latestHour = Math.floor((input.now.getTime() + 300_000) / HOUR_MS);
  let quantity = 0;
  for (const message of messages as BareEvent[][]) {
    for (const e of message) {
      if (typeof e !== 'object' || typeof e.dimension !== 'string' || typeof e.quantity !== 'number' || !Number.isInteger(e.quantity) || e.quantity < 0) continue;
      if (typeof e.timestamp !== 'string' || typeof e.licenseArn !== 'string') continue;
      const customer = byLicense.get(e.licenseArn);
      const d = dimensions.indexOf(e.dimension);
      if (!customer || d < 0) continue;
      const hour = utcHourNumber(e.timestamp);
      if (!(hour <= latestHour)) continue;
      if (e.allocations) {
        let sum = 0;
        for (const allocation of e.allocations) sum += allocation.quantity;
        if (sum !== e.quantity) continue;
      }
      if (e.eventId !== undefined) {
        if (customer.seen.has(e.eventId)) continue;
        customer.seen.add(e.eventId);
      }
      const buckets = customer.buckets[d];
      const bucket = buckets.get(hour);
      if (bucket) bucket.quantity += e.quantity;
      else buckets.set(hour, { quantity: e.quantity });
      quantity += e.quantity;
    }
  }
  return quantity;
}

export function twoPassFloor(input: YardstickInput, messages: readonly unknown[]): number {
  type Customer = { readonly customerKey: string };
  type Event = { c: number; d: string; q: number; p: number; id?: string; a?: Record<string, number> };
  type Entry = { hour: number; customers: Customer[]; events: Event[] };
  const { dimensions } = input;
  const byLicense = new Map<string, Customer>(input.licenses.map((arn) => [arn, { customerKey: `license#${arn}` }]));

  // Ingestion: validate, find the customer, write the message's entries.
  const entries: Entry[] = [];
  for (const message of messages as BareEvent[][]) {
    const byHour = new Map<number, { customers: Customer[]; index: Map<string, number>; events: Event[] }>();
    for (let p = 0; p < message.length; p++) {
      const e = message[p];
      if (!validateUsageEvent(e)) continue;
      const customer = byLicense.get(e.licenseArn as string);
      if (!customer || !dimensions.includes(e.dimension as string)) continue;
      const hour = utcHourNumber(e.timestamp as string);
      let a: Record<string, number> | undefined;
      if (e.allocations) {
        a = {};
        let sum = 0;
        for (const allocation of e.allocations) {
          sum += allocation.quantity;
          let tagSet = '';
          for (const key in allocation.tags) tagSet += `${key}=${allocation.tags[key]},`;
          a[tagSet] = allocation.quantity;
        }
        if (sum !== e.quantity) continue;
      }
      let draft = byHour.get(hour);
      if (!draft) byHour.set(hour, (draft = { customers: [], index: new Map(), events: [] }));
      let c = draft.index.get(customer.customerKey);
      if (c === undefined) {
        c = draft.customers.length;
        draft.customers.push(customer);
        draft.index.set(customer.customerKey, c);
      }
      draft.events.push({ c, d: e.dimension as string, q: e.quantity as number, p, id: e.eventId, a });
    }
    for (const [hour, { customers, events }] of byHour) entries.push({ hour, customers, events });
  }

  // The fold: per hour and customer, eventIds once, buckets by dimension with their allocations.
  type Fold = { readonly seen: EventIdSet; readonly buckets: Map<string, { quantity: number; allocations: Record<string, number> }> };
  const hours = new Map<number, Map<string, Fold>>();
  let quantity = 0;
  for (const entry of entries) {
    let folds = hours.get(entry.hour);
    if (!folds) hours.set(entry.hour, (folds = new Map()));
    for (const event of entry.events) {
      const { customerKey } = entry.customers[event.c];
      let fold = folds.get(customerKey);
      if (!fold) folds.set(customerKey, (fold = { seen: new EventIdSet(), buckets: new Map() }));
      if (event.id !== undefined && !fold.seen.add(event.id)) continue;
      let bucket = fold.buckets.get(event.d);
      if (!bucket) fold.buckets.set(event.d, (bucket = { quantity: 0, allocations: {} }));
      bucket.quantity += event.q;
      if (event.a) for (const tagSet in event.a) bucket.allocations[tagSet] = (bucket.allocations[tagSet] ?? 0) + event.a[tagSet];
      quantity += event.q;
    }
  }
  return quantity;
}
