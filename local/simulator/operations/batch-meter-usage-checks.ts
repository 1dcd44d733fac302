import {
  AWS_ACCOUNT_ID,
  LICENSE_ARN,
  MarketplaceLimits as Limits,
  TAG_CHARACTERS,
} from '../../../lambda/core/marketplace-limits';
import { FUTURE_SKEW_SECONDS, windowSeconds } from '../config';
import { MarketplaceApiError } from '../errors';
import { MarketplaceState, SimulatedCustomer, SimulatedProduct } from '../state';

/**
 * The whole-request checks of BatchMeterUsage, in the order AWS applies them (README, "BatchMeterUsage").
 * The first failing check rejects the request; none of its records is billed.
 */

export interface WireTag {
  Key: string;
  Value: string;
}
export interface WireAllocation {
  AllocatedUsageQuantity: number;
  Tags?: WireTag[];
}
export interface WireUsageRecord {
  Timestamp: number;
  Dimension: string;
  Quantity?: number;
  CustomerIdentifier?: string;
  CustomerAWSAccountId?: string;
  LicenseArn?: string;
  UsageAllocations?: WireAllocation[];
}

/** A request that passed every check, with what the checks found out. */
export interface CheckedRequest {
  readonly mode: 'license' | 'legacy';
  readonly product: SimulatedProduct;
  readonly records: readonly WireUsageRecord[];
  /** License mode: each record's customer, by index. */
  readonly licensees: readonly (SimulatedCustomer | undefined)[];
}

const fail = (type: string, message: string): never => {
  throw new MarketplaceApiError(type, message);
};
const invalid = (message: string) => fail('ValidationException', message);

/** Returns null for a valid request with no records (nothing to do). */
export function checkBatchMeterUsage(
  state: MarketplaceState,
  input: Record<string, unknown>,
  requestBytes: number,
): CheckedRequest | null {
  // 1. Size.
  if (requestBytes >= Limits.maxRequestBytes) {
    invalid(`Request size ${requestBytes} bytes: it must be less than ${Limits.maxRequestBytes} bytes`);
  }
  // 2. Record count.
  const records = input.UsageRecords;
  if (!Array.isArray(records)) invalid('UsageRecords is required and must be a list');
  const list = records as unknown[];
  if (list.length > Limits.maxRecordsPerBatch) {
    invalid(`UsageRecords has ${list.length} records: at most ${Limits.maxRecordsPerBatch} are accepted`);
  }
  // 3. Field ranges and patterns.
  const productCode = input.ProductCode;
  if (productCode !== undefined) checkIdentifier(productCode, 'ProductCode');
  list.forEach(checkRecordFields);
  const usageRecords = list as WireUsageRecord[];

  // 4. Identity mode.
  const mode = productCode === undefined ? 'license' : 'legacy';
  checkIdentityMode(mode, usageRecords);
  if (usageRecords.length === 0) return null;

  // 5. Product.
  const { product, licensees } =
    mode === 'legacy' ? legacyProduct(state, productCode as string) : licensedProduct(state, usageRecords);

  // 6. Dimensions.
  usageRecords.forEach((r, i) => {
    if (!product.dimensions.includes(r.Dimension)) {
      fail('InvalidUsageDimensionException', `UsageRecords[${i}].Dimension "${r.Dimension}" is not a dimension of product ${product.productCode}`);
    }
  });
  // 7. Tags. 8. Allocation sums.
  usageRecords.forEach(checkTags);
  usageRecords.forEach(checkAllocationSum);
  // 9. Licences.
  if (mode === 'license') checkLicences(usageRecords, licensees);
  // 10. Time window.
  usageRecords.forEach((r, i) => checkTimestamp(state, r.Timestamp, i));

  return { mode, product, records: usageRecords, licensees };
}

function checkIdentifier(value: unknown, field: string): void {
  if (typeof value !== 'string' || value.length < 1 || value.length > Limits.maxIdentifierLength) {
    invalid(`${field} must be a string of 1 to ${Limits.maxIdentifierLength} characters`);
  }
}

function checkQuantity(value: unknown, field: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > Limits.maxQuantity) {
    invalid(`${field} must be an integer from 0 to ${Limits.maxQuantity}`);
  }
}

function checkRecordFields(record: unknown, i: number): void {
  const at = `UsageRecords[${i}]`;
  if (typeof record !== 'object' || record === null || Array.isArray(record)) invalid(`${at} must be a structure`);
  const r = record as Record<string, unknown>;
  if (typeof r.Timestamp !== 'number' || !Number.isFinite(r.Timestamp)) {
    invalid(`${at}.Timestamp is required (epoch seconds)`);
  }
  checkIdentifier(r.Dimension, `${at}.Dimension`);
  if (r.Quantity !== undefined) checkQuantity(r.Quantity, `${at}.Quantity`);
  if (r.CustomerIdentifier !== undefined) checkIdentifier(r.CustomerIdentifier, `${at}.CustomerIdentifier`);
  if (r.CustomerAWSAccountId !== undefined && (typeof r.CustomerAWSAccountId !== 'string' || !AWS_ACCOUNT_ID.test(r.CustomerAWSAccountId))) {
    invalid(`${at}.CustomerAWSAccountId must be a 12-digit AWS account id`);
  }
  if (r.LicenseArn !== undefined) {
    checkIdentifier(r.LicenseArn, `${at}.LicenseArn`);
    if (!LICENSE_ARN.test(r.LicenseArn as string)) invalid(`${at}.LicenseArn is not a licence ARN`);
  }
  if (r.UsageAllocations !== undefined) {
    const allocations = r.UsageAllocations;
    if (!Array.isArray(allocations) || allocations.length < 1 || allocations.length > Limits.maxAllocationsPerRecord) {
      invalid(`${at}.UsageAllocations must be a list of 1 to ${Limits.maxAllocationsPerRecord} allocations`);
    }
    (allocations as unknown[]).forEach((a, j) => {
      const allocation = (a ?? {}) as Record<string, unknown>;
      checkQuantity(allocation.AllocatedUsageQuantity, `${at}.UsageAllocations[${j}].AllocatedUsageQuantity`);
      const tags = allocation.Tags;
      if (tags !== undefined && (!Array.isArray(tags) || tags.some((t) => typeof t?.Key !== 'string' || typeof t?.Value !== 'string'))) {
        invalid(`${at}.UsageAllocations[${j}].Tags must be a list of {Key, Value} strings`);
      }
    });
  }
}

function checkIdentityMode(mode: 'license' | 'legacy', records: WireUsageRecord[]): void {
  records.forEach((r, i) => {
    const at = `UsageRecords[${i}]`;
    if (mode === 'legacy') {
      if (r.LicenseArn !== undefined) {
        invalid(`${at} has a LicenseArn in a request with a ProductCode: do not mix identity modes (license-based records carry no ProductCode)`);
      }
      if ((r.CustomerIdentifier === undefined) === (r.CustomerAWSAccountId === undefined)) {
        fail('InvalidCustomerIdentifierException', `${at} must have exactly one of CustomerIdentifier and CustomerAWSAccountId`);
      }
    } else {
      if (r.LicenseArn === undefined) {
        invalid(`${at} has no LicenseArn: without a request ProductCode every record needs LicenseArn and CustomerAWSAccountId`);
      }
      if (r.CustomerIdentifier !== undefined || r.CustomerAWSAccountId === undefined) {
        fail('InvalidCustomerIdentifierException', `${at}: license-based records carry CustomerAWSAccountId and no CustomerIdentifier`);
      }
    }
  });
}

function legacyProduct(state: MarketplaceState, productCode: string) {
  const product = state.products.get(productCode);
  if (!product) return fail('InvalidProductCodeException', `Product code ${productCode} is not valid`);
  if (product.identityMode !== 'legacy') {
    fail('InvalidProductCodeException', `Product ${productCode} uses Concurrent Agreements: meter it with CustomerAWSAccountId and LicenseArn, without ProductCode`);
  }
  return { product, licensees: [] };
}

function licensedProduct(state: MarketplaceState, records: WireUsageRecord[]) {
  const licensees = records.map((r, i) => {
    const customer = state.customerByLicenseArn(r.LicenseArn!);
    if (!customer) fail('InvalidLicenseException', `UsageRecords[${i}].LicenseArn is not a licence of this seller`);
    return customer as SimulatedCustomer;
  });
  const codes = new Set(licensees.map((c) => c.productCode));
  if (codes.size > 1) fail('InvalidLicenseException', 'The licences belong to more than one product: one product per request');
  const product = state.products.get(licensees[0].productCode);
  if (!product) return fail('InvalidLicenseException', 'The licence is for a product that no longer exists');
  if (product.identityMode !== 'license') {
    fail('InvalidLicenseException', `Product ${product.productCode} is not enabled for Concurrent Agreements: meter it with ProductCode`);
  }
  return { product, licensees };
}

function checkTags(record: WireUsageRecord, i: number): void {
  const seenTagSets = new Set<string>();
  let untagged = 0;
  (record.UsageAllocations ?? []).forEach((allocation, j) => {
    const at = `UsageRecords[${i}].UsageAllocations[${j}].Tags`;
    const tags = allocation.Tags;
    // Each allocation has a tag set of its own, "no tags" included: one untagged bucket at most.
    if (tags === undefined) {
      if (++untagged > 1) fail('InvalidTagException', `${at}: two allocations have no tags (the same tag set)`);
      return;
    }
    if (tags.length < 1 || tags.length > Limits.maxTagsPerAllocation) {
      fail('InvalidTagException', `${at} must hold 1 to ${Limits.maxTagsPerAllocation} tags`);
    }
    for (const { Key, Value } of tags) {
      if (Key.length < 1 || Key.length > Limits.maxTagKeyLength || !TAG_CHARACTERS.test(Key)) {
        fail('InvalidTagException', `${at}: tag key "${Key}" must be 1 to ${Limits.maxTagKeyLength} characters of [A-Za-z0-9+ -=._:/@]`);
      }
      if (Value.length < 1 || Value.length > Limits.maxTagValueLength || !TAG_CHARACTERS.test(Value)) {
        fail('InvalidTagException', `${at}: the value of tag "${Key}" must be 1 to ${Limits.maxTagValueLength} characters of [A-Za-z0-9+ -=._:/@]`);
      }
    }
    if (new Set(tags.map((t) => t.Key)).size !== tags.length) fail('InvalidTagException', `${at} repeats a tag key`);
    const tagSet = JSON.stringify(tags.map((t) => [t.Key, t.Value]).sort());
    if (seenTagSets.has(tagSet)) fail('InvalidTagException', `${at}: two allocations have the same tag set`);
    seenTagSets.add(tagSet);
  });
}

function checkAllocationSum(record: WireUsageRecord, i: number): void {
  if (!record.UsageAllocations) return;
  const sum = record.UsageAllocations.reduce((total, a) => total + a.AllocatedUsageQuantity, 0);
  const quantity = record.Quantity ?? 0;
  if (sum !== quantity) {
    fail('InvalidUsageAllocationsException', `UsageRecords[${i}]: allocations sum to ${sum}, the Quantity is ${quantity}`);
  }
}

function checkLicences(records: WireUsageRecord[], licensees: readonly (SimulatedCustomer | undefined)[]): void {
  records.forEach((r, i) => {
    const customer = licensees[i]!;
    if (customer.customerAWSAccountId !== r.CustomerAWSAccountId) {
      fail('InvalidLicenseException', `UsageRecords[${i}]: the licence does not belong to account ${r.CustomerAWSAccountId}`);
    }
    // To the instant, not the hour: AWS refuses usage stamped outside the licence's active period.
    if (customer.subscribedAt && new Date(r.Timestamp * 1000) < customer.subscribedAt) {
      fail('InvalidLicenseException', `UsageRecords[${i}].Timestamp is before the licence became active`);
    }
  });
}

function checkTimestamp(state: MarketplaceState, timestamp: number, i: number): void {
  const now = state.clock.now();
  const time = new Date(timestamp * 1000);
  const ageSeconds = (now.getTime() - time.getTime()) / 1000;
  const at = `UsageRecords[${i}].Timestamp ${time.toISOString()}`;
  if (ageSeconds < -FUTURE_SKEW_SECONDS) fail('TimestampOutOfBoundsException', `${at} is in the future`);
  // 24 h: "up to 24 hours" old is accepted; the older 6 h rule: "6 hours or more" is not.
  const window = windowSeconds(state.config);
  if (state.config.timestampWindow === '6h' ? ageSeconds >= window : ageSeconds > window) {
    fail('TimestampOutOfBoundsException', `${at} is older than ${state.config.timestampWindow}`);
  }
  const monthsBack = (now.getUTCFullYear() - time.getUTCFullYear()) * 12 + now.getUTCMonth() - time.getUTCMonth();
  const cutoff = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1, Limits.previousMonthCutoffHourUtc);
  if (monthsBack > 0 && now.getTime() >= cutoff) {
    fail('TimestampOutOfBoundsException', `${at} is in a billing month that closed at 06:00 UTC on the 1st`);
  }
}
