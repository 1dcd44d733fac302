/**
 * Limits of the AWS Marketplace Metering API (see ../shared/marketplace-facts.md). One place, so the
 * metering engine that respects them and the simulator that enforces them cannot drift apart.
 */
export const MarketplaceLimits = {
  /** UsageRecords in one BatchMeterUsage call. */
  maxRecordsPerBatch: 25,
  /** A BatchMeterUsage request must serialize to strictly less than this many bytes. */
  maxRequestBytes: 1024 * 1024,
  /** Quantity and AllocatedUsageQuantity are integers in 0..maxQuantity. */
  maxQuantity: 2_147_483_647,
  /** Dimension, CustomerIdentifier, ProductCode and LicenseArn lengths. */
  maxIdentifierLength: 255,
  maxAllocationsPerRecord: 2500,
  maxTagsPerAllocation: 5,
  maxTagKeyLength: 100,
  maxTagValueLength: 256,
  /** BatchMeterUsage requests per second per account and region before throttling. */
  requestsPerSecond: 10,
  /** Records are accepted up to this long after the usage (current API model). */
  billingWindowSeconds: 24 * 3600,
  /** Last month's records are accepted until this hour (UTC) on the 1st. */
  previousMonthCutoffHourUtc: 6,
  /** After an unsubscribe, the seller has about this long to send the final usage. */
  finalUsageWindowSeconds: 3600,
} as const;

/** Characters allowed in allocation tag keys and values. */
export const TAG_CHARACTERS = /^[A-Za-z0-9+ \-=._:/@]+$/;
/** An AWS account id: twelve digits. */
export const AWS_ACCOUNT_ID = /^[0-9]{12}$/;
/** A License Manager licence ARN as Marketplace hands it out; the `l-...` part identifies the licence. */
export const LICENSE_ARN = /^arn:aws[a-z-]*:license-manager:[a-z0-9-]*:[0-9]{12}:license[:/](l-[A-Za-z0-9]+)$/;

/**
 * The licence id (`l-...`) inside a licence ARN, also when an event gives the ARN without its `arn:`
 * prefix. Licences are matched on this id, never on the full string.
 */
export function licenseIdOf(licenseArn: string): string | undefined {
  // The id is what follows the last `:` or `/` (the id has neither): no regex scan of the whole ARN,
  // which every usage event carries.
  const tail = licenseArn.slice(Math.max(licenseArn.lastIndexOf(':'), licenseArn.lastIndexOf('/')) + 1);
  return LICENSE_ID.test(tail) ? tail : undefined;
}

const LICENSE_ID = /^l-[A-Za-z0-9]+$/;
