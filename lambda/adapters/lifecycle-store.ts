import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  UpdateCommand,
  UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { CustomerIdentity } from '../core/customer';
import { CustomersTableSchema } from '../core/customers-table-schema';
import { Entitlement } from '../core/lifecycle/lifecycle-service';
import { AgreementSignal } from '../core/lifecycle/lifecycle-signal';
import { StatusChange } from '../core/lifecycle/subscription-state';

/**
 * Lifecycle state in the Customers table. Status and entitlements are written only when the change
 * is newer than what is stored (a condition on the stored version), so the table converges whatever
 * the delivery order. Identity fields are set only if absent, as registration does. Two more item
 * kinds live beside the customers: `agreement#<id>` (which customer an agreement belongs to) and
 * `kept-agreement#<id>` (agreement events waiting for that answer).
 */
export class LifecycleStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async applyStatus(customerKey: string, change: StatusChange, identity: Partial<CustomerIdentity>): Promise<boolean> {
    const names: Record<string, string> = { '#status': 'status', '#version': 'statusVersion' };
    const values: Record<string, unknown> = {
      ':status': change.status,
      ':version': change.version,
      ':eventTime': change.eventTime,
    };
    const set = ['#status = :status', '#version = :version', 'statusEventTime = :eventTime'];
    const remove: string[] = [];
    if (change.finalUsageUntil) {
      values[':until'] = change.finalUsageUntil;
      set.push('finalUsageUntil = :until');
    } else {
      remove.push('finalUsageUntil');
    }
    this.setOnce(identity, names, values, set);
    // The free-trial flag has its own version: a subscribe-success overtaken by a newer status
    // (delivered after an unsubscribe) still says what the offer was, so any order stores the same flag.
    if (change.freeTrial !== undefined) await this.saveFreeTrial(customerKey, change.freeTrial, change.version);
    return this.updateIf(customerKey, {
      UpdateExpression: `SET ${set.join(', ')}${remove.length ? ` REMOVE ${remove.join(', ')}` : ''}`,
      ConditionExpression: 'attribute_not_exists(#version) OR #version < :version',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
  }

  private async saveFreeTrial(customerKey: string, freeTrial: boolean, version: string): Promise<void> {
    await this.updateIf(customerKey, {
      UpdateExpression: 'SET freeTrial = :freeTrial, freeTrialVersion = :version',
      ConditionExpression: 'attribute_not_exists(freeTrialVersion) OR freeTrialVersion < :version',
      ExpressionAttributeValues: { ':freeTrial': freeTrial, ':version': version },
    });
  }

  async rememberIdentity(customerKey: string, identity: Partial<CustomerIdentity>, activeSince?: string): Promise<void> {
    if (activeSince !== undefined) await this.rememberActiveSince(customerKey, activeSince);
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const set: string[] = [];
    this.setOnce(identity, names, values, set);
    if (set.length === 0) return;
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { [CustomersTableSchema.partitionKey]: customerKey },
        UpdateExpression: `SET ${set.join(', ')}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  }

  /** Keeps the earliest: notifications arrive in any order, and any order must end the same. */
  private async rememberActiveSince(customerKey: string, activeSince: string): Promise<void> {
    await this.updateIf(customerKey, {
      UpdateExpression: 'SET activeSince = :at',
      ConditionExpression: 'attribute_not_exists(activeSince) OR activeSince > :at',
      ExpressionAttributeValues: { ':at': activeSince },
    });
  }

  /** A conditional update of the customer's item; false when the condition kept it from applying (a stale change). */
  private async updateIf(customerKey: string, update: Omit<UpdateCommandInput, 'TableName' | 'Key'>): Promise<boolean> {
    try {
      await this.client.send(new UpdateCommand({ TableName: this.tableName, Key: { [CustomersTableSchema.partitionKey]: customerKey }, ...update }));
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  async saveEntitlements(customerKey: string, entitlements: readonly Entitlement[], version: string): Promise<boolean> {
    return this.updateIf(customerKey, {
      UpdateExpression: 'SET entitlements = :entitlements, entitlementsVersion = :version',
      ConditionExpression: 'attribute_not_exists(entitlementsVersion) OR entitlementsVersion <= :version',
      ExpressionAttributeValues: { ':entitlements': entitlements, ':version': version },
    });
  }

  async customer(customerKey: string): Promise<(Partial<CustomerIdentity> & Record<string, unknown>) | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { [CustomersTableSchema.partitionKey]: customerKey }, ConsistentRead: true }),
    );
    return Item as (Partial<CustomerIdentity> & Record<string, unknown>) | undefined;
  }

  async customerKeyForAgreement(agreementId: string): Promise<string | undefined> {
    const item = await this.customer(`agreement#${agreementId}`);
    return item?.belongsTo as string | undefined;
  }

  async customerKeysOfAccount(accountId: string): Promise<string[]> {
    const { name, partitionKey } = CustomersTableSchema.accountIndex;
    const { Items = [] } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: name,
        KeyConditionExpression: '#account = :account',
        ExpressionAttributeNames: { '#account': partitionKey },
        ExpressionAttributeValues: { ':account': accountId },
      }),
    );
    return Items.map((item) => String(item[CustomersTableSchema.partitionKey]));
  }

  async rememberAgreement(agreementId: string, customerKey: string): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { [CustomersTableSchema.partitionKey]: `agreement#${agreementId}` },
        UpdateExpression: 'SET belongsTo = :customerKey',
        ExpressionAttributeValues: { ':customerKey': customerKey },
      }),
    );
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { [CustomersTableSchema.partitionKey]: customerKey },
        UpdateExpression: 'SET agreementId = :agreementId',
        ExpressionAttributeValues: { ':agreementId': agreementId },
      }),
    );
  }

  async keepForLater(signal: AgreementSignal): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { [CustomersTableSchema.partitionKey]: `kept-agreement#${signal.agreementId}` },
        UpdateExpression: 'SET signals = list_append(if_not_exists(signals, :empty), :signal), #ttl = :expiresAt',
        ExpressionAttributeNames: { '#ttl': CustomersTableSchema.ttlAttribute },
        ExpressionAttributeValues: {
          ':empty': [],
          ':signal': [signal],
          ':expiresAt': Math.floor(Date.now() / 1000) + CustomersTableSchema.keptAgreementLifetimeSeconds,
        },
      }),
    );
  }

  async takeKeptSignals(agreementId: string): Promise<AgreementSignal[]> {
    const { Attributes } = await this.client.send(
      new DeleteCommand({
        TableName: this.tableName,
        Key: { [CustomersTableSchema.partitionKey]: `kept-agreement#${agreementId}` },
        ReturnValues: 'ALL_OLD',
      }),
    );
    return (Attributes?.signals as AgreementSignal[] | undefined) ?? [];
  }

  private setOnce(identity: Partial<CustomerIdentity>, names: Record<string, string>, values: Record<string, unknown>, set: string[]): void {
    for (const [field, value] of Object.entries(identity)) {
      if (value === undefined || field === 'customerKey') continue;
      names[`#${field}`] = field;
      values[`:${field}`] = value;
      set.push(`#${field} = if_not_exists(#${field}, :${field})`);
    }
  }
}
