import {
  GetEntitlementFilterName,
  MarketplaceEntitlementServiceClient,
  paginateGetEntitlements,
} from '@aws-sdk/client-marketplace-entitlement-service';
import { CustomerIdentity } from '../core/customer';
import { Entitlement } from '../core/lifecycle/lifecycle-service';

/**
 * A customer's entitlements through GetEntitlements (us-east-1 only), every page until NextToken is
 * absent (the SDK's paginator follows a token even past an empty page).
 */
export function entitlementReader(client: MarketplaceEntitlementServiceClient) {
  return async (customer: Partial<CustomerIdentity> & { productCode: string }): Promise<Entitlement[]> => {
    const Filter: Partial<Record<GetEntitlementFilterName, string[]>> = customer.licenseArn
      ? { LICENSE_ARN: [customer.licenseArn] }
      : customer.customerIdentifier
        ? { CUSTOMER_IDENTIFIER: [customer.customerIdentifier] }
        : { CUSTOMER_AWS_ACCOUNT_ID: [customer.customerAWSAccountId ?? ''] };
    const entitlements: Entitlement[] = [];
    for await (const page of paginateGetEntitlements({ client, pageSize: 25 }, { ProductCode: customer.productCode, Filter })) {
      for (const e of page.Entitlements ?? []) {
        entitlements.push({
          dimension: e.Dimension ?? '',
          value: { ...e.Value },
          expirationDate: e.ExpirationDate?.toISOString(),
        });
      }
    }
    return entitlements;
  };
}

export function entitlementClient(options: { endpoint?: string; credentials?: { accessKeyId: string; secretAccessKey: string } } = {}) {
  return new MarketplaceEntitlementServiceClient({
    region: 'us-east-1',
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
  });
}
