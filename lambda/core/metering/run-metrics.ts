import type { MeteringReport } from './metering-run';

/**
 * What each metering run reports to CloudWatch (as counts), so that alarms can see a run that
 * succeeds without billing: AWS throttling or failing for hours leaves buckets sealed and unbilled
 * ("deferred") while the function itself never fails, and AWS takes an hour's usage for 24 hours only.
 */
export const METERING_RUN_METRICS = {
  sealed: 'SealedBuckets',
  metered: 'MeteredBuckets',
  deadLettered: 'DeadLetteredBuckets',
  deferred: 'DeferredBuckets',
  held: 'HeldBuckets',
  usageRejected: 'RejectedUsageEvents',
  calls: 'BatchMeterUsageCalls',
} as const satisfies Partial<Record<keyof MeteringReport, string>>;

/** The service dimension the metering function's metrics carry (Powertools' `service`). */
export const METERING_SERVICE_NAME = 'marketplace-metering';

export type MeteringRunMetric = (typeof METERING_RUN_METRICS)[keyof typeof METERING_RUN_METRICS];

/** A run's figures, by metric name. */
export function runMetricsOf(report: MeteringReport): [MeteringRunMetric, number][] {
  return (Object.keys(METERING_RUN_METRICS) as (keyof typeof METERING_RUN_METRICS)[]).map((field) => [METERING_RUN_METRICS[field], report[field]]);
}
