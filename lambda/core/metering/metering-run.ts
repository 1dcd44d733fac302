import { billingDecision, FinalUsageFlush, finalUsageFlushStands, StoredSubscription } from '../lifecycle/subscription-state';
import { isBillableHour } from '../usage/usage-rules';
import { utcHourStart } from '../utc-hour';
import { FoldRejection } from './fold';
import { FoldReport } from './fold-hours';
import { HourBucket, MeteringRecord, meteringRecordOf } from './hour-bucket';
import { ApiResult, faultGroups, matchOutcomes, requestErrorAction } from './outcomes';
import { backoffDelayMs, BackoffPolicy, CallRateLimiter, Clock, DEFAULT_BACKOFF } from './pacing';
import { MeteringRequest, PlannedRecord, planRequests } from './request-plan';

/**
 * One metering run: seal the hours that are over and fold their usage into buckets, send every sealed bucket through BatchMeterUsage,
 * and store each outcome. A sealed bucket's quantity never changes, so sending it again after a crash
 * or a lost answer is an idempotent repeat for AWS: no usage lost, none billed twice.
 */

/** The Metering ledger: hour buckets and their audit trail. */
export interface MeteringLedger {
  /**
   * Seals the hours that ended at or before `cutoff` and folds their usage into sealed buckets,
   * returned with the events refused (an index read right after may not show the buckets yet).
   */
  sealHoursEndedBy(cutoff: Date, now: Date): Promise<FoldReport>;
  /**
   * Seals the open usage of each customer whose access ended and whose final usage is due by `now`
   * (the lifecycle schedules it a few minutes after the end, so usage still on its way is counted).
   * `stands` tells, per due flush, whether it still stands; those that do not are forgotten unsealed.
   */
  sealFinalUsageDue(now: Date, stands: (flushes: readonly FinalUsageFlush[]) => Promise<readonly boolean[]>): Promise<FinalUsageReport>;
  /** Sealed buckets waiting to be metered, oldest hour first. */
  bucketsToMeter(limit: number): Promise<HourBucket[]>;
  /** Counts an attempt on each bucket before it is sent (the audit trail survives a crash mid-call). */
  recordAttempt(bucketKeys: readonly string[], at: Date): Promise<void>;
  recordMetered(bucketKey: string, meteringRecordId: string, at: Date): Promise<void>;
  /** Final: the bucket will never be billed; `reason` says why. */
  recordFailed(bucketKey: string, reason: string, message: string, at: Date): Promise<void>;
  /** Not billed yet, not given up: the bucket stays sealed and is sent again next run. */
  recordHeld(bucketKey: string, reason: string, at: Date): Promise<void>;
}

export interface FinalUsageReport extends FoldReport {
  /** Customers whose final usage was sealed. */
  readonly customers: number;
  /** Flushes withdrawn by a later change of their customer (finalUsageFlushStands), not sealed. */
  readonly withdrawn: number;
  /** Flushes that failed: tried again next run, unless given up (their final window has closed). */
  readonly failed: readonly FinalUsageFailure[];
}

export interface FinalUsageFailure {
  readonly customerKey: string;
  readonly dueAt: string;
  readonly message: string;
  /** Not tried again: the customer's usage is left to its hours' own folds. */
  readonly givenUp: boolean;
}

/**
 * Zero-quantity records (Seller Guide practice): for an hour that ended, a sealed bucket of quantity 0
 * for every subscribed customer and configured dimension that has none. Idempotent per hour.
 */
export interface ZeroUsage {
  /**
   * Returns the buckets this call created. Stops early once `outOfTime()` is true; the next call for
   * the same hour resumes where this one stopped.
   */
  fillHour(hourStart: Date, now: Date, outOfTime: () => boolean): Promise<HourBucket[]>;
}

/** Customers' subscription state (from lifecycle events), by customer key. */
/** What the Customers table says about billing a customer. */
export interface CustomerBillingState {
  /** Its lifecycle state; absent until a lifecycle event told it. */
  readonly subscription?: StoredSubscription;
  /** When it first registered (its licence was active by then). */
  readonly firstRegisteredAt?: string;
  /** An instant its licence was known active from a lifecycle notification (activeSinceOf). */
  readonly activeSince?: string;
}

export interface SubscriptionDirectory {
  /** The customers' billing states (customers not in the table are absent). */
  billingStates(customerKeys: readonly string[]): Promise<Map<string, CustomerBillingState>>;
}

export interface DeadLetter {
  readonly reason: string;
  readonly message: string;
  readonly bucket: HourBucket;
  readonly record?: MeteringRecord;
}

export interface MeteringDeadLetters {
  send(letters: readonly DeadLetter[]): Promise<void>;
  /** Usage events refused while an hour was folded (e.g. usage after the customer's final metering). */
  sendUsage(rejections: readonly FoldRejection[]): Promise<void>;
}

export interface BatchMeterUsageCall {
  readonly productCode?: string;
  readonly records: readonly MeteringRecord[];
}

export interface BatchMeterUsageAnswer {
  readonly results: readonly ApiResult[];
  readonly unprocessed: readonly Partial<MeteringRecord>[];
}

/** A whole-request failure of BatchMeterUsage, by its AWS error name. */
export class MeteringApiError extends Error {
  constructor(
    readonly errorName: string,
    message: string,
    readonly httpStatus?: number,
    /** The SDK counts it as throttling or a transient fault (its own retry classification). */
    readonly transient = false,
  ) {
    super(message);
    this.name = 'MeteringApiError';
  }
}

export interface MeteringApi {
  /** Throws MeteringApiError when the whole request fails. */
  batchMeterUsage(call: BatchMeterUsageCall): Promise<BatchMeterUsageAnswer>;
}

export interface MeteringSettings {
  /** Buckets are sealed this long after their hour ends (late events still land in their hour). @default 600 */
  readonly gracePeriodSeconds: number;
  /** BatchMeterUsage calls per second at most: AWS throttles above 10. @default 9 */
  readonly callsPerSecond: number;
  /** Attempts per request before its records are left for the next run. @default 6 */
  readonly maxAttempts: number;
  /** Buckets read per run. @default 5000 */
  readonly maxBucketsPerRun: number;
  /** BatchMeterUsage requests in flight at once (the call rate limit still holds). @default 3 */
  readonly concurrentRequests: number;
  readonly backoff: BackoffPolicy;
}

/**
 * Single records refused with an undocumented error, before any call of the run got an answer,
 * after which the run stops: the error is more likely about the caller than about each record.
 */
const MAX_SUSPECTS_BEFORE_ANY_ANSWER = 5;

export const DEFAULT_METERING_SETTINGS: MeteringSettings = {
  gracePeriodSeconds: 600,
  callsPerSecond: 9,
  maxAttempts: 6,
  maxBucketsPerRun: 5000,
  concurrentRequests: 3,
  backoff: DEFAULT_BACKOFF,
};

export interface MeteringPorts {
  readonly ledger: MeteringLedger;
  readonly deadLetters: MeteringDeadLetters;
  readonly api: MeteringApi;
  /** @default every customer billable (no lifecycle state) */
  readonly subscriptions?: SubscriptionDirectory;
  /** @default no zero-quantity records */
  readonly zeroUsage?: ZeroUsage;
  readonly clock: Clock;
  readonly random?: () => number;
}

export interface MeteringReport {
  /** Buckets sealed (folded from the usage journal) this run. */
  sealed: number;
  /** Usage events refused while folding, sent to the metering dead-letter queue. */
  usageRejected: number;
  /** Usage events dropped while folding as repeats of an eventId already counted. */
  duplicates: number;
  metered: number;
  deadLettered: number;
  /** Left sealed for the next run: still failing after retries, or out of time. */
  deferred: number;
  /** Left sealed because the customer is not subscribed yet (AWS answered CustomerNotSubscribed, or lifecycle says pending). */
  held: number;
  /** Zero-quantity buckets created this run. */
  zeroRecords: number;
  /** Customers whose access ended whose final usage this run sealed (their buckets are counted in `sealed`). */
  finalUsage: number;
  /** Final usage flushes withdrawn unsealed: their customer subscribed again, or ended again later. */
  finalUsageWithdrawn: number;
  /** Final usage flushes that failed this run, with the error (the run fails, so the alarm goes off). */
  finalUsageFailed?: readonly FinalUsageFailure[];
  calls: number;
  /** Set when the run stopped early because nothing could succeed (API disabled, no permission). */
  stoppedBy?: string;
  /** Products skipped for the rest of the run, with the error (a product code AWS refuses): the others were billed. */
  stoppedProducts?: Record<string, string>;
}

/** Hours the zero fill looks at each run: the latest ended one and the two before it, if unfinished. */
const ZERO_FILL_HOURS = 3;

/**
 * The earliest instant the customer's licence is known to have been active (registration, or a
 * licence notification): its records are not stamped earlier (recordTimestampOf).
 */
export function knownActiveAt(state: CustomerBillingState | undefined): string | undefined {
  const known = [state?.firstRegisteredAt, state?.activeSince].filter((t): t is string => t !== undefined);
  return known.length === 0 ? undefined : known.reduce((a, b) => (Date.parse(a) <= Date.parse(b) ? a : b));
}

export async function runMetering(
  ports: MeteringPorts,
  options: { now: Date; deadline: Date; settings?: Partial<MeteringSettings> },
): Promise<MeteringReport> {
  const settings = { ...DEFAULT_METERING_SETTINGS, ...options.settings };
  const { ledger, clock } = ports;
  const at = () => new Date(clock.now());
  const report: MeteringReport = {
    sealed: 0,
    usageRejected: 0,
    duplicates: 0,
    metered: 0,
    deadLettered: 0,
    deferred: 0,
    held: 0,
    zeroRecords: 0,
    finalUsage: 0,
    finalUsageWithdrawn: 0,
    calls: 0,
  };

  const cutoff = new Date(options.now.getTime() - settings.gracePeriodSeconds * 1000);
  const folded = await ledger.sealHoursEndedBy(cutoff, options.now);
  const final = await ledger.sealFinalUsageDue(options.now, async (flushes) => {
    const states = (await ports.subscriptions?.billingStates([...new Set(flushes.map((f) => f.customerKey))])) ?? new Map<string, CustomerBillingState>();
    return flushes.map((flush) => finalUsageFlushStands(flush, states.get(flush.customerKey)?.subscription));
  });
  report.finalUsage = final.customers;
  report.finalUsageWithdrawn = final.withdrawn;
  if (final.failed.length > 0) report.finalUsageFailed = final.failed;
  const justSealed = [...folded.buckets, ...final.buckets];
  report.sealed = justSealed.length;
  report.duplicates = folded.duplicates + final.duplicates;
  const rejected = [...folded.rejected, ...final.rejected];
  if (rejected.length > 0) {
    await ports.deadLetters.sendUsage(rejected);
    report.usageRejected = rejected.length;
  }
  // The latest hour that has ended by the cutoff: its idle customers get zero records, and so do
  // those of the hours before it whose fill earlier runs did not finish (oldest first; a finished
  // hour costs one read).
  const zeroHour = new Date(utcHourStart(cutoff).getTime() - 3_600_000);
  // Filled before sending, so this run sends them too, but within a quarter of the time left at
  // most: zero records are only a practice and must never keep real usage from being sent. What is
  // not filled by then is resumed by the next run.
  const fillUntil = clock.now() + (options.deadline.getTime() - clock.now()) / 4;
  const outOfFillTime = () => clock.now() >= fillUntil;
  const zeros: HourBucket[] = [];
  for (let back = ZERO_FILL_HOURS - 1; ports.zeroUsage && back >= 0 && !outOfFillTime(); back--) {
    const hour = new Date(zeroHour.getTime() - back * 3_600_000);
    for (const bucket of await ports.zeroUsage.fillHour(hour, options.now, outOfFillTime)) zeros.push(bucket);
  }
  report.zeroRecords = zeros.length;

  const byKey = new Map<string, HourBucket>();
  for (const bucket of [...(await ledger.bucketsToMeter(settings.maxBucketsPerRun)), ...justSealed, ...zeros]) {
    byKey.set(bucket.bucketKey, bucket);
  }
  const buckets = [...byKey.values()].sort((a, b) => a.hourStart.localeCompare(b.hourStart));
  // Calls made for each bucket in this run: the buckets above were read before any.
  const attemptsThisRun = new Map<string, number>();
  const deadLetter = async (bucket: HourBucket, reason: string, message: string, record?: MeteringRecord) => {
    // The letter's audit trail as the ledger will hold it: with this run's attempts and the outcome.
    const audited = { ...bucket, attempts: bucket.attempts + (attemptsThisRun.get(bucket.bucketKey) ?? 0), lastOutcome: reason };
    await ports.deadLetters.send([{ reason, message, bucket: audited, record }]);
    await ledger.recordFailed(bucket.bucketKey, reason, message, at());
    report.deadLettered += 1;
  };

  const states: Map<string, CustomerBillingState> =
    (await ports.subscriptions?.billingStates([...new Set(buckets.map((b) => b.customerKey))])) ?? new Map();
  const subscriptionOf = (bucket: HourBucket) => states.get(bucket.customerKey)?.subscription;
  /** Whether AWS's CustomerNotSubscribed is the customer's last word (they left) or may change (not subscribed yet). */
  const hasLeft = (bucket: HourBucket) => ['unsubscribe-pending', 'unsubscribed', 'failed'].includes(subscriptionOf(bucket)?.status ?? '');

  // Records AWS would refuse outright are dead-lettered without a call.
  const sendable = [];
  for (const bucket of buckets) {
    if (!isBillableHour(new Date(bucket.hourStart), options.now)) {
      const heldForSubscription = bucket.lastOutcome === 'CustomerNotSubscribed';
      await deadLetter(
        bucket,
        heldForSubscription ? 'CustomerNotSubscribed' : 'TimestampOutOfBounds',
        heldForSubscription
          ? `the customer was not subscribed before the hour ${bucket.hourStart} left AWS Marketplace's billing window`
          : `the hour ${bucket.hourStart} is outside AWS Marketplace's billing window`,
      );
      continue;
    }
    const decision = billingDecision(subscriptionOf(bucket), new Date(bucket.hourStart), options.now);
    if (decision === 'closed') {
      await deadLetter(bucket, 'CustomerNotSubscribed', 'the customer is no longer subscribed and the final usage window has closed');
      continue;
    }
    if (decision === 'hold') {
      report.held += 1;
      continue;
    }
    const built = meteringRecordOf(bucket, knownActiveAt(states.get(bucket.customerKey)));
    if (!built.ok) {
      await deadLetter(bucket, 'InvalidRecord', built.message);
      continue;
    }
    sendable.push({ bucketKey: bucket.bucketKey, record: built.record, productCode: bucket.productCode, identityMode: bucket.identityMode });
  }

  const limiter = new CallRateLimiter(settings.callsPerSecond, clock);
  const productStopped = (request: MeteringRequest) => report.stoppedProducts?.[request.productCode] !== undefined;
  /** Calls AWS answered with per-record results this run. */
  let answeredCalls = 0;
  /** Single records refused with an undocumented error (see the end of the run). */
  const suspects: { planned: PlannedRecord; errorName: string; message: string }[] = [];
  const work: MeteringRequest[] = planRequests(sendable);
  // A few requests in flight: each waits on its answer and outcome writes, not on the others.
  const worker = async () => {
    for (let request = work.shift(); request; request = work.shift()) {
      if (report.stoppedBy || productStopped(request) || clock.now() >= options.deadline.getTime()) {
        report.deferred += request.records.length;
        continue;
      }
      await sendRequest(request);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, settings.concurrentRequests) }, worker));
  for (const { planned, errorName, message } of suspects) {
    // AWS answered other calls of this run: the error is about this record. Otherwise it may be
    // about the caller (an undocumented credentials or configuration error): the bucket stays sealed.
    if (answeredCalls > 0) {
      await deadLetter(byKey.get(planned.bucketKey)!, errorName, message, planned.record);
    } else {
      report.deferred += 1;
      report.stoppedBy ??= errorName;
    }
  }
  return report;

  /** Sends one request until every record has a final outcome or the attempts run out. */
  async function sendRequest(request: MeteringRequest): Promise<void> {
    let pending: readonly PlannedRecord[] = request.records;
    const outOfTime = () => clock.now() >= options.deadline.getTime();
    for (let attempt = 0; pending.length > 0; attempt++) {
      // Stopped meanwhile (e.g. in the other half of a split request): no further call.
      if (report.stoppedBy || productStopped(request) || attempt >= settings.maxAttempts || outOfTime()) {
        report.deferred += pending.length;
        return;
      }
      if (attempt > 0) await clock.sleep(backoffDelayMs(attempt - 1, settings.backoff, ports.random));
      const answered = await limiter.acquire();
      // The backoff or the rate limit may have used up the time left.
      if (outOfTime()) {
        answered();
        report.deferred += pending.length;
        return;
      }
      let answer: BatchMeterUsageAnswer;
      try {
        await ledger.recordAttempt(pending.map((p) => p.bucketKey), at());
        for (const p of pending) attemptsThisRun.set(p.bucketKey, (attemptsThisRun.get(p.bucketKey) ?? 0) + 1);
        report.calls += 1;
        answer = await ports.api.batchMeterUsage({
          productCode: request.identityMode === 'legacy' ? request.productCode : undefined,
          records: pending.map((p) => p.record),
        });
      } catch (error) {
        answered();
        if (!(error instanceof MeteringApiError)) throw error;
        const action = requestErrorAction(error.errorName, error.httpStatus, error.transient);
        if (action === 'retry') continue;
        if (action === 'stop') {
          report.stoppedBy = error.errorName;
          report.deferred += pending.length;
          return;
        }
        if (action === 'stop-product') {
          report.stoppedProducts = { ...report.stoppedProducts, [request.productCode]: error.errorName };
          report.deferred += pending.length;
          return;
        }
        if (action === 'isolate-unmodelled' && pending.length === 1) {
          // Judged once the run is over: dead-lettered only if other calls got through.
          suspects.push({ planned: pending[0], errorName: error.errorName, message: error.message });
          if (answeredCalls === 0 && suspects.length >= MAX_SUSPECTS_BEFORE_ANY_ANSWER) report.stoppedBy = error.errorName;
          return;
        }
        // Something in this request is at fault: bill the rest, find the records at fault by halving
        // over the groups that share what the error is about (one dimension, licence, hour...).
        const groups = faultGroups(error.errorName, pending);
        if (groups.length === 1) {
          for (const planned of pending) await deadLetter(byKey.get(planned.bucketKey)!, error.errorName, error.message, planned.record);
          return;
        }
        const half = Math.ceil(groups.length / 2);
        await sendRequest({ ...request, records: groups.slice(0, half).flat() });
        await sendRequest({ ...request, records: groups.slice(half).flat() });
        return;
      }
      answered();
      answeredCalls += 1;
      const outcomes = matchOutcomes(pending, answer.results);
      const retry: PlannedRecord[] = [];
      // Each record's outcome is stored on its own bucket: all at once.
      await Promise.all(
        pending.map(async (planned) => {
          const outcome = outcomes.get(planned.bucketKey)!;
          if (outcome.kind === 'metered') {
            await ledger.recordMetered(planned.bucketKey, outcome.meteringRecordId, at());
            report.metered += 1;
          } else if (outcome.kind === 'rejected' && outcome.reason === 'CustomerNotSubscribed' && !hasLeft(byKey.get(planned.bucketKey)!)) {
            // Not subscribed yet (or AWS has not caught up): try again next run, until the hour leaves the window.
            await ledger.recordHeld(planned.bucketKey, outcome.reason, at());
            report.held += 1;
          } else if (outcome.kind === 'rejected') {
            await deadLetter(byKey.get(planned.bucketKey)!, outcome.reason, `BatchMeterUsage answered ${outcome.reason}`, planned.record);
          } else {
            retry.push(planned);
          }
        }),
      );
      pending = retry;
    }
  }
}
