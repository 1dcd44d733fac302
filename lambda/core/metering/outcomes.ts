import { MeteringRecord } from './hour-bucket';
import { PlannedRecord } from './request-plan';

/**
 * What BatchMeterUsage said about each record. AWS does not document the order of Results, so
 * results are matched to the records sent by content, never by position.
 */

export type RecordOutcome =
  | { readonly kind: 'metered'; readonly meteringRecordId: string }
  /** Final: AWS will not bill this record, now or later. */
  | { readonly kind: 'rejected'; readonly reason: 'CustomerNotSubscribed' | 'DuplicateRecord' | string }
  /** Transient: send it again, unchanged. */
  | { readonly kind: 'unprocessed' };

export interface ApiResult {
  readonly record?: Partial<MeteringRecord>;
  readonly status?: string;
  readonly meteringRecordId?: string;
}

/** The fields that identify a record within a request: identity, dimension, hour, quantity. */
export function recordFingerprint(record: Partial<MeteringRecord>): string {
  const seconds = record.Timestamp ? Math.round(new Date(record.Timestamp).getTime() / 1000) : null;
  return JSON.stringify([
    record.LicenseArn ?? '',
    record.CustomerAWSAccountId ?? '',
    record.CustomerIdentifier ?? '',
    record.Dimension ?? '',
    seconds,
    record.Quantity ?? 0,
  ]);
}

export function matchOutcomes(sent: readonly PlannedRecord[], results: readonly ApiResult[]): Map<string, RecordOutcome> {
  const byFingerprint = new Map<string, ApiResult[]>();
  for (const result of results) {
    if (!result.record) continue;
    const key = recordFingerprint(result.record);
    byFingerprint.set(key, [...(byFingerprint.get(key) ?? []), result]);
  }
  const outcomes = new Map<string, RecordOutcome>();
  for (const { bucketKey, record } of sent) {
    const key = recordFingerprint(record);
    const result = byFingerprint.get(key)?.shift();
    if (result?.status === 'Success' && result.meteringRecordId) {
      outcomes.set(bucketKey, { kind: 'metered', meteringRecordId: result.meteringRecordId });
    } else if (result?.status && result.status !== 'Success') {
      outcomes.set(bucketKey, { kind: 'rejected', reason: result.status });
    } else {
      // Listed in UnprocessedRecords, or not answered at all: resending is safe (AWS de-duplicates the hour).
      outcomes.set(bucketKey, { kind: 'unprocessed' });
    }
  }
  return outcomes;
}

/** What to do when a whole BatchMeterUsage request fails. */
export type RequestErrorAction =
  /** Throttling, 5xx, network: back off and send the same request again. */
  | 'retry'
  /** Something in the records: split the request to find the record(s) at fault. */
  | 'isolate'
  /** Nothing this run can do (API disabled, no permission): stop and alarm. */
  | 'stop';

const ISOLATE = new Set([
  'TimestampOutOfBoundsException',
  'InvalidUsageDimensionException',
  'InvalidLicenseException',
  'InvalidCustomerIdentifierException',
  'InvalidProductCodeException',
  'InvalidTagException',
  'InvalidUsageAllocationsException',
  'CustomerNotEntitledException',
  'ValidationException',
  'SerializationException',
]);
const STOP = new Set(['DisabledApiException', 'AccessDeniedException', 'UnrecognizedClientException', 'InvalidSignatureException']);

export function requestErrorAction(errorName: string, httpStatus?: number): RequestErrorAction {
  if (STOP.has(errorName)) return 'stop';
  if (ISOLATE.has(errorName)) return 'isolate';
  if (errorName === 'ThrottlingException' || httpStatus === undefined || httpStatus >= 500 || httpStatus === 429) return 'retry';
  // An unmodelled 4xx: assume the records are at fault rather than retrying forever.
  return 'isolate';
}
