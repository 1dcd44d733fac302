import { HOUR_MS } from '../lambda/core/utc-hour';

/**
 * A yardstick for the validate + bucket figure: how fast this machine is, not a candidate
 * implementation (the figure swings twofold between the machines it has run on). It takes the
 * bench's events (licence-mode, UTC `...Z` timestamps, all valid) and returns the quantity it
 * bucketed, which the bench checks against the events.
 *
 * bareLoop: one pass with the least work a validate + bucket can be in JavaScript: type checks, the
 * customer, the dimension, the allocations' sum, a Set of eventIds and a Map of buckets per
 * customer, keyed by numbers. No schema library, no journal, none of the production rules.
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
