import { StoredSubscription } from '../../../lambda/core/lifecycle/subscription-state';
/**
 * In-memory stand-ins for the ingest ports. The ledger keeps the contract of the DynamoDB ledger:
 * the de-duplication marker is checked first (`duplicate`), then whether the bucket is sealed
 * (`sealed`, nothing written), and otherwise the usage and the marker are written together.
 */
import { CustomerIdentity, legacyCustomerKey, licenseCustomerKey } from '../../../lambda/core/customer';
import { ProductConfig } from '../../../lambda/core/product-config';
import { AddUsageOutcome, CustomerDirectory, UsageAddition, UsageLedger, KnownCustomer } from '../../../lambda/core/usage/ingest';

export const NOW = new Date('2026-11-02T10:20:00Z');
export const ACCOUNT = '111122223333';
export const LICENSE_ID = 'l-0123456789abcdef0123';
export const LICENSE_ARN = `arn:aws:license-manager::${ACCOUNT}:license:${LICENSE_ID}`;
export const OTHER_LICENSE_ARN = 'arn:aws:license-manager::444455556666:license:l-fedcba9876543210fedc';

export const LICENSE_PRODUCT: ProductConfig = { productCode: 'prod-license', identityMode: 'license', dimensions: ['requests', 'storage'] };
export const LEGACY_PRODUCT: ProductConfig = { productCode: 'prod-legacy', identityMode: 'legacy', dimensions: ['requests'] };
export const PRODUCTS = [LICENSE_PRODUCT, LEGACY_PRODUCT];

export const LICENSE_CUSTOMER: CustomerIdentity = {
  customerKey: licenseCustomerKey(LICENSE_ARN),
  productCode: 'prod-license',
  identityMode: 'license',
  customerAWSAccountId: ACCOUNT,
  licenseArn: LICENSE_ARN,
};
export const OTHER_LICENSE_CUSTOMER: CustomerIdentity = {
  customerKey: licenseCustomerKey(OTHER_LICENSE_ARN),
  productCode: 'prod-license',
  identityMode: 'license',
  customerAWSAccountId: '444455556666',
  licenseArn: OTHER_LICENSE_ARN,
};
export const LEGACY_CUSTOMER: CustomerIdentity = {
  customerKey: legacyCustomerKey('prod-legacy', 'cust-legacy-1'),
  productCode: 'prod-legacy',
  identityMode: 'legacy',
  customerAWSAccountId: '777788889999',
  customerIdentifier: 'cust-legacy-1',
};
/** Registered, but for a product this stack does not serve. */
export const FOREIGN_CUSTOMER: CustomerIdentity = {
  customerKey: licenseCustomerKey('arn:aws:license-manager::111122223333:license:l-0000000000foreign0000'),
  productCode: 'prod-elsewhere',
  identityMode: 'license',
  customerAWSAccountId: ACCOUNT,
  licenseArn: 'arn:aws:license-manager::111122223333:license:l-0000000000foreign0000',
};

export interface StoredBucket {
  readonly addition: UsageAddition['bucket'];
  quantity: number;
  allocations: Record<string, number>;
  events: number;
}

export class FakeUsageLedger implements UsageLedger {
  readonly markers = new Map<string, string>();
  readonly buckets = new Map<string, StoredBucket>();
  readonly sealed = new Set<string>();
  readonly calls: UsageAddition[] = [];
  failWith?: Error;

  /** One addition after the other: what the DynamoDB ledger's transactions amount to. */
  async addUsage(additions: readonly UsageAddition[]): Promise<AddUsageOutcome[]> {
    this.calls.push(...additions);
    if (this.failWith) throw this.failWith;
    return additions.map((addition) => this.addOne(addition));
  }

  private addOne(addition: UsageAddition): AddUsageOutcome {
    if (this.markers.has(addition.eventKey)) return 'duplicate';
    if (this.sealed.has(addition.bucket.bucketKey)) return 'sealed';
    this.markers.set(addition.eventKey, addition.bucket.bucketKey);
    const stored = this.buckets.get(addition.bucket.bucketKey) ?? { addition: addition.bucket, quantity: 0, allocations: {}, events: 0 };
    stored.quantity += addition.quantity;
    stored.events += 1;
    for (const [tagSet, quantity] of Object.entries(addition.allocations)) {
      stored.allocations[tagSet] = (stored.allocations[tagSet] ?? 0) + quantity;
    }
    this.buckets.set(addition.bucket.bucketKey, stored);
    return 'added';
  }

  quantityOf(bucketKey: string): number {
    return this.buckets.get(bucketKey)?.quantity ?? 0;
  }

  totalQuantity(): number {
    return [...this.buckets.values()].reduce((total, b) => total + b.quantity, 0);
  }
}

export class FakeCustomerDirectory implements CustomerDirectory {
  readonly lookups: string[] = [];
  private readonly customers = new Map<string, KnownCustomer>();

  constructor(customers: readonly CustomerIdentity[] = [LICENSE_CUSTOMER, OTHER_LICENSE_CUSTOMER, LEGACY_CUSTOMER, FOREIGN_CUSTOMER]) {
    for (const c of customers) this.customers.set(c.customerKey, c);
  }

  async find(customerKey: string): Promise<KnownCustomer | undefined> {
    this.lookups.push(customerKey);
    return this.customers.get(customerKey);
  }

  /** Sets what lifecycle events have said about a customer. */
  setSubscription(customerKey: string, subscription: StoredSubscription): void {
    this.customers.set(customerKey, { ...this.customers.get(customerKey)!, subscription });
  }
}
