/**
 * BatchMeterUsage whole-request validation: the 10 ordered checks of the README, table-driven.
 *
 * Every rejection case asserts the error (typed class where the SDK models it, `error.name` for the
 * unmodelled ValidationException), HTTP 400, and that nothing at all was billed. The "order" cases
 * combine two violations and expect the error of the earlier check. The accepted cases prove the
 * boundaries from the other side.
 */
import {
  BatchMeterUsageCommand,
  InvalidCustomerIdentifierException,
  InvalidLicenseException,
  InvalidProductCodeException,
  InvalidTagException,
  InvalidUsageAllocationsException,
  InvalidUsageDimensionException,
  MarketplaceMeteringServiceException,
  TimestampOutOfBoundsException,
  type BatchMeterUsageCommandInput,
  type Tag,
  type UsageAllocation,
  type UsageRecord,
} from '@aws-sdk/client-marketplace-metering';
import type { SimulatorConfig } from '../../../local/simulator';
import {
  EARLY,
  T0,
  TARGET,
  at,
  epochSeconds,
  licenseRecord,
  legacyRecord,
  minutesAfter,
  minutesBefore,
  rawCall,
  rejectionOf,
  resultFor,
  seedWorld,
  useSimulator,
  type Customer,
  type MeteringRecord,
  type World,
} from './helpers';

const MODELLED: Record<string, Function> = {
  InvalidCustomerIdentifierException,
  InvalidLicenseException,
  InvalidProductCodeException,
  InvalidTagException,
  InvalidUsageAllocationsException,
  InvalidUsageDimensionException,
  TimestampOutOfBoundsException,
};

const TS = at('2026-11-02T10:05:00Z');
const OLD = at('2026-10-31T10:05:00Z'); // two days before T0: outside every window
const LONG_DIMENSION = 'd'.repeat(255);
const INT_MAX = 2147483647;

interface ValidationWorld extends World {
  /** Subscribed at T0 (10:20): its licence started in the middle of the 10:00 hour. */
  erin: Customer;
  /** Customer of a product whose only dimension is 255 characters long. */
  longDimCustomer: Customer;
}

async function seedValidationWorld(ctx: ReturnType<typeof useSimulator>): Promise<ValidationWorld> {
  const world = await seedWorld(ctx.admin);
  const longDim = await ctx.admin.createProduct({ productCode: 'prod-long-dim', dimensions: [LONG_DIMENSION], identityMode: 'license' });
  const longDimCustomer = await ctx.admin.createCustomerAt(EARLY, { productCode: longDim.productCode, customerAWSAccountId: '555555555555' });
  const erin = await ctx.admin.createCustomer({ productCode: world.lic.productCode, customerAWSAccountId: '666666666666' });
  return { ...world, erin, longDimCustomer };
}

// ---------------------------------------------------------------------------------------------
// Record builders
// ---------------------------------------------------------------------------------------------

const tags = (...pairs: [string, string][]): Tag[] => pairs.map(([Key, Value]) => ({ Key, Value }));
const allocation = (quantity: number, tagList: Tag[] = tags(['team', 'a'])): UsageAllocation => ({ AllocatedUsageQuantity: quantity, Tags: tagList });

/** `count` allocations of quantity 1, five tags each, values of `valueLength` characters, all tag sets distinct. */
function bigAllocations(count: number, valueLength = 200): UsageAllocation[] {
  const pad = (prefix: string) => (prefix + '-').padEnd(valueLength, 'a');
  return Array.from({ length: count }, (_, i) =>
    allocation(1, tags(['k1', pad(`v${i}`)], ['k2', pad('b')], ['k3', pad('c')], ['k4', pad('d')], ['k5', pad('e')])),
  );
}

/** `count` distinct, otherwise valid records for one customer: 3 dimensions x consecutive hours before TS. */
function manyRecords(customer: Customer, count: number, overrides: Partial<UsageRecord> = {}): UsageRecord[] {
  const dimensions = ['requests', 'storage', 'users'];
  return Array.from({ length: count }, (_, i) =>
    licenseRecord(customer, { Dimension: dimensions[i % 3], Timestamp: minutesBefore(TS, 60 * Math.floor(i / 3)), Quantity: i, ...overrides }),
  );
}

const license = (...records: UsageRecord[]): BatchMeterUsageCommandInput => ({ UsageRecords: records });
const legacy = (productCode: string, ...records: UsageRecord[]): BatchMeterUsageCommandInput => ({ ProductCode: productCode, UsageRecords: records });

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

interface RejectCase {
  name: string;
  /** Errors that satisfy the contract (more than one only where the README is ambiguous). */
  expected: string | string[];
  request?: (w: ValidationWorld) => BatchMeterUsageCommandInput;
  /** A raw JSON body for what the SDK types cannot express. */
  raw?: (w: ValidationWorld) => unknown;
  clock?: Date;
  config?: Partial<SimulatorConfig>;
}

const V = 'ValidationException';

const rejectCases: Record<string, RejectCase[]> = {
  '1. serialized request under 1 MB': [
    { name: 'a request over 1 MB (1,000 allocations with five 200-character tags)', expected: V, request: (w) => license(licenseRecord(w.alice, { Quantity: 1000, UsageAllocations: bigAllocations(1000) })) },
  ],
  '2. at most 25 UsageRecords, as a list': [
    { name: '26 records', expected: V, request: (w) => license(...manyRecords(w.alice, 26)) },
    { name: 'UsageRecords that is not a list', expected: V, raw: () => ({ UsageRecords: 'not-a-list' }) },
    { name: 'UsageRecords missing', expected: V, raw: () => ({}) },
  ],
  '3. field shapes': [
    { name: 'Timestamp a string', expected: V, raw: (w) => ({ UsageRecords: [{ Timestamp: '2026-11-02T10:05:00Z', Dimension: 'requests', Quantity: 1, CustomerAWSAccountId: w.alice.customerAWSAccountId, LicenseArn: w.alice.licenseArn }] }) },
    { name: 'Timestamp missing', expected: V, raw: (w) => ({ UsageRecords: [{ Dimension: 'requests', Quantity: 1, CustomerAWSAccountId: w.alice.customerAWSAccountId, LicenseArn: w.alice.licenseArn }] }) },
    { name: 'Dimension empty', expected: V, request: (w) => license(licenseRecord(w.alice, { Dimension: '' })) },
    { name: 'Dimension of 256 characters', expected: V, request: (w) => license(licenseRecord(w.alice, { Dimension: 'd'.repeat(256) })) },
    { name: 'Quantity -1', expected: V, request: (w) => license(licenseRecord(w.alice, { Quantity: -1 })) },
    { name: 'Quantity 2147483648', expected: V, request: (w) => license(licenseRecord(w.alice, { Quantity: INT_MAX + 1 })) },
    { name: 'Quantity 1.5', expected: V, request: (w) => license(licenseRecord(w.alice, { Quantity: 1.5 })) },
    { name: 'CustomerIdentifier empty (legacy)', expected: V, request: (w) => legacy(w.legacy.productCode, legacyRecord(w.carol, { CustomerIdentifier: '' })) },
    { name: 'CustomerIdentifier of 256 characters (legacy)', expected: V, request: (w) => legacy(w.legacy.productCode, legacyRecord(w.carol, { CustomerIdentifier: 'c'.repeat(256) })) },
    { name: 'ProductCode empty', expected: V, request: (w) => legacy('', legacyRecord(w.carol)) },
    { name: 'ProductCode of 256 characters', expected: V, request: (w) => legacy('p'.repeat(256), legacyRecord(w.carol)) },
    { name: 'CustomerAWSAccountId of 11 digits', expected: V, request: (w) => license(licenseRecord(w.alice, { CustomerAWSAccountId: '11111111111' })) },
    { name: 'CustomerAWSAccountId of 13 digits', expected: V, request: (w) => license(licenseRecord(w.alice, { CustomerAWSAccountId: '1111111111111' })) },
    { name: 'CustomerAWSAccountId with a letter', expected: V, request: (w) => license(licenseRecord(w.alice, { CustomerAWSAccountId: '11111111111a' })) },
    { name: 'CustomerAWSAccountId empty', expected: V, request: (w) => license(licenseRecord(w.alice, { CustomerAWSAccountId: '' })) },
    { name: 'LicenseArn that is not an ARN', expected: V, request: (w) => license(licenseRecord(w.alice, { LicenseArn: 'not-an-arn' })) },
    { name: 'LicenseArn that is an ARN of something else', expected: V, request: (w) => license(licenseRecord(w.alice, { LicenseArn: 'arn:aws:s3:::my-bucket' })) },
    { name: 'LicenseArn empty', expected: V, request: (w) => license(licenseRecord(w.alice, { LicenseArn: '' })) },
    { name: 'UsageAllocations empty', expected: V, request: (w) => license(licenseRecord(w.alice, { Quantity: 0, UsageAllocations: [] })) },
    {
      name: 'UsageAllocations of 2,501',
      expected: V,
      request: (w) => license(licenseRecord(w.alice, { Quantity: 0, UsageAllocations: Array.from({ length: 2501 }, (_, i) => allocation(0, tags(['k', `v${i}`]))) })),
    },
    { name: 'AllocatedUsageQuantity -1', expected: V, request: (w) => license(licenseRecord(w.alice, { Quantity: 0, UsageAllocations: [allocation(1, tags(['a', '1'])), allocation(-1, tags(['a', '2']))] })) },
    { name: 'AllocatedUsageQuantity 1.5', expected: V, request: (w) => license(licenseRecord(w.alice, { Quantity: 3, UsageAllocations: [allocation(1.5, tags(['a', '1'])), allocation(1.5, tags(['a', '2']))] })) },
    { name: 'AllocatedUsageQuantity 2147483648', expected: V, request: (w) => license(licenseRecord(w.alice, { Quantity: INT_MAX, UsageAllocations: [allocation(INT_MAX + 1, tags(['a', '1']))] })) },
  ],
  '4. identity mode': [
    { name: 'legacy record with both CustomerIdentifier and CustomerAWSAccountId', expected: 'InvalidCustomerIdentifierException', request: (w) => legacy(w.legacy.productCode, legacyRecord(w.carol, { CustomerAWSAccountId: w.carol.customerAWSAccountId })) },
    { name: 'legacy record with neither CustomerIdentifier nor CustomerAWSAccountId', expected: 'InvalidCustomerIdentifierException', request: (w) => legacy(w.legacy.productCode, legacyRecord(w.carol, { CustomerIdentifier: undefined })) },
    { name: 'licence-mode record without CustomerAWSAccountId', expected: 'InvalidCustomerIdentifierException', request: (w) => license(licenseRecord(w.alice, { CustomerAWSAccountId: undefined })) },
    // Ambiguous in the README: with no ProductCode, is a record without LicenseArn "mixing modes" or "identity fields"?
    { name: 'licence-mode record without LicenseArn, no ProductCode (ambiguous error)', expected: [V, 'InvalidCustomerIdentifierException'], request: (w) => license(licenseRecord(w.alice, { LicenseArn: undefined })) },
    { name: 'mixing modes: ProductCode and a record with LicenseArn', expected: V, request: (w) => legacy(w.legacy.productCode, legacyRecord(w.carol, { LicenseArn: w.carol.licenseArn })) },
    { name: 'mixing modes: ProductCode, one legacy record and one licence record', expected: V, request: (w) => legacy(w.legacy.productCode, legacyRecord(w.carol), licenseRecord(w.alice)) },
    // Ambiguous in the README: "mixing modes" (ValidationException) or "identity fields" (InvalidCustomerIdentifierException).
    { name: 'no ProductCode, one licence record and one CustomerIdentifier-only record (ambiguous error)', expected: [V, 'InvalidCustomerIdentifierException'], request: (w) => license(licenseRecord(w.alice), legacyRecord(w.carol)) },
    { name: 'licence-mode record that also carries CustomerIdentifier (ambiguous error)', expected: [V, 'InvalidCustomerIdentifierException'], request: (w) => license(licenseRecord(w.alice, { CustomerIdentifier: w.carol.customerIdentifier })) },
  ],
  '5. product exists and takes this identity mode': [
    { name: 'unknown ProductCode (legacy)', expected: 'InvalidProductCodeException', request: (w) => legacy('no-such-product', legacyRecord(w.carol)) },
    { name: 'unknown licence', expected: 'InvalidLicenseException', request: (w) => license(licenseRecord(w.alice, { LicenseArn: 'arn:aws:license-manager::123456789012:license:l-0123456789abcdef' })) },
    { name: 'legacy call (ProductCode) for a licence-mode product', expected: 'InvalidProductCodeException', request: (w) => legacy(w.lic.productCode, legacyRecord(w.carol, { CustomerIdentifier: undefined, CustomerAWSAccountId: w.alice.customerAWSAccountId })) },
    // The README lists both errors for check 5 without saying which one these two cases get.
    { name: 'licences of two different products in one call (either error)', expected: ['InvalidLicenseException', 'InvalidProductCodeException'], request: (w) => license(licenseRecord(w.alice), licenseRecord(w.dave, { Dimension: 'other-dim' })) },
    { name: 'licence-mode call with the licence of a legacy product (either error)', expected: ['InvalidLicenseException', 'InvalidProductCodeException'], request: (w) => license(licenseRecord(w.carol)) },
  ],
  '6. dimension is one of the product\'s': [
    { name: 'unknown dimension (licence mode)', expected: 'InvalidUsageDimensionException', request: (w) => license(licenseRecord(w.alice, { Dimension: 'nope' })) },
    { name: 'dimension of another product (legacy mode)', expected: 'InvalidUsageDimensionException', request: (w) => legacy(w.legacy.productCode, legacyRecord(w.carol, { Dimension: 'storage' })) },
    { name: 'one unknown dimension among valid records', expected: 'InvalidUsageDimensionException', request: (w) => license(...manyRecords(w.alice, 5), licenseRecord(w.bob, { Dimension: 'unknown-dim' })) },
    { name: 'a well-formed 255-character dimension the product does not have', expected: 'InvalidUsageDimensionException', request: (w) => license(licenseRecord(w.alice, { Dimension: LONG_DIMENSION })) },
  ],
  '7. tags': [
    { name: 'an allocation with no tags', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Quantity: 1, UsageAllocations: [allocation(1, [])] })) },
    { name: 'six tags', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Quantity: 1, UsageAllocations: [allocation(1, tags(['a', '1'], ['b', '1'], ['c', '1'], ['d', '1'], ['e', '1'], ['f', '1']))] })) },
    { name: 'empty key', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Quantity: 1, UsageAllocations: [allocation(1, tags(['', 'v']))] })) },
    { name: 'key of 101 characters', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Quantity: 1, UsageAllocations: [allocation(1, tags(['k'.repeat(101), 'v']))] })) },
    { name: 'empty value', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Quantity: 1, UsageAllocations: [allocation(1, tags(['k', '']))] })) },
    { name: 'value of 257 characters', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Quantity: 1, UsageAllocations: [allocation(1, tags(['k', 'v'.repeat(257)]))] })) },
    { name: 'key with "?"', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Quantity: 1, UsageAllocations: [allocation(1, tags(['what?', 'v']))] })) },
    { name: 'value with "é"', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Quantity: 1, UsageAllocations: [allocation(1, tags(['k', 'café']))] })) },
    { name: 'value with "~"', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Quantity: 1, UsageAllocations: [allocation(1, tags(['k', 'a~b']))] })) },
    // '#', ',' and '!' lie between ' ' and '=': refused only if "+ -=" in the README's class is the literal list
    // (marketplace-facts.md writes it escaped, "+ \-="), not a range.
    { name: 'value with "#"', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Quantity: 1, UsageAllocations: [allocation(1, tags(['k', 'a#b']))] })) },
    { name: 'key with ","', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Quantity: 1, UsageAllocations: [allocation(1, tags(['a,b', 'v']))] })) },
    { name: 'value with "!"', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Quantity: 1, UsageAllocations: [allocation(1, tags(['k', 'hi!']))] })) },
    { name: 'a repeated key in one allocation', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Quantity: 1, UsageAllocations: [allocation(1, tags(['team', 'a'], ['team', 'b']))] })) },
    {
      name: 'two allocations with the same tag set (in another order)',
      expected: 'InvalidTagException',
      request: (w) => license(licenseRecord(w.alice, { Quantity: 2, UsageAllocations: [allocation(1, tags(['team', 'a'], ['env', 'prod'])), allocation(1, tags(['env', 'prod'], ['team', 'a']))] })),
    },
  ],
  '8. allocations sum to Quantity': [
    { name: 'allocations summing to 7 for a Quantity of 10', expected: 'InvalidUsageAllocationsException', request: (w) => license(licenseRecord(w.alice, { Quantity: 10, UsageAllocations: [allocation(3, tags(['t', 'a'])), allocation(4, tags(['t', 'b']))] })) },
    { name: 'Quantity omitted (0) with allocations summing to 5', expected: 'InvalidUsageAllocationsException', request: (w) => license(licenseRecord(w.alice, { Quantity: undefined, UsageAllocations: [allocation(5)] })) },
  ],
  '9. licence belongs to the account and had started': [
    { name: 'licence of another account', expected: 'InvalidLicenseException', request: (w) => license(licenseRecord(w.alice, { CustomerAWSAccountId: w.bob.customerAWSAccountId })) },
    { name: 'record hour ending before the licence started (licence 10:20, record 09:59:59)', expected: 'InvalidLicenseException', request: (w) => license(licenseRecord(w.erin, { Timestamp: at('2026-11-02T09:59:59Z') })) },
    { name: 'record in the hour the licence started, before it did (licence 10:20, record 10:00:00)', expected: 'InvalidLicenseException', request: (w) => license(licenseRecord(w.erin, { Timestamp: at('2026-11-02T10:00:00Z') })) },
  ],
  '10. timestamp window': [
    { name: '24 h + 1 min old', expected: 'TimestampOutOfBoundsException', request: (w) => license(licenseRecord(w.alice, { Timestamp: minutesBefore(T0, 24 * 60 + 1) })) },
    { name: '6 minutes in the future', expected: 'TimestampOutOfBoundsException', request: (w) => license(licenseRecord(w.alice, { Timestamp: minutesAfter(T0, 6) })) },
    { name: 'a single out-of-window record among 25 rejects the whole request', expected: 'TimestampOutOfBoundsException', request: (w) => license(...manyRecords(w.alice, 24), licenseRecord(w.bob, { Timestamp: OLD })) },
    { name: 'legacy mode, 25 h old', expected: 'TimestampOutOfBoundsException', request: (w) => legacy(w.legacy.productCode, legacyRecord(w.carol, { Timestamp: minutesBefore(T0, 25 * 60) })) },
    { name: 'option 6h: 6 h + 1 min old', expected: 'TimestampOutOfBoundsException', config: { timestampWindow: '6h' }, request: (w) => license(licenseRecord(w.alice, { Timestamp: minutesBefore(T0, 6 * 60 + 1) })) },
    { name: 'month rule: at 2026-12-01T06:30Z a record of 2026-11-30T23:00Z', expected: 'TimestampOutOfBoundsException', clock: at('2026-12-01T06:30:00Z'), request: (w) => license(licenseRecord(w.alice, { Timestamp: at('2026-11-30T23:00:00Z') })) },
  ],
  'order: the earlier check wins when two fail': [
    { name: '1 before 5, 6 and 10: over 1 MB with an unknown licence, dimension and old timestamp', expected: V, request: (w) => license(licenseRecord(w.alice, { LicenseArn: 'arn:aws:license-manager::123456789012:license:l-00000000000000000000000000000000', Dimension: 'nope', Timestamp: OLD, Quantity: 1000, UsageAllocations: bigAllocations(1000) })) },
    { name: '2 before 6: 26 records with an unknown dimension', expected: V, request: (w) => license(...manyRecords(w.alice, 26, { Dimension: 'nope' })) },
    { name: '2 before 10: 26 records with old timestamps', expected: V, request: (w) => license(...manyRecords(w.alice, 26).map((r, i) => ({ ...r, Timestamp: minutesBefore(OLD, i) }))) },
    { name: '3 before 4: Quantity -1 on a record carrying both CustomerIdentifier and account id', expected: V, request: (w) => legacy(w.legacy.productCode, legacyRecord(w.carol, { CustomerAWSAccountId: w.carol.customerAWSAccountId, Quantity: -1 })) },
    { name: '3 before 5: 11-digit account id with an unknown licence', expected: V, request: (w) => license(licenseRecord(w.alice, { CustomerAWSAccountId: '12345678901', LicenseArn: 'arn:aws:license-manager::123456789012:license:l-0123456789abcdef' })) },
    { name: '3 before 6 and 10: Quantity 1.5 with an unknown dimension and old timestamp', expected: V, request: (w) => license(licenseRecord(w.alice, { Quantity: 1.5, Dimension: 'nope', Timestamp: OLD })) },
    { name: '4 before 5: unknown ProductCode and a record with both identifiers', expected: 'InvalidCustomerIdentifierException', request: (w) => legacy('no-such-product', legacyRecord(w.carol, { CustomerAWSAccountId: w.carol.customerAWSAccountId })) },
    { name: '4 before 6: mixed modes and an unknown dimension', expected: V, request: (w) => legacy(w.legacy.productCode, legacyRecord(w.carol, { LicenseArn: w.carol.licenseArn, Dimension: 'nope' })) },
    { name: '5 before 6: unknown ProductCode and unknown dimension', expected: 'InvalidProductCodeException', request: (w) => legacy('no-such-product', legacyRecord(w.carol, { Dimension: 'nope' })) },
    { name: '5 before 6: unknown licence and unknown dimension', expected: 'InvalidLicenseException', request: (w) => license(licenseRecord(w.alice, { LicenseArn: 'arn:aws:license-manager::123456789012:license:l-0123456789abcdef', Dimension: 'nope' })) },
    { name: '6 before 7: unknown dimension and six tags', expected: 'InvalidUsageDimensionException', request: (w) => license(licenseRecord(w.alice, { Dimension: 'nope', UsageAllocations: [allocation(1, tags(['a', '1'], ['b', '1'], ['c', '1'], ['d', '1'], ['e', '1'], ['f', '1']))] })) },
    { name: '6 before 9: unknown dimension and licence of another account', expected: 'InvalidUsageDimensionException', request: (w) => license(licenseRecord(w.alice, { Dimension: 'nope', CustomerAWSAccountId: w.bob.customerAWSAccountId })) },
    { name: '6 before 10: unknown dimension and old timestamp', expected: 'InvalidUsageDimensionException', request: (w) => license(licenseRecord(w.alice, { Dimension: 'nope', Timestamp: OLD })) },
    { name: '7 before 8: six tags and a wrong sum', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Quantity: 9, UsageAllocations: [allocation(1, tags(['a', '1'], ['b', '1'], ['c', '1'], ['d', '1'], ['e', '1'], ['f', '1']))] })) },
    { name: '7 before 10: a bad tag and old timestamp', expected: 'InvalidTagException', request: (w) => license(licenseRecord(w.alice, { Timestamp: OLD, UsageAllocations: [allocation(1, tags(['k', 'a~b']))] })) },
    { name: '8 before 9: a wrong sum and licence of another account', expected: 'InvalidUsageAllocationsException', request: (w) => license(licenseRecord(w.alice, { CustomerAWSAccountId: w.bob.customerAWSAccountId, Quantity: 10, UsageAllocations: [allocation(3)] })) },
    { name: '8 before 10: a wrong sum and old timestamp', expected: 'InvalidUsageAllocationsException', request: (w) => license(licenseRecord(w.alice, { Timestamp: OLD, Quantity: 10, UsageAllocations: [allocation(3)] })) },
    { name: '9 before 10: licence of another account and old timestamp', expected: 'InvalidLicenseException', request: (w) => license(licenseRecord(w.alice, { CustomerAWSAccountId: w.bob.customerAWSAccountId, Timestamp: OLD })) },
  ],
};

interface AcceptCase {
  name: string;
  request: (w: ValidationWorld) => BatchMeterUsageCommandInput;
  clock?: Date;
  config?: Partial<SimulatorConfig>;
  /** Extra checks on what was billed. */
  billed?: (records: MeteringRecord[]) => void;
}

const acceptCases: AcceptCase[] = [
  { name: 'Quantity 0', request: (w) => license(licenseRecord(w.alice, { Quantity: 0 })), billed: (r) => expect(r[0].quantity).toBe(0) },
  { name: 'Quantity 2147483647', request: (w) => license(licenseRecord(w.alice, { Quantity: INT_MAX })), billed: (r) => expect(r[0].quantity).toBe(INT_MAX) },
  { name: 'Quantity omitted (defaults to 0)', request: (w) => license(licenseRecord(w.alice, { Quantity: undefined })), billed: (r) => expect(r[0].quantity).toBe(0) },
  { name: '25 records', request: (w) => license(...manyRecords(w.alice, 25)), billed: (r) => expect(r).toHaveLength(25) },
  { name: 'a request of about 0.9 MB', request: (w) => license(licenseRecord(w.alice, { Quantity: 750, UsageAllocations: bigAllocations(750) })) },
  { name: '2,500 allocations', request: (w) => license(licenseRecord(w.alice, { Quantity: 2500, UsageAllocations: Array.from({ length: 2500 }, (_, i) => allocation(1, tags(['k', `v${i}`]))) })) },
  { name: 'allocations of quantity 0 summing to Quantity 0', request: (w) => license(licenseRecord(w.alice, { Quantity: 0, UsageAllocations: [allocation(0, tags(['t', 'a'])), allocation(0, tags(['t', 'b']))] })) },
  { name: 'allocation quantity 2147483647', request: (w) => license(licenseRecord(w.alice, { Quantity: INT_MAX, UsageAllocations: [allocation(INT_MAX)] })) },
  {
    name: 'five tags, a 100-character key, a 256-character value, every allowed character',
    request: (w) =>
      license(
        licenseRecord(w.alice, {
          Quantity: 3,
          UsageAllocations: [
            allocation(1, tags(['a', '1'], ['b', '1'], ['c', '1'], ['d', '1'], ['e', '1'])),
            allocation(1, tags(['k'.repeat(100), 'v'.repeat(256)])),
            allocation(1, tags(['AZaz09+ -=._:/@', 'AZaz09+ -=._:/@'])),
          ],
        }),
      ),
    billed: (r) => expect(r[0].allocations).toHaveLength(3),
  },
  { name: 'a dimension of exactly 255 characters the product has', request: (w) => license(licenseRecord(w.longDimCustomer, { Dimension: LONG_DIMENSION })) },
  { name: 'record stamped when the licence started (licence 10:20, record 10:20:00)', request: (w) => license(licenseRecord(w.erin, { Timestamp: at('2026-11-02T10:20:00Z') })) },
  { name: '24 h - 1 min old', request: (w) => license(licenseRecord(w.alice, { Timestamp: minutesBefore(T0, 24 * 60 - 1) })) },
  { name: '4 minutes in the future', request: (w) => license(licenseRecord(w.alice, { Timestamp: minutesAfter(T0, 4) })) },
  { name: 'a fractional timestamp (…:05:00.250)', request: (w) => license(licenseRecord(w.alice, { Timestamp: at('2026-11-02T10:05:00.250Z') })), billed: (r) => expect(Date.parse(r[0].timestamp)).toBe(Date.parse('2026-11-02T10:05:00.250Z')) },
  { name: 'option 6h: 5 h 59 min old', config: { timestampWindow: '6h' }, request: (w) => license(licenseRecord(w.alice, { Timestamp: minutesBefore(T0, 5 * 60 + 59) })) },
  { name: 'default 24h window: 6 h 1 min old', request: (w) => license(licenseRecord(w.alice, { Timestamp: minutesBefore(T0, 6 * 60 + 1) })) },
  { name: 'month rule: at 2026-12-01T05:00Z a record of 2026-11-30T23:00Z', clock: at('2026-12-01T05:00:00Z'), request: (w) => license(licenseRecord(w.alice, { Timestamp: at('2026-11-30T23:00:00Z') })) },
  { name: 'month rule: at 2026-12-01T06:30Z a record of this month (00:10Z)', clock: at('2026-12-01T06:30:00Z'), request: (w) => license(licenseRecord(w.alice, { Timestamp: at('2026-12-01T00:10:00Z') })) },
  { name: 'legacy mode by CustomerIdentifier', request: (w) => legacy(w.legacy.productCode, legacyRecord(w.carol)) },
  { name: 'legacy mode by CustomerAWSAccountId', request: (w) => legacy(w.legacy.productCode, legacyRecord(w.carol, { CustomerIdentifier: undefined, CustomerAWSAccountId: w.carol.customerAWSAccountId })) },
];

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe('BatchMeterUsage validation', () => {
  const ctx = useSimulator();

  async function prepare(options: { clock?: Date; config?: Partial<SimulatorConfig> }): Promise<ValidationWorld> {
    const world = await seedValidationWorld(ctx);
    if (options.config) await ctx.admin.setConfig(options.config);
    if (options.clock) await ctx.admin.setClock(options.clock);
    return world;
  }

  for (const [check, cases] of Object.entries(rejectCases)) {
    describe(`rejects the whole request: ${check}`, () => {
      test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
        const world = await prepare(c);
        const expected = Array.isArray(c.expected) ? c.expected : [c.expected];
        if (c.raw) {
          const response = await rawCall(ctx.sim.url, TARGET.batchMeterUsage, c.raw(world));
          expect(response.status).toBe(400);
          const type = String(response.json?.__type ?? '').split('#').pop();
          expect(expected).toContain(type);
          expect(typeof response.json?.message).toBe('string');
        } else if (c.request) {
          const error = await rejectionOf(ctx.meteringOnce.send(new BatchMeterUsageCommand(c.request(world))));
          expect(expected).toContain(error.name);
          expect(error).toBeInstanceOf(MarketplaceMeteringServiceException);
          const modelled = MODELLED[error.name];
          if (modelled) expect(error).toBeInstanceOf(modelled);
          expect(error.$metadata.httpStatusCode).toBe(400);
        }
        expect(await ctx.admin.meteringRecords()).toEqual([]);
      });
    });
  }

  describe('accepts', () => {
    test.each(acceptCases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const world = await prepare(c);
      const input = c.request(world);
      const out = await ctx.meteringOnce.send(new BatchMeterUsageCommand(input));
      expect(out.UnprocessedRecords ?? []).toEqual([]);
      for (const record of input.UsageRecords ?? []) {
        const result = resultFor(out.Results, record);
        expect(result.Status).toBe('Success');
        expect(result.MeteringRecordId).toEqual(expect.any(String));
      }
      const billed = await ctx.admin.meteringRecords();
      expect(billed).toHaveLength(input.UsageRecords?.length ?? 0);
      c.billed?.(billed);
    });
  });

  test('the calls log records rejected calls with the error name, status 400 and the record count', async () => {
    const world = await seedValidationWorld(ctx);
    await rejectionOf(ctx.meteringOnce.send(new BatchMeterUsageCommand(license(licenseRecord(world.alice, { Dimension: 'nope' }), licenseRecord(world.bob)))));
    await rejectionOf(ctx.meteringOnce.send(new BatchMeterUsageCommand(license(licenseRecord(world.alice, { Quantity: -1 })))));
    const calls = await ctx.admin.calls('BatchMeterUsage');
    expect(calls).toHaveLength(2);
    const byOutcome = Object.fromEntries(calls.map((call) => [call.outcome, call]));
    expect(byOutcome.InvalidUsageDimensionException).toMatchObject({ operation: 'BatchMeterUsage', httpStatus: 400, recordCount: 2 });
    expect(byOutcome.ValidationException).toMatchObject({ operation: 'BatchMeterUsage', httpStatus: 400 });
  });

  test('the month rule flips at 06:00 UTC on the 1st for the very same record', async () => {
    const world = await prepare({ clock: at('2026-12-01T05:59:00Z') });
    const record = licenseRecord(world.alice, { Timestamp: at('2026-11-30T23:00:00Z') });
    const first = await ctx.meteringOnce.send(new BatchMeterUsageCommand(license(record)));
    expect(resultFor(first.Results, record).Status).toBe('Success');
    await ctx.admin.setClock(at('2026-12-01T06:01:00Z'));
    const error = await rejectionOf(ctx.meteringOnce.send(new BatchMeterUsageCommand(license(record))));
    expect(error).toBeInstanceOf(TimestampOutOfBoundsException);
  });

  test('fractional epoch seconds on the wire are accepted and echoed', async () => {
    const world = await seedValidationWorld(ctx);
    const timestamp = epochSeconds(at('2026-11-02T10:05:00.250Z'));
    const response = await rawCall(ctx.sim.url, TARGET.batchMeterUsage, {
      UsageRecords: [{ Timestamp: timestamp, Dimension: 'requests', Quantity: 2, CustomerAWSAccountId: world.alice.customerAWSAccountId, LicenseArn: world.alice.licenseArn }],
    });
    expect(response.status).toBe(200);
    expect(response.json.Results).toHaveLength(1);
    expect(response.json.Results[0].Status).toBe('Success');
    expect(response.json.Results[0].UsageRecord.Timestamp).toBe(timestamp);
  });
});
