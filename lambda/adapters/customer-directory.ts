import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { batchGet, BatchGetOptions } from './batch-requests';
import { CustomerBillingState, SubscriptionDirectory } from '../core/metering/metering-run';
import { CustomerDirectory, KnownCustomer } from '../core/usage/ingest';
import { StoredSubscription } from '../core/lifecycle/subscription-state';

/**
 * Registered customers from the Customers table, cached for a short while: every usage event needs
 * its customer, and identities never change once written. An unknown customer is never cached: its
 * events are refused for good, so the answer must be fresh (the buyer may have just registered).
 */
export class CachedCustomerDirectory implements CustomerDirectory {
  private readonly cache = new Map<string, { identity: KnownCustomer; until: number }>();

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    /** Known customers are looked up again after this long (their subscription state may change). @default 60000 */
    private readonly ttlMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  async find(customerKeys: readonly string[]): Promise<ReadonlyMap<string, KnownCustomer>> {
    const found = new Map<string, KnownCustomer>();
    const missing: string[] = [];
    const now = this.now();
    for (const customerKey of customerKeys) {
      const cached = this.cache.get(customerKey);
      if (!cached || cached.until <= now) missing.push(customerKey);
      else found.set(customerKey, cached.identity);
    }
    if (missing.length === 0) return found;
    const items = await batchGetCustomers(this.client, this.tableName, missing, { ConsistentRead: true });
    if (this.cache.size > 10_000) this.cache.clear();
    const until = this.now() + this.ttlMs;
    for (const customerKey of missing) {
      const identity = knownCustomerOf(customerKey, items.get(customerKey));
      if (!identity) continue;
      this.cache.set(customerKey, { identity, until });
      found.set(customerKey, identity);
    }
    return found;
  }
}

function knownCustomerOf(customerKey: string, item: Record<string, unknown> | undefined): KnownCustomer | undefined {
  if (!item || !item.productCode || !item.customerAWSAccountId) return undefined;
  return {
    customerKey,
    productCode: String(item.productCode),
    identityMode: item.identityMode === 'legacy' ? 'legacy' : 'license',
    customerAWSAccountId: String(item.customerAWSAccountId),
    licenseArn: item.licenseArn as string | undefined,
    customerIdentifier: item.customerIdentifier as string | undefined,
    subscription: subscriptionOf(item),
  };
}

function subscriptionOf(item: Record<string, unknown>): StoredSubscription | undefined {
  return item.status
    ? ({ status: item.status, finalUsageUntil: item.finalUsageUntil, statusEventTime: item.statusEventTime, statusVersion: item.statusVersion } as StoredSubscription)
    : undefined;
}

/** Customers items by key (BatchGetItem). */
async function batchGetCustomers(
  client: DynamoDBDocumentClient,
  tableName: string,
  customerKeys: readonly string[],
  options: BatchGetOptions,
): Promise<Map<string, Record<string, unknown>>> {
  const items = await batchGet(client, tableName, customerKeys.map((customerKey) => ({ customerKey })), options);
  return new Map(items.map((item) => [String(item.customerKey), item]));
}

/** Customers' billing state for the metering run, read in batches of 100 keys. */
export class CustomerSubscriptions implements SubscriptionDirectory {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async billingStates(customerKeys: readonly string[]): Promise<Map<string, CustomerBillingState>> {
    const items = await batchGetCustomers(this.client, this.tableName, customerKeys, {
      ProjectionExpression: 'customerKey, #status, finalUsageUntil, statusEventTime, statusVersion, firstRegisteredAt, activeSince',
      ExpressionAttributeNames: { '#status': 'status' },
    });
    const found = new Map<string, CustomerBillingState>();
    for (const [customerKey, item] of items) {
      found.set(customerKey, {
        subscription: subscriptionOf(item),
        firstRegisteredAt: item.firstRegisteredAt as string | undefined,
        activeSince: item.activeSince as string | undefined,
      });
    }
    return found;
  }
}
