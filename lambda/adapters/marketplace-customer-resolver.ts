import {
  DisabledApiException,
  ExpiredTokenException,
  InternalServiceErrorException,
  InvalidTokenException,
  MarketplaceMeteringClient,
  ResolveCustomerCommand,
  ThrottlingException,
} from '@aws-sdk/client-marketplace-metering';
import { ResolvedCustomer } from '../core/customer';
import { ResolveCustomerFailure } from '../core/registration/registration-service';

/**
 * ResolveCustomer through the AWS SDK (its standard retries cover throttling and 5xx), with the
 * modelled errors translated into what the registration page needs to say.
 */
export function marketplaceCustomerResolver(client: MarketplaceMeteringClient): (token: string) => Promise<ResolvedCustomer> {
  return async (token) => {
    let result;
    try {
      result = await client.send(new ResolveCustomerCommand({ RegistrationToken: token }));
    } catch (error) {
      if (error instanceof InvalidTokenException) throw new ResolveCustomerFailure('invalid-token', error.name);
      if (error instanceof ExpiredTokenException) throw new ResolveCustomerFailure('expired-token', error.name);
      if (error instanceof ThrottlingException) throw new ResolveCustomerFailure('throttled', error.name);
      if (error instanceof InternalServiceErrorException) throw new ResolveCustomerFailure('unavailable', error.name);
      if (error instanceof DisabledApiException) throw new ResolveCustomerFailure('disabled', error.name);
      // Network errors, timeouts, unmodelled 4xx/5xx: nothing the buyer did; they may retry.
      throw new ResolveCustomerFailure('unavailable', error instanceof Error ? error.name : 'unknown error');
    }
    if (!result.ProductCode || !result.CustomerAWSAccountId) {
      throw new ResolveCustomerFailure('unavailable', 'ResolveCustomer answered without ProductCode or CustomerAWSAccountId');
    }
    return {
      productCode: result.ProductCode,
      customerAWSAccountId: result.CustomerAWSAccountId,
      licenseArn: result.LicenseArn || undefined,
      customerIdentifier: result.CustomerIdentifier || undefined,
    };
  };
}

/**
 * The Metering client: us-east-1 (where AWS Marketplace meters) unless told otherwise, and an
 * endpoint override for the local simulator.
 */
export function meteringClient(options: { endpoint?: string; region?: string } = {}): MarketplaceMeteringClient {
  return new MarketplaceMeteringClient({
    region: options.region ?? 'us-east-1',
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
  });
}
