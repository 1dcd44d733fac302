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
  /**
   * An error AWS does not document for this API, answered with a 4xx: probably about the records
   * (split to find them), but only trusted as such once some call of the run has succeeded, as an
   * unknown credentials or configuration error would fail every record alike.
   */
  | 'isolate-unmodelled'
  /** Nothing this run can do (API disabled, no permission, bad credentials): stop and alarm. */
  | 'stop'
  /** Nothing this run can do for this product (a product code this account does not sell): skip it and alarm. */
  | 'stop-product';

const ISOLATE = new Set([
  'TimestampOutOfBoundsException',
  'InvalidUsageDimensionException',
  'InvalidLicenseException',
  'InvalidCustomerIdentifierException',
  'InvalidTagException',
  'InvalidUsageAllocationsException',
  'CustomerNotEntitledException',
  'ValidationException',
  'SerializationException',
]);
/**
 * Errors no record can escape: the API is off, or the caller's credentials, signature or clock are
 * wrong (AWS's common errors, in both spellings). The buckets stay sealed and billable until their
 * hour leaves the window.
 */
const STOP = new Set([
  'DisabledApiException',
  'AccessDeniedException',
  'AccessDenied',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'IncompleteSignatureException',
  'InvalidClientTokenId',
  'ExpiredToken',
  'ExpiredTokenException',
  'MissingAuthenticationToken',
  'MissingAuthenticationTokenException',
  'RequestExpired',
  'NotAuthorized',
  'OptInRequired',
]);

/**
 * What a request-level error is about, as a key per record: records with the same key share the
 * fault. An unknown dimension is wrong for every record of that dimension (a request holds one
 * product), a refused licence or customer for all its records, a timestamp out of bounds for its
 * whole hour. Other errors, and records without the field the error names, are about one record.
 */
function faultKeyOf(errorName: string, planned: PlannedRecord): string {
  const { record } = planned;
  const oneRecord = `bucket ${planned.bucketKey}`;
  const about = (what: string, value: string | undefined) => (value === undefined ? oneRecord : `${what} ${value}`);
  switch (errorName) {
    case 'InvalidUsageDimensionException':
      return about('dimension', record.Dimension);
    case 'InvalidLicenseException':
      // Per hour too: a licence refused for one hour (stamped outside its active period) may be
      // billable in the request's other hours.
      return about('licence', record.LicenseArn === undefined ? undefined : `${record.LicenseArn} ${record.Timestamp.toISOString()}`);
    case 'InvalidCustomerIdentifierException':
      return about('customer', record.CustomerIdentifier);
    case 'CustomerNotEntitledException':
      return about('customer', record.LicenseArn ?? record.CustomerIdentifier ?? record.CustomerAWSAccountId);
    case 'TimestampOutOfBoundsException':
      return about('hour', record.Timestamp.toISOString());
    default:
      return oneRecord;
  }
}

/** The records grouped by what the error is about (faultKeyOf), groups in first-seen order. */
export function faultGroups(errorName: string, records: readonly PlannedRecord[]): PlannedRecord[][] {
  const groups = new Map<string, PlannedRecord[]>();
  for (const planned of records) {
    const key = faultKeyOf(errorName, planned);
    const group = groups.get(key);
    if (group) group.push(planned);
    else groups.set(key, [planned]);
  }
  return [...groups.values()];
}

/**
 * `transient`: the AWS SDK's own classification says throttling or a transient fault (other
 * spellings of throttling, request timeouts), which a 4xx alone would have split and dead-lettered.
 */
export function requestErrorAction(errorName: string, httpStatus?: number, transient = false): RequestErrorAction {
  if (STOP.has(errorName)) return 'stop';
  // The deployment's product list, not the records: the other products are still billed.
  if (errorName === 'InvalidProductCodeException') return 'stop-product';
  if (ISOLATE.has(errorName)) return 'isolate';
  if (transient || errorName === 'ThrottlingException' || httpStatus === undefined || httpStatus >= 500 || httpStatus === 429) return 'retry';
  // An unmodelled 4xx: split rather than retry forever; metering-run.ts decides at one record.
  return 'isolate-unmodelled';
}
