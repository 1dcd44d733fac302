import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { BucketIdentity, bucketKeyOf, HourBucket } from '../core/metering/hour-bucket';
import { ZeroUsage } from '../core/metering/metering-run';
import { ProductConfig } from '../core/product-config';
import { DynamoDbMeteringLedger } from './metering-ledger';

export interface ZeroUsageFillerOptions {
  /** Conditional puts in flight at once. @default 24 */
  readonly concurrentWrites?: number;
  /**
   * Customers read per Scan page (DynamoDB's `Limit`, counted before the filter). Progress is kept
   * page by page, so a fill stopped part-way re-checks at most one page when it resumes. @default 500
   */
  readonly pageSize?: number;
}

/**
 * Zero-quantity records for an hour: every customer whose status is `subscribed` and who was
 * subscribed when the hour started gets a sealed bucket of 0 for each of its product's dimensions
 * that saw no usage.
 *
 * The Customers table is scanned page by page; each page's buckets are written with a few
 * conditional puts in flight at once (BatchWriteItem cannot take the condition that keeps a bucket
 * with usage, or one made earlier, from being overwritten). After each page the scan position is
 * stored with the hour's zero-fill mark, so a fill stopped by its deadline (or a crash) resumes
 * there in the next run instead of starting over; the hour is marked done only once the scan ends.
 */
export class ZeroUsageFiller implements ZeroUsage {
  private readonly concurrentWrites: number;
  private readonly pageSize: number;

  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly customersTable: string,
    private readonly ledger: DynamoDbMeteringLedger,
    private readonly products: readonly ProductConfig[],
    options: ZeroUsageFillerOptions = {},
  ) {
    this.concurrentWrites = Math.max(1, options.concurrentWrites ?? 24);
    this.pageSize = Math.max(1, options.pageSize ?? 500);
  }

  async fillHour(hourStart: Date, now: Date, outOfTime: () => boolean = () => false): Promise<HourBucket[]> {
    const hour = hourStart.toISOString();
    const progress = await this.ledger.zeroFillProgress(hour);
    if (progress.done) return [];
    const created: HourBucket[] = [];
    let startKey = progress.resumeKey;
    do {
      if (outOfTime()) return created;
      const page = await this.documents.send(
        new ScanCommand({
          TableName: this.customersTable,
          // Only customers subscribed when the hour started. A zero record is a Seller Guide practice,
          // not usage: for a customer who subscribed during the hour it would be stamped at the hour's
          // start, before the licence was active, which AWS refuses (InvalidLicenseException: the
          // timestamp is outside the licence's active period) or does not bill. Their first hour
          // gets real usage or nothing.
          FilterExpression: '#status = :subscribed AND statusEventTime <= :hourStart',
          ProjectionExpression: 'customerKey, productCode, customerAWSAccountId, licenseArn, customerIdentifier',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':subscribed': 'subscribed', ':hourStart': hour },
          ExclusiveStartKey: startKey,
          Limit: this.pageSize,
        }),
      );
      const finished = await this.writeZeroBuckets(this.zeroBucketsOf(page.Items ?? [], hour), now, outOfTime, created);
      // Stopped in this page: the stored position is still the page's start, the next run redoes
      // it (the buckets made already fail their condition and are not created again).
      if (!finished) return created;
      startKey = page.LastEvaluatedKey;
      if (startKey) await this.ledger.saveZeroFillProgress(hour, startKey, now);
    } while (startKey);
    await this.ledger.zeroFillDone(hour, true);
    return created;
  }

  private zeroBucketsOf(items: readonly Record<string, unknown>[], hour: string): (BucketIdentity & { bucketKey: string })[] {
    const buckets: (BucketIdentity & { bucketKey: string })[] = [];
    for (const item of items) {
      const product = this.products.find((p) => p.productCode === item.productCode);
      if (!product || !item.customerAWSAccountId) continue;
      if (product.identityMode === 'license' ? !item.licenseArn : !item.customerIdentifier) continue;
      for (const dimension of product.dimensions) {
        buckets.push({
          bucketKey: bucketKeyOf(String(item.customerKey), dimension, hour),
          customerKey: String(item.customerKey),
          productCode: product.productCode,
          identityMode: product.identityMode,
          customerAWSAccountId: String(item.customerAWSAccountId),
          licenseArn: item.licenseArn as string | undefined,
          customerIdentifier: item.customerIdentifier as string | undefined,
          dimension,
          hourStart: hour,
        });
      }
    }
    return buckets;
  }

  /**
   * Writes the buckets, `concurrentWrites` at a time; true when all were written (or existed),
   * false when it stopped because time ran out. A write error stops the others and is thrown once
   * the writes in flight have settled.
   */
  private async writeZeroBuckets(
    buckets: readonly (BucketIdentity & { bucketKey: string })[],
    now: Date,
    outOfTime: () => boolean,
    created: HourBucket[],
  ): Promise<boolean> {
    let next = 0;
    let failure: { error: unknown } | undefined;
    const worker = async () => {
      while (next < buckets.length && !failure) {
        if (outOfTime()) return;
        const bucket = buckets[next++];
        try {
          const zero = await this.ledger.addZeroBucket(bucket, now);
          if (zero) created.push(zero);
        } catch (error) {
          failure ??= { error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrentWrites, buckets.length) }, worker));
    if (failure) throw failure.error;
    // Every worker waits for its own write before it leaves: all were taken means all are done.
    return next >= buckets.length;
  }
}
