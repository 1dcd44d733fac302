import { MarketplaceLimits } from '../../../lambda/core/marketplace-limits';
import { utcHourKey, utcHourStart } from '../../../lambda/core/utc-hour';
import { newMeteringRecordId } from '../identifiers';
import { MarketplaceState, SimulatedCustomer } from '../state';
import { checkBatchMeterUsage, CheckedRequest, WireUsageRecord } from './batch-meter-usage-checks';

/**
 * AWSMPMeteringService.BatchMeterUsage: whole-request checks first, then one outcome per record:
 * Success (billed once per identity x dimension x UTC hour), CustomerNotSubscribed, DuplicateRecord,
 * or, when a fault asks for it, UnprocessedRecords.
 */
export function batchMeterUsage(
  state: MarketplaceState,
  input: Record<string, unknown>,
  requestBytes: number,
  unprocessedFraction = 0,
): { Results: unknown[]; UnprocessedRecords: unknown[] } {
  const request = checkBatchMeterUsage(state, input, requestBytes);
  if (!request) return { Results: [], UnprocessedRecords: [] };

  const unprocessed = pickUnprocessed(request.records.length, unprocessedFraction);
  const results = request.records.flatMap((record, i) =>
    unprocessed.has(i) ? [] : [{ UsageRecord: record, ...outcome(state, request, record, i) }],
  );
  if (state.config.resultOrder === 'shuffled') shuffle(results);
  return { Results: results, UnprocessedRecords: request.records.filter((_, i) => unprocessed.has(i)) };
}

function outcome(
  state: MarketplaceState,
  request: CheckedRequest,
  record: WireUsageRecord,
  index: number,
): { Status: string; MeteringRecordId?: string } {
  const customer =
    request.mode === 'license'
      ? request.licensees[index]
      : state.legacyCustomer(request.product.productCode, {
          customerIdentifier: record.CustomerIdentifier,
          customerAWSAccountId: record.CustomerAWSAccountId,
        });
  const timestamp = new Date(record.Timestamp * 1000);
  if (!customer || !isSubscribedFor(state, customer, timestamp)) return { Status: 'CustomerNotSubscribed' };

  const quantity = record.Quantity ?? 0;
  const deduplicationKey = [request.mode, customer.licenseId, record.Dimension, utcHourKey(timestamp)].join('|');
  const earlier = state.billedByKey.get(deduplicationKey);
  if (earlier) {
    return earlier.quantity === quantity
      ? { Status: 'Success', MeteringRecordId: earlier.meteringRecordId }
      : { Status: 'DuplicateRecord' };
  }
  const billed = {
    meteringRecordId: newMeteringRecordId(),
    productCode: request.product.productCode,
    licenseArn: record.LicenseArn,
    customerAWSAccountId: record.CustomerAWSAccountId,
    customerIdentifier: record.CustomerIdentifier,
    dimension: record.Dimension,
    hour: utcHourStart(timestamp),
    timestamp,
    quantity,
    allocations: record.UsageAllocations,
    billedAt: state.clock.now(),
    deduplicationKey,
  };
  state.billedRecords.push(billed);
  state.billedByKey.set(deduplicationKey, billed);
  return { Status: 'Success', MeteringRecordId: billed.meteringRecordId };
}

/**
 * Whether AWS would bill this customer for usage at `timestamp`: subscribed by then, and not
 * unsubscribed for longer than the final-usage hour (nor for an hour after the unsubscription).
 */
function isSubscribedFor(state: MarketplaceState, customer: SimulatedCustomer, timestamp: Date): boolean {
  if (customer.state === 'pending' || !customer.subscribedAt) return false;
  // Records sent for before the subscription began are not billed.
  if (timestamp < customer.subscribedAt) return false;
  // unsubscribe-pending: about an hour left to meter, then unsubscribe-success follows.
  if (customer.state === 'unsubscribe-pending' && customer.unsubscribePendingAt) {
    if (state.clock.now().getTime() > customer.unsubscribePendingAt.getTime() + MarketplaceLimits.finalUsageWindowSeconds * 1000) return false;
  }
  if (customer.state === 'unsubscribed' && customer.unsubscribedAt) {
    const windowClosed =
      state.clock.now().getTime() > customer.unsubscribedAt.getTime() + MarketplaceLimits.finalUsageWindowSeconds * 1000;
    if (windowClosed || utcHourStart(timestamp) > customer.unsubscribedAt) return false;
  }
  return true;
}

function pickUnprocessed(count: number, fraction: number): Set<number> {
  const indexes = Array.from({ length: count }, (_, i) => i);
  shuffle(indexes);
  return new Set(indexes.slice(0, Math.ceil(count * Math.min(Math.max(fraction, 0), 1))));
}

function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}
