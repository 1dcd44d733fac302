import { MarketplaceApiError } from '../errors';
import { MarketplaceState } from '../state';

/**
 * AWSMPMeteringService.ResolveCustomer: a registration token resolves to the same customer every
 * time until it expires.
 */
export function resolveCustomer(state: MarketplaceState, input: Record<string, unknown>): Record<string, unknown> {
  const token = input.RegistrationToken;
  if (typeof token !== 'string' || token.length === 0) {
    throw new MarketplaceApiError('ValidationException', 'RegistrationToken is required');
  }
  const issued = state.tokens.get(token);
  const customer = issued && state.customers.get(issued.licenseId);
  if (!issued || !customer) {
    throw new MarketplaceApiError('InvalidTokenException', 'Registration token is invalid');
  }
  if (state.clock.now() >= issued.expiresAt) {
    throw new MarketplaceApiError('ExpiredTokenException', 'Registration token is expired');
  }
  return {
    CustomerIdentifier: customer.customerIdentifier,
    CustomerAWSAccountId: customer.customerAWSAccountId,
    ProductCode: customer.productCode,
    LicenseArn: customer.licenseArn,
  };
}
