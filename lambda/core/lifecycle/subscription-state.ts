import { MarketplaceLimits } from '../marketplace-limits';
import { utcHourStart } from '../utc-hour';
import { LifecycleSignal, SubscriptionStatus } from './lifecycle-signal';

/**
 * A customer's subscription state as a last-writer-wins register ordered by event time: each status
 * change carries a version (event time, then a rank, then the event id) and is applied only when it
 * is newer than the stored one. Applying the same changes in any order, any number of times, ends in
 * the same state, so duplicates and out-of-order deliveries are harmless, and registration (which
 * never writes status) may come before or after.
 */

export interface StatusChange {
  readonly status: SubscriptionStatus;
  /** Sortable: `eventTime|rank|eventId`. */
  readonly version: string;
  readonly eventTime: string;
  /** Until when usage may still be metered (unsubscribe-pending, unsubscribed). */
  readonly finalUsageUntil?: string;
  readonly freeTrial?: boolean;
}

/** Between two changes at the same instant, the one further along the lifecycle wins. */
const RANK: Record<SubscriptionStatus, number> = {
  pending: 0,
  subscribed: 1,
  failed: 2,
  'unsubscribe-pending': 3,
  unsubscribed: 4,
};

export function statusVersion(eventTime: string, status: SubscriptionStatus, eventId: string): string {
  return `${new Date(eventTime).toISOString()}|${RANK[status]}|${eventId}`;
}

function after(eventTime: string, seconds: number): string {
  return new Date(new Date(eventTime).getTime() + seconds * 1000).toISOString();
}

/** Agreement statuses of an ended agreement that another one continues (DescribeAgreement's statuses). */
const SUCCEEDED_AGREEMENT_STATUSES = new Set(['RENEWED', 'REPLACED', 'SUPERSEDED', 'SUPERCEDED', 'ROLLED_BACK']);

/** The status a signal sets, if any (licence updates and entitlement updates change entitlements only). */
export function statusChangeOf(signal: LifecycleSignal): StatusChange | null {
  const finalWindow = MarketplaceLimits.finalUsageWindowSeconds;
  const change = (status: SubscriptionStatus, extra: Partial<StatusChange> = {}): StatusChange => ({
    status,
    version: statusVersion(signal.eventTime, status, signal.eventId),
    eventTime: signal.eventTime,
    ...extra,
  });
  switch (signal.kind) {
    case 'agreement':
      if (signal.change !== 'ended') return change('subscribed');
      // AWS also ends an agreement when a successor takes over (a renewal, an agreement-based offer
      // replacing it): the buyer's access goes on, under the successor's Created event. A real end
      // of access is the licence's (License Deprovisioned), so this changes nothing.
      if (signal.agreementStatus !== undefined && SUCCEEDED_AGREEMENT_STATUSES.has(signal.agreementStatus)) return null;
      return change('unsubscribe-pending', { finalUsageUntil: after(signal.eventTime, finalWindow) });
    case 'license':
      return signal.change === 'deprovisioned'
        ? change('unsubscribed', { finalUsageUntil: after(signal.eventTime, finalWindow) })
        : null;
    case 'legacy':
      switch (signal.action) {
        case 'subscribe-success':
          return change('subscribed', { freeTrial: signal.freeTrial });
        case 'subscribe-fail':
          return change('failed');
        case 'unsubscribe-pending':
          return change('unsubscribe-pending', { finalUsageUntil: after(signal.eventTime, finalWindow) });
        case 'unsubscribe-success':
          return change('unsubscribed', { finalUsageUntil: signal.eventTime });
        default:
          return null;
      }
  }
}

/** Whether a signal asks for the customer's entitlements to be read again. */
export function refreshesEntitlements(signal: LifecycleSignal): boolean {
  return (
    (signal.kind === 'license' && signal.change === 'updated') ||
    (signal.kind === 'legacy' && signal.action === 'entitlement-updated') ||
    (signal.kind === 'agreement' && signal.change === 'amended')
  );
}

/** Whether the customer's last usage must be sealed and metered now (access is ending). */
export function endsAccess(change: StatusChange | null): boolean {
  return change?.status === 'unsubscribe-pending' || change?.status === 'unsubscribed';
}

/** Time the final usage window keeps for the metering run after the flush: sealing, sending, retries. */
const FINAL_USAGE_SENDING_SECONDS = 30 * 60;

/**
 * When a customer's final usage is sealed and metered after its access ended: `delaySeconds` after
 * the event, so usage still on its way (in the usage queue, in an ingestion batch) is counted in
 * the final hour instead of arriving after it was billed; never later than half an hour before the
 * final usage window closes, and at once when it has no time to spare (unsubscribe-success).
 */
export function finalUsageDueAt(change: StatusChange, delaySeconds: number): string {
  const ended = Date.parse(change.eventTime);
  const until = change.finalUsageUntil === undefined ? ended : Date.parse(change.finalUsageUntil);
  const latest = Math.max(ended, until - FINAL_USAGE_SENDING_SECONDS * 1000);
  return new Date(Math.min(ended + Math.max(delaySeconds, 0) * 1000, latest)).toISOString();
}

/**
 * Whether a final usage flush that keeps failing is given up: once its final usage window (an hour)
 * has passed since it was due, AWS would not take the usage any more, and the customer's hours are
 * left to their own folds.
 */
export function finalUsageFlushExpired(dueAt: string, now: Date): boolean {
  return now.getTime() - Date.parse(dueAt) > MarketplaceLimits.finalUsageWindowSeconds * 1000;
}

/** A final usage flush the lifecycle scheduled: the customer's open usage is to be sealed at `dueAt`. */
export interface FinalUsageFlush {
  readonly customerKey: string;
  /** ISO 8601. */
  readonly dueAt: string;
  /**
   * The last hour (its start, ISO 8601) the flush seals. @default the hour it runs in (flushes
   * stored before this was kept)
   */
  readonly sealsThrough?: string;
  /** The version of the ending that scheduled it (absent on flushes stored before versions were kept). */
  readonly statusVersion?: string;
}

/**
 * The flushes of a customer's final usage once its access is ending, one or two:
 * - the first (finalUsageDueAt) seals the hours up to the one the access ended in;
 * - a last call, half an hour before the final window closes, when that falls in a later UTC hour
 *   which may still be billed (unsubscribe-pending: the buyer keeps access until the window closes;
 *   an unsubscribed buyer's later hours are closed). It seals that hour. Without it, that hour's
 *   usage sent while the window is open would be folded only after the window closed, and refused
 *   (CustomerNotSubscribed). That hour's usage after the last call is refused as hour-already-billed
 *   (one record per customer, dimension and hour).
 */
export function finalUsageFlushes(change: StatusChange, delaySeconds: number): Pick<FinalUsageFlush, 'dueAt' | 'sealsThrough'>[] {
  const endedHour = utcHourStart(new Date(change.eventTime));
  const flushes = [{ dueAt: finalUsageDueAt(change, delaySeconds), sealsThrough: endedHour.toISOString() }];
  if (change.status === 'unsubscribe-pending' && change.finalUsageUntil !== undefined) {
    const lastCall = new Date(Date.parse(change.finalUsageUntil) - FINAL_USAGE_SENDING_SECONDS * 1000);
    const lastCallHour = utcHourStart(lastCall);
    if (lastCallHour.getTime() > endedHour.getTime()) flushes.push({ dueAt: lastCall.toISOString(), sealsThrough: lastCallHour.toISOString() });
  }
  return flushes;
}

/**
 * Whether a due flush still stands, given the customer's stored state now: the state is still the
 * ending that scheduled it. A later change withdraws it: a re-subscribe (a legacy buyer may
 * subscribe again before unsubscribe-success; sealing would refuse the rest of the hour's usage),
 * or a later ending, which scheduled a flush of its own, due after its own usage in flight. A
 * flush without a version stands unless the customer is subscribed again; one whose customer has
 * no state stands (sealing early loses nothing the final window would take).
 */
export function finalUsageFlushStands(flush: FinalUsageFlush, state: StoredSubscription | undefined): boolean {
  if (state?.status === undefined) return true;
  if (flush.statusVersion !== undefined && state.statusVersion !== undefined) return state.statusVersion === flush.statusVersion;
  return state.status === 'unsubscribe-pending' || state.status === 'unsubscribed';
}

/** What metering may do with a customer's usage for an hour, given the stored state. */
export type BillingDecision = 'bill' | 'hold' | 'closed';

export interface StoredSubscription {
  readonly status?: SubscriptionStatus;
  readonly finalUsageUntil?: string;
  /** When the stored status took effect (ISO 8601). */
  readonly statusEventTime?: string;
  /** The stored change's version (statusVersion): which change the status came from. */
  readonly statusVersion?: string;
}

/**
 * - No status yet (registered, no lifecycle news) or subscribed: bill.
 * - Pending: hold; AWS would not bill it yet.
 * - Unsubscribing: while the final window is open, bill hours that started before it closed; once
 *   unsubscribed (licence deprovisioned), only hours that started by the time access ended (AWS
 *   refuses records for later hours).
 * - Failed, or the final window closed: closed (dead-letter as CustomerNotSubscribed).
 */
export function billingDecision(state: StoredSubscription | undefined, hourStart: Date, now: Date): BillingDecision {
  switch (state?.status) {
    case undefined:
    case 'subscribed':
      return 'bill';
    case 'pending':
      return 'hold';
    case 'failed':
      return 'closed';
    case 'unsubscribe-pending':
    case 'unsubscribed': {
      const until = state.finalUsageUntil ? new Date(state.finalUsageUntil) : now;
      const accessEnded = state.status === 'unsubscribed' && state.statusEventTime ? new Date(state.statusEventTime) : until;
      const lastHour = accessEnded < until ? accessEnded : until;
      return now <= until && hourStart <= lastHour && hourStart < until ? 'bill' : 'closed';
    }
  }
}
