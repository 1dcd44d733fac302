import { createHash } from 'node:crypto';
import { FoldedBucket } from '../core/metering/fold';
import { HourBucket } from '../core/metering/hour-bucket';
import { MeteringTableSchema as Schema } from '../core/metering-table-schema';

/** Hour bucket items of the Metering ledger table, shared by the ledger and the usage journal adapters. */

export const BUCKET = 'bucket#';
export const ALLOCATION = 'alloc#';

export function shardOf(bucketKey: string): number {
  return createHash('sha1').update(bucketKey).digest()[0] % Schema.workShards;
}

export function bucketItemKey(bucketKey: string): Record<string, string> {
  return { [Schema.partitionKey]: `${BUCKET}${bucketKey}` };
}

/** A folded bucket as a sealed ledger item: in the work index, waiting to be metered. */
export function sealedBucketItem(bucket: FoldedBucket, at: Date): Record<string, unknown> {
  const { allocations, ...fields } = bucket;
  const item: Record<string, unknown> = {
    ...bucketItemKey(bucket.bucketKey),
    ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)),
    status: 'sealed',
    meteringState: `sealed#${shardOf(bucket.bucketKey)}`,
    sealedAt: at.toISOString(),
  };
  for (const [tagSet, quantity] of Object.entries(allocations)) item[`${ALLOCATION}${tagSet}`] = quantity;
  return item;
}

/** A ledger item as the domain's HourBucket. */
export function toBucket(item: Record<string, unknown>): HourBucket {
  const allocations: Record<string, number> = {};
  for (const [name, value] of Object.entries(item)) {
    if (name.startsWith(ALLOCATION)) allocations[name.slice(ALLOCATION.length)] = Number(value);
  }
  return {
    bucketKey: String(item.bucketKey),
    customerKey: String(item.customerKey),
    productCode: String(item.productCode),
    identityMode: item.identityMode === 'legacy' ? 'legacy' : 'license',
    customerAWSAccountId: String(item.customerAWSAccountId),
    licenseArn: item.licenseArn as string | undefined,
    customerIdentifier: item.customerIdentifier as string | undefined,
    dimension: String(item.dimension),
    hourStart: String(item.hourStart),
    quantity: Number(item.quantity ?? 0),
    allocations,
    status: item.status as HourBucket['status'],
    attempts: Number(item.attempts ?? 0),
    sealedAt: item.sealedAt as string | undefined,
    meteringRecordId: item.meteringRecordId as string | undefined,
    lastOutcome: item.outcome as string | undefined,
  };
}
