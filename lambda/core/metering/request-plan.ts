import { IdentityMode } from '../customer';
import { MarketplaceLimits as Limits } from '../marketplace-limits';
import { MeteringRecord } from './hour-bucket';

/**
 * BatchMeterUsage requests for a set of records: one product and one identity mode per request, at
 * most 25 records, and a serialized size under 1 MB.
 */

export interface PlannedRecord {
  readonly bucketKey: string;
  readonly record: MeteringRecord;
}

export interface MeteringRequest {
  readonly productCode: string;
  readonly identityMode: IdentityMode;
  readonly records: readonly PlannedRecord[];
}

export interface PlanInput extends PlannedRecord {
  readonly productCode: string;
  readonly identityMode: IdentityMode;
}

/** The request's body as the SDK serializes it (AWS JSON 1.1; Timestamp as epoch seconds). */
export function wireBody(request: Pick<MeteringRequest, 'productCode' | 'identityMode' | 'records'>): string {
  return JSON.stringify({
    UsageRecords: request.records.map(({ record }) => ({ ...record, Timestamp: record.Timestamp.getTime() / 1000 })),
    ...(request.identityMode === 'legacy' ? { ProductCode: request.productCode } : {}),
  });
}

/** Room kept below 1 MB for what the SDK adds around the body we measure. */
const SIZE_MARGIN_BYTES = 1024;

export function planRequests(
  records: readonly PlanInput[],
  limits: { readonly maxRecords: number; readonly maxBytes: number } = { maxRecords: Limits.maxRecordsPerBatch, maxBytes: Limits.maxRequestBytes - SIZE_MARGIN_BYTES },
): MeteringRequest[] {
  const groups = new Map<string, PlanInput[]>();
  for (const r of records) {
    const key = JSON.stringify([r.productCode, r.identityMode]);
    // Pushed, not copied: a run can plan tens of thousands of records (zero-usage ones included).
    const group = groups.get(key);
    if (group) group.push(r);
    else groups.set(key, [r]);
  }
  const requests: MeteringRequest[] = [];
  for (const group of groups.values()) {
    const { productCode, identityMode } = group[0];
    const emptyBytes = Buffer.byteLength(wireBody({ productCode, identityMode, records: [] }));
    let chunk: PlannedRecord[] = [];
    let chunkBytes = emptyBytes;
    for (const { bucketKey, record } of group) {
      // Each record adds its own JSON and a comma.
      const recordBytes = Buffer.byteLength(wireBody({ productCode, identityMode, records: [{ bucketKey, record }] })) - emptyBytes + 1;
      if (chunk.length > 0 && (chunk.length >= limits.maxRecords || chunkBytes + recordBytes > limits.maxBytes)) {
        requests.push({ productCode, identityMode, records: chunk });
        chunk = [];
        chunkBytes = emptyBytes;
      }
      chunk.push({ bucketKey, record });
      chunkBytes += recordBytes;
    }
    if (chunk.length > 0) requests.push({ productCode, identityMode, records: chunk });
  }
  return requests;
}
