import { licenseIdOf } from '../../../lambda/core/marketplace-limits';
import { MarketplaceApiError } from '../errors';
import { MarketplaceState, SimulatedCustomer, SimulatedEntitlement } from '../state';

/**
 * AWSMPEntitlementService.GetEntitlements: a product's entitlements, filtered (values OR-ed within a
 * key, keys AND-ed) and paged by an opaque NextToken.
 */

const FILTER_KEYS = ['CUSTOMER_IDENTIFIER', 'CUSTOMER_AWS_ACCOUNT_ID', 'DIMENSION', 'LICENSE_ARN'] as const;
type FilterKey = (typeof FILTER_KEYS)[number];
const MAX_RESULTS = 25;

const invalid = (message: string): never => {
  throw new MarketplaceApiError('InvalidParameterException', message);
};

export function getEntitlements(
  state: MarketplaceState,
  input: Record<string, unknown>,
  emptyPage = false,
): { Entitlements: unknown[]; NextToken?: string } {
  const productCode = input.ProductCode;
  if (typeof productCode !== 'string' || !state.products.has(productCode)) {
    invalid(`ProductCode ${String(productCode)} is not a product of this seller`);
  }
  const filter = parseFilter(input.Filter);
  const maxResults = input.MaxResults ?? MAX_RESULTS;
  if (typeof maxResults !== 'number' || !Number.isInteger(maxResults) || maxResults < 1 || maxResults > MAX_RESULTS) {
    invalid(`MaxResults must be an integer from 1 to ${MAX_RESULTS}`);
  }
  const offset = input.NextToken === undefined ? 0 : decodeToken(input.NextToken, productCode as string);

  const matching = [...state.customers.values()]
    .filter((c) => c.productCode === productCode && matchesCustomer(c, filter))
    .flatMap((c) => c.entitlements.filter((e) => matchesDimension(e, filter)).map((e) => toWire(c, e)));

  if (emptyPage) return { Entitlements: [], NextToken: encodeToken(offset, productCode as string) };
  const end = offset + (maxResults as number);
  return {
    Entitlements: matching.slice(offset, end),
    NextToken: end < matching.length ? encodeToken(end, productCode as string) : undefined,
  };
}

function parseFilter(raw: unknown): Partial<Record<FilterKey, string[]>> {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) invalid('Filter must be a map');
  const filter = raw as Record<string, unknown>;
  for (const [key, values] of Object.entries(filter)) {
    if (!(FILTER_KEYS as readonly string[]).includes(key)) invalid(`Unknown filter key ${key}`);
    if (!Array.isArray(values) || values.length === 0 || values.some((v) => typeof v !== 'string' || v.length === 0)) {
      invalid(`Filter ${key} must be a non-empty list of strings`);
    }
  }
  if (filter.CUSTOMER_IDENTIFIER && filter.CUSTOMER_AWS_ACCOUNT_ID) {
    invalid('CUSTOMER_IDENTIFIER and CUSTOMER_AWS_ACCOUNT_ID cannot be used together');
  }
  return filter as Partial<Record<FilterKey, string[]>>;
}

function matchesCustomer(customer: SimulatedCustomer, filter: Partial<Record<FilterKey, string[]>>): boolean {
  const licenceIds = filter.LICENSE_ARN?.map(licenseIdOf);
  return (
    (!filter.CUSTOMER_IDENTIFIER || filter.CUSTOMER_IDENTIFIER.includes(customer.customerIdentifier ?? '')) &&
    (!filter.CUSTOMER_AWS_ACCOUNT_ID || filter.CUSTOMER_AWS_ACCOUNT_ID.includes(customer.customerAWSAccountId)) &&
    (!licenceIds || licenceIds.includes(customer.licenseId))
  );
}

function matchesDimension(entitlement: SimulatedEntitlement, filter: Partial<Record<FilterKey, string[]>>): boolean {
  return !filter.DIMENSION || filter.DIMENSION.includes(entitlement.dimension);
}

function toWire(customer: SimulatedCustomer, entitlement: SimulatedEntitlement) {
  return {
    ProductCode: customer.productCode,
    Dimension: entitlement.dimension,
    CustomerIdentifier: customer.customerIdentifier,
    CustomerAWSAccountId: customer.customerAWSAccountId,
    LicenseArn: customer.licenseArn,
    Value: entitlement.value,
    ExpirationDate: entitlement.expirationDate ? entitlement.expirationDate.getTime() / 1000 : undefined,
  };
}

/** NextToken: opaque to callers, bound to the product it was issued for. */
function encodeToken(offset: number, productCode: string): string {
  return Buffer.from(JSON.stringify({ offset, productCode })).toString('base64');
}

function decodeToken(token: unknown, productCode: string): number {
  try {
    const decoded = JSON.parse(Buffer.from(String(token), 'base64').toString('utf8'));
    if (decoded.productCode === productCode && Number.isInteger(decoded.offset) && decoded.offset >= 0) return decoded.offset;
  } catch {
    // fall through
  }
  return invalid('NextToken is not valid');
}
