import { licenseIdOf } from './marketplace-limits';

/**
 * A buyer of one of the seller's products, as the Customers table keeps it. The customer key is the
 * tenant key: the licence in license mode (Concurrent Agreements: one account may hold several
 * licences), product code + CustomerIdentifier in legacy mode.
 */

export type IdentityMode = 'license' | 'legacy';

/** What ResolveCustomer told us: only identifiers that came back from AWS are trusted. */
export interface ResolvedCustomer {
  readonly productCode: string;
  readonly customerAWSAccountId: string;
  readonly licenseArn?: string;
  readonly customerIdentifier?: string;
}

export interface CustomerIdentity extends ResolvedCustomer {
  readonly customerKey: string;
  readonly identityMode: IdentityMode;
}

export class CustomerIdentityError extends Error {}

export function licenseCustomerKey(licenseArn: string): string {
  const licenseId = licenseIdOf(licenseArn);
  if (!licenseId) throw new CustomerIdentityError('the licence ARN has no licence id');
  return `license#${licenseId}`;
}

export function legacyCustomerKey(productCode: string, customerIdentifier: string): string {
  return `legacy#${productCode}#${customerIdentifier}`;
}

/** The identity a resolved customer is stored and metered under, for a product in `mode`. */
export function customerIdentity(resolved: ResolvedCustomer, mode: IdentityMode): CustomerIdentity {
  if (mode === 'license') {
    if (!resolved.licenseArn) throw new CustomerIdentityError('ResolveCustomer returned no LicenseArn for a license-mode product');
    return { ...resolved, identityMode: mode, customerKey: licenseCustomerKey(resolved.licenseArn) };
  }
  if (!resolved.customerIdentifier) {
    throw new CustomerIdentityError('ResolveCustomer returned no CustomerIdentifier for a legacy product');
  }
  return { ...resolved, identityMode: mode, customerKey: legacyCustomerKey(resolved.productCode, resolved.customerIdentifier) };
}
