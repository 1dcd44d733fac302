import { BatchGetCommand, BatchGetCommandOutput, DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { SubscriptionDirectory } from '../core/metering/metering-run';
import { CustomerDirectory, KnownCustomer } from '../core/usage/ingest';
import { StoredSubscription } from '../core/lifecycle/subscription-state';

/**
 * Registered customers from the Customers table, cached for a short while: every usage event needs
 * its customer, and identities never change once written.
 */
export class CachedCustomerDirectory implements CustomerDirectory {
  private readonly cache = new Map<string, { identity: KnownCustomer | undefined; until: number }>();

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    /** Unknown customers are looked up again after this long (they may register meanwhile). @default 60000 */
    private readonly ttlMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  async find(customerKey: string): Promise<KnownCustomer | undefined> {
    const cached = this.cache.get(customerKey);
    if (cached && cached.until > this.now()) return cached.identity;
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: { customerKey }, ConsistentRead: true }));
    const identity =
      Item && Item.productCode && Item.customerAWSAccountId
        ? {
            customerKey,
            productCode: String(Item.productCode),
            identityMode: Item.identityMode === 'legacy' ? ('legacy' as const) : ('license' as const),
            customerAWSAccountId: String(Item.customerAWSAccountId),
            licenseArn: Item.licenseArn as string | undefined,
            customerIdentifier: Item.customerIdentifier as string | undefined,
            subscription: Item.status
              ? ({ status: Item.status, finalUsageUntil: Item.finalUsageUntil, statusEventTime: Item.statusEventTime } as StoredSubscription)
              : undefined,
          }
        : undefined;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(customerKey, { identity, until: this.now() + this.ttlMs });
    return identity;
  }
}

/** Customers' subscription state for the metering run, read in batches of 100 keys. */
export class CustomerSubscriptions implements SubscriptionDirectory {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async subscriptions(customerKeys: readonly string[]): Promise<Map<string, StoredSubscription>> {
    const found = new Map<string, StoredSubscription>();
    for (let i = 0; i < customerKeys.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = customerKeys.slice(i, i + 100).map((customerKey) => ({ customerKey }));
      for (let attempt = 0; keys && keys.length > 0; attempt++) {
        if (attempt === 5) throw new Error('BatchGetItem kept returning unprocessed keys');
        const result: BatchGetCommandOutput = await this.client.send(
          new BatchGetCommand({
            RequestItems: { [this.tableName]: { Keys: keys, ProjectionExpression: 'customerKey, #status, finalUsageUntil, statusEventTime', ExpressionAttributeNames: { '#status': 'status' } } },
          }),
        );
        for (const item of result.Responses?.[this.tableName] ?? []) {
          if (item.status) found.set(String(item.customerKey), { status: item.status, finalUsageUntil: item.finalUsageUntil, statusEventTime: item.statusEventTime } as StoredSubscription);
        }
        keys = result.UnprocessedKeys?.[this.tableName]?.Keys;
        if (keys?.length) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
    return found;
  }
}
