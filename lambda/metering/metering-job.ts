import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { MeteringPorts, MeteringReport, MeteringSettings, runMetering } from '../core/metering/metering-run';
import { HourBucket } from '../core/metering/hour-bucket';
import { DeadLetterQueue } from '../adapters/dead-letter-queue';
import { runMetricsOf } from '../core/metering/run-metrics';

/**
 * One scheduled metering run, shared by the Lambda handler and the local schedule: dead letters go
 * to the metering dead-letter queue with the bucket's audit trail and the reason.
 */
export function meteringDeadLetters(queue: Pick<DeadLetterQueue, 'send'>): MeteringPorts['deadLetters'] {
  return {
    sendUsage: (rejections) =>
      queue.send(rejections.map((rejection) => ({ reason: rejection.reason, body: { ...rejection, kind: 'usage-event' } }))),
    send: (letters) =>
      queue.send(
        letters.map((letter) => ({
          reason: letter.reason,
          body: { reason: letter.reason, message: letter.message, bucket: auditOf(letter.bucket), record: letter.record },
        })),
      ),
  };
}

function auditOf(bucket: HourBucket) {
  const { allocations, ...rest } = bucket;
  return { ...rest, allocatedTagSets: Object.keys(allocations).length };
}

export interface MeteringLog {
  info(message: string, attributes: Record<string, unknown>): void;
  error(message: string, attributes: Record<string, unknown>): void;
}

export async function meterNow(
  ports: MeteringPorts,
  log: MeteringLog,
  options: { now: Date; deadline: Date; settings?: Partial<MeteringSettings> },
): Promise<MeteringReport> {
  const report = await runMetering(ports, options);
  if (report.stoppedBy) log.error('metering stopped: nothing can be billed until this is fixed', { ...report });
  else if (report.stoppedProducts) log.error('metering skipped products: their usage cannot be billed until this is fixed', { ...report });
  else if (report.finalUsageFailed) log.error('final usage of customers whose access ended could not be sealed; tried again next run', { ...report });
  else if (report.sealed + report.metered + report.deadLettered + report.deferred > 0) log.info('metering run', { ...report });
  return report;
}

/** Records a run's counts (SealedBuckets, DeferredBuckets, ...) in Powertools Metrics, published when the invocation ends. */
export function recordRunMetrics(metrics: Pick<Metrics, 'addMetric'>, report: MeteringReport): void {
  for (const [name, value] of runMetricsOf(report)) metrics.addMetric(name, MetricUnit.Count, value);
}

/**
 * Fails the invocation when the run stopped (API disabled, no permission, bad credentials), skipped
 * a product (a product code AWS refuses) or could not seal a leaving customer's final usage: the
 * metering function's errors metric then raises the failed-runs alarm, where a log line alone would
 * go unseen while usage goes unbilled.
 */
export function failIfStopped(report: MeteringReport): MeteringReport {
  if (report.stoppedBy) throw new Error(`metering stopped by ${report.stoppedBy}: nothing can be billed until this is fixed`);
  if (report.stoppedProducts) {
    const products = Object.entries(report.stoppedProducts).map(([productCode, error]) => `${productCode} (${error})`);
    throw new Error(`metering skipped ${products.join(', ')}: their usage cannot be billed until this is fixed; the other products were billed`);
  }
  if (report.finalUsageFailed) {
    const customers = report.finalUsageFailed.map((f) => `${f.customerKey} (${f.message}${f.givenUp ? '; given up' : ''})`);
    throw new Error(`the final usage of ${customers.join(', ')} could not be sealed; the other usage was billed`);
  }
  return report;
}
