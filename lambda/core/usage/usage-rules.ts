import { MarketplaceLimits as Limits } from '../marketplace-limits';
import { ProductConfig } from '../product-config';
import { utcHourStart } from '../utc-hour';
import { eventTime, Rejection, UsageEvent } from './usage-event';

/**
 * What makes a schema-valid usage event billable for a product: a known dimension, allocations that
 * add up, and a time AWS Marketplace will still accept once the event's hour is metered.
 */

export interface UsageWindow {
  /** How far ahead of our clock an event may be (producers' clocks drift). @default 300 */
  readonly futureSkewSeconds: number;
  /**
   * Time the metering engine needs between the end of an hour and sending it (grace period plus
   * schedule interval plus retries): events are refused when their hour would be older than
   * AWS's window by then. @default 3600
   */
  readonly sendingMarginSeconds: number;
}

export const DEFAULT_USAGE_WINDOW: UsageWindow = { futureSkewSeconds: 300, sendingMarginSeconds: 3600 };

export function checkUsageEvent(
  event: UsageEvent,
  product: ProductConfig,
  now: Date,
  window: UsageWindow = DEFAULT_USAGE_WINDOW,
): Rejection | null {
  if (!product.dimensions.includes(event.dimension)) {
    return { reason: 'unknown-dimension', message: `"${event.dimension}" is not a dimension of ${product.productCode}` };
  }
  if (event.allocations) {
    const sum = event.allocations.reduce((total, a) => total + a.quantity, 0);
    if (sum !== event.quantity) {
      return { reason: 'allocation-sum-mismatch', message: `allocations add up to ${sum}, the quantity is ${event.quantity}` };
    }
    const tagSets = event.allocations.map((a) => tagSetKey(a.tags));
    if (new Set(tagSets).size !== tagSets.length) {
      return { reason: 'duplicate-tag-set', message: 'two allocations have the same tags' };
    }
  }
  const time = eventTime(event);
  if (time.getTime() > now.getTime() + window.futureSkewSeconds * 1000) {
    return { reason: 'timestamp-in-future', message: `${time.toISOString()} is in the future` };
  }
  if (!isBillableHour(utcHourStart(time), now, window.sendingMarginSeconds)) {
    return { reason: 'timestamp-out-of-window', message: `${time.toISOString()} is too old for AWS Marketplace to bill` };
  }
  return null;
}

/**
 * Whether a record for the hour starting at `hourStart` will still be accepted `marginSeconds` from
 * now: at most 24 hours old, and a previous month's usage only until 06:00 UTC on the 1st.
 */
export function isBillableHour(hourStart: Date, now: Date, marginSeconds = 0): boolean {
  const sendBy = new Date(now.getTime() + marginSeconds * 1000);
  if (sendBy.getTime() - hourStart.getTime() > Limits.billingWindowSeconds * 1000) return false;
  const monthsBack =
    (sendBy.getUTCFullYear() - hourStart.getUTCFullYear()) * 12 + sendBy.getUTCMonth() - hourStart.getUTCMonth();
  const cutoff = Date.UTC(sendBy.getUTCFullYear(), sendBy.getUTCMonth(), 1, Limits.previousMonthCutoffHourUtc);
  return !(monthsBack > 0 && sendBy.getTime() >= cutoff);
}

/** A canonical name for a set of tags (order-independent): how allocations are summed per tag set. */
export function tagSetKey(tags: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.entries(tags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function tagsOfKey(key: string): Record<string, string> {
  return Object.fromEntries(JSON.parse(key) as [string, string][]);
}
