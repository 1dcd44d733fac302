import { IdentityMode } from '../customer';
import { MarketplaceLimits as Limits } from '../marketplace-limits';
import { tagsOfKey } from '../usage/usage-rules';
import { HOUR_MS } from '../utc-hour';

/**
 * An hour bucket: one customer's usage of one dimension in one UTC hour, the unit AWS Marketplace
 * bills (and de-duplicates) on. The ledger writes it sealed when the hour's usage journal is folded,
 * once the hour has ended and a grace period passed (its quantity never changes again); it is then
 * metered or failed. `open` is for a ledger that gathers usage in the bucket itself (the unit
 * tests' fake ledger does).
 */

export type BucketStatus = 'open' | 'sealed' | 'metered' | 'failed';

export interface BucketIdentity {
  readonly customerKey: string;
  readonly productCode: string;
  readonly identityMode: IdentityMode;
  readonly customerAWSAccountId: string;
  readonly licenseArn?: string;
  readonly customerIdentifier?: string;
  readonly dimension: string;
  /** ISO 8601 start of the UTC hour. */
  readonly hourStart: string;
}

export interface HourBucket extends BucketIdentity {
  readonly bucketKey: string;
  readonly quantity: number;
  /** Quantity per allocation tag set (tagSetKey), when events carried allocations. */
  readonly allocations: Readonly<Record<string, number>>;
  readonly status: BucketStatus;
  readonly attempts: number;
  readonly sealedAt?: string;
  readonly meteringRecordId?: string;
  /** The last answer for this bucket (e.g. CustomerNotSubscribed while it is held). */
  readonly lastOutcome?: string;
}

export function bucketKeyOf(customerKey: string, dimension: string, hourStart: string): string {
  return `${customerKey}|${dimension}|${hourStart}`;
}

/** A BatchMeterUsage UsageRecord, in our own type: lambda/core does not depend on the AWS SDK. */
export interface MeteringRecord {
  readonly Timestamp: Date;
  readonly Dimension: string;
  readonly Quantity: number;
  readonly CustomerAWSAccountId?: string;
  readonly LicenseArn?: string;
  readonly CustomerIdentifier?: string;
  readonly UsageAllocations?: readonly { AllocatedUsageQuantity: number; Tags?: { Key: string; Value: string }[] }[];
}

export type RecordResult = { readonly ok: true; readonly record: MeteringRecord } | { readonly ok: false; readonly message: string };

/**
 * The UsageRecord for a sealed bucket. Timestamp: in its hour (recordTimestampOf). License mode: account +
 * licence; legacy: CustomerIdentifier (the request carries the ProductCode). Usage added without
 * allocations becomes one allocation without tags, so the allocations always add up to Quantity.
 */
export function meteringRecordOf(bucket: HourBucket, activeAt?: string): RecordResult {
  const identity =
    bucket.identityMode === 'license'
      ? { CustomerAWSAccountId: bucket.customerAWSAccountId, LicenseArn: bucket.licenseArn }
      : { CustomerIdentifier: bucket.customerIdentifier };
  const tagged = Object.entries(bucket.allocations).filter(([, quantity]) => quantity > 0);
  let UsageAllocations: MeteringRecord['UsageAllocations'];
  if (tagged.length > 0) {
    const allocated = tagged.reduce((total, [, quantity]) => total + quantity, 0);
    const untagged = bucket.quantity - allocated;
    if (untagged < 0) return { ok: false, message: `allocations (${allocated}) exceed the quantity (${bucket.quantity})` };
    UsageAllocations = [
      ...tagged.map(([key, quantity]) => ({
        AllocatedUsageQuantity: quantity,
        Tags: Object.entries(tagsOfKey(key)).map(([Key, Value]) => ({ Key, Value })),
      })),
      ...(untagged > 0 ? [{ AllocatedUsageQuantity: untagged }] : []),
    ];
    if (UsageAllocations.length > Limits.maxAllocationsPerRecord) {
      return { ok: false, message: `${UsageAllocations.length} allocation tag sets in one hour: at most ${Limits.maxAllocationsPerRecord}` };
    }
  }
  if (bucket.quantity > Limits.maxQuantity) {
    return { ok: false, message: `the hour's quantity ${bucket.quantity} exceeds ${Limits.maxQuantity}` };
  }
  return {
    ok: true,
    record: {
      Timestamp: recordTimestampOf(bucket.hourStart, activeAt),
      Dimension: bucket.dimension,
      Quantity: bucket.quantity,
      ...identity,
      ...(UsageAllocations ? { UsageAllocations } : {}),
    },
  };
}

/**
 * A record's Timestamp: the start of its hour, or, in the hour the customer's licence is first
 * known to have been active (its first registration, or a licence notification: knownActiveAt),
 * that moment (rounded up to the second). AWS refuses a record stamped before the licence was
 * active (InvalidLicenseException; legacy: not billed), so the first hour's usage is stamped when
 * the licence was surely active. Any instant of the hour names the same hour to AWS.
 */
export function recordTimestampOf(hourStart: string, activeAt?: string): Date {
  const start = new Date(hourStart).getTime();
  const active = activeAt === undefined ? NaN : Math.ceil(Date.parse(activeAt) / 1000) * 1000;
  // Usage of an hour before the licence was known active (a producer's clock) gets its hour's last second.
  return new Date(Number.isNaN(active) || active <= start ? start : Math.min(active, start + HOUR_MS - 1000));
}
