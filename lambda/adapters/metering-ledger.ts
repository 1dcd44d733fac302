import { createHash } from 'node:crypto';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, paginateQuery, PutCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { BucketIdentity, HourBucket } from '../core/metering/hour-bucket';
import { MeteringLedger } from '../core/metering/metering-run';
import { MeteringTableSchema as Schema } from '../core/metering-table-schema';
import { UsageAddition, UsageLedger } from '../core/usage/ingest';
import { backoffDelayMs } from '../core/metering/pacing';

/**
 * The Metering ledger in DynamoDB. Usage is added to a bucket in the same transaction as the event's
 * de-duplication marker, on condition that the bucket is still open; sealing flips that condition, so
 * after it the quantity can never change.
 */

const BUCKET = 'bucket#';
const CONFLICT_RETRIES = 8;
const EVENT = 'event#';
const ALLOCATION = 'alloc#';

export function shardOf(bucketKey: string): number {
  return createHash('sha1').update(bucketKey).digest()[0] % Schema.workShards;
}

export class DynamoDbMeteringLedger implements UsageLedger, MeteringLedger {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /**
   * Concurrent events for one bucket make DynamoDB cancel all but one transaction
   * (TransactionConflict): those are tried again after a short random pause.
   */
  async addUsage(addition: UsageAddition): Promise<'added' | 'duplicate' | 'sealed' | 'too-large'> {
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.tryAddUsage(addition);
      if (outcome !== 'conflict') return outcome;
      if (attempt === CONFLICT_RETRIES) throw new Error(`TransactionConflict on ${addition.bucket.bucketKey} after ${CONFLICT_RETRIES} retries`);
      await new Promise((r) => setTimeout(r, backoffDelayMs(attempt, { baseMs: 20, capMs: 1000 })));
    }
  }

  private async tryAddUsage(addition: UsageAddition): Promise<'added' | 'duplicate' | 'sealed' | 'too-large' | 'conflict'> {
    const { bucket, at } = addition;
    const names: Record<string, string> = { '#status': 'status', '#quantity': 'quantity', '#state': 'meteringState' };
    const values: Record<string, unknown> = { ':open': 'open', ':q': addition.quantity, ':at': at.toISOString(), ':state': `open#${shardOf(bucket.bucketKey)}` };
    const set = ['#status = if_not_exists(#status, :open)', '#state = if_not_exists(#state, :state)', 'firstUsageAt = if_not_exists(firstUsageAt, :at)', 'lastUsageAt = :at'];
    const identity: Record<string, unknown> = {
      bucketKey: bucket.bucketKey,
      customerKey: bucket.customerKey,
      productCode: bucket.productCode,
      identityMode: bucket.identityMode,
      customerAWSAccountId: bucket.customerAWSAccountId,
      licenseArn: bucket.licenseArn,
      customerIdentifier: bucket.customerIdentifier,
      dimension: bucket.dimension,
      hourStart: bucket.hourStart,
    };
    for (const [field, value] of Object.entries(identity)) {
      if (value === undefined) continue;
      names[`#${field}`] = field;
      values[`:${field}`] = value;
      set.push(`#${field} = if_not_exists(#${field}, :${field})`);
    }
    const add = ['#quantity :q', 'usageEvents :one'];
    values[':one'] = 1;
    Object.entries(addition.allocations).forEach(([tagSet, quantity], i) => {
      names[`#a${i}`] = `${ALLOCATION}${tagSet}`;
      values[`:a${i}`] = quantity;
      add.push(`#a${i} :a${i}`);
    });
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.tableName,
                Item: {
                  [Schema.partitionKey]: `${EVENT}${addition.eventKey}`,
                  bucketKey: bucket.bucketKey,
                  quantity: addition.quantity,
                  countedAt: at.toISOString(),
                  [Schema.ttlAttribute]: Math.floor(at.getTime() / 1000) + Schema.markerLifetimeSeconds,
                },
                ConditionExpression: 'attribute_not_exists(#pk)',
                ExpressionAttributeNames: { '#pk': Schema.partitionKey },
              },
            },
            {
              Update: {
                TableName: this.tableName,
                Key: { [Schema.partitionKey]: `${BUCKET}${bucket.bucketKey}` },
                UpdateExpression: `SET ${set.join(', ')} ADD ${add.join(', ')}`,
                ConditionExpression: 'attribute_not_exists(#status) OR #status = :open',
                ExpressionAttributeNames: names,
                ExpressionAttributeValues: values,
              },
            },
          ],
        }),
      );
      return 'added';
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const [marker, bucketUpdate] = error.CancellationReasons ?? [];
      if (marker?.Code === 'ConditionalCheckFailed') return 'duplicate';
      if (bucketUpdate?.Code === 'ConditionalCheckFailed') return 'sealed';
      if ([marker?.Code, bucketUpdate?.Code].includes('TransactionConflict')) return 'conflict';
      // The bucket item would pass DynamoDB's 400 KB limit.
      if (bucketUpdate?.Code === 'ValidationError') return 'too-large';
      throw error;
    }
  }

  async sealHoursEndedBy(cutoff: Date, now: Date): Promise<HourBucket[]> {
    // An hour has ended by `cutoff` when it starts at least an hour before it.
    const lastHourStart = new Date(cutoff.getTime() - 3_600_000).toISOString();
    const sealed: HourBucket[] = [];
    for (let shard = 0; shard < Schema.workShards; shard++) {
      for await (const bucket of this.queryWork(`open#${shard}`, lastHourStart)) {
        const done = await this.seal(bucket.bucketKey, shard, now);
        if (done) sealed.push(done);
      }
    }
    return sealed;
  }

  /**
   * Seals a customer's open buckets now, whatever their hour (their access is ending: the final
   * usage is metered at once). Returns them, sealed.
   */
  async sealCustomerBuckets(customerKey: string, now: Date): Promise<HourBucket[]> {
    const sealed: HourBucket[] = [];
    for (let shard = 0; shard < Schema.workShards; shard++) {
      for await (const bucket of this.queryWork(`open#${shard}`)) {
        if (bucket.customerKey !== customerKey) continue;
        const done = await this.seal(bucket.bucketKey, shard, now);
        if (done) sealed.push(done);
      }
    }
    return sealed;
  }

  async bucketsToMeter(limit: number): Promise<HourBucket[]> {
    const buckets: HourBucket[] = [];
    for (let shard = 0; shard < Schema.workShards; shard++) {
      for await (const bucket of this.queryWork(`sealed#${shard}`)) {
        buckets.push(bucket);
      }
    }
    return buckets.sort((a, b) => a.hourStart.localeCompare(b.hourStart)).slice(0, limit);
  }

  /**
   * A sealed bucket of quantity 0 for an hour without usage; undefined when the bucket exists (usage
   * came, or an earlier run created it).
   */
  async addZeroBucket(bucket: BucketIdentity & { bucketKey: string }, now: Date): Promise<HourBucket | undefined> {
    const item = {
      [Schema.partitionKey]: `${BUCKET}${bucket.bucketKey}`,
      ...Object.fromEntries(Object.entries(bucket).filter(([, v]) => v !== undefined)),
      quantity: 0,
      usageEvents: 0,
      zeroUsage: true,
      status: 'sealed',
      meteringState: `sealed#${shardOf(bucket.bucketKey)}`,
      sealedAt: now.toISOString(),
    };
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': Schema.partitionKey },
        }),
      );
      return toBucket(item);
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return undefined;
      throw error;
    }
  }

  /** Whether zero records were already created for an hour; marks it when `mark` is set. */
  async zeroFillDone(hourStart: string, mark = false): Promise<boolean> {
    const key = { [Schema.partitionKey]: `zero-fill#${hourStart}` };
    if (mark) {
      await this.client.send(new PutCommand({ TableName: this.tableName, Item: { ...key, filledAt: new Date().toISOString() } }));
      return true;
    }
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: key }));
    return Item !== undefined;
  }

  /** Seals one open bucket; undefined when it was no longer open (sealed meanwhile by another run). */
  private async seal(bucketKey: string, shard: number, now: Date): Promise<HourBucket | undefined> {
    try {
      // ALL_NEW: the quantity as frozen by this very update, not as the index last saw it.
      const { Attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { [Schema.partitionKey]: `${BUCKET}${bucketKey}` },
          UpdateExpression: 'SET #status = :sealed, #state = :state, sealedAt = :now',
          ConditionExpression: '#status = :open',
          ExpressionAttributeNames: { '#status': 'status', '#state': 'meteringState' },
          ExpressionAttributeValues: { ':sealed': 'sealed', ':open': 'open', ':state': `sealed#${shard}`, ':now': now.toISOString() },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return toBucket(Attributes!);
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return undefined;
      throw error;
    }
  }

  async recordAttempt(bucketKeys: readonly string[], at: Date): Promise<void> {
    await Promise.all(
      bucketKeys.map((bucketKey) =>
        this.client.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { [Schema.partitionKey]: `${BUCKET}${bucketKey}` },
            UpdateExpression: 'SET lastAttemptAt = :at ADD attempts :one',
            ExpressionAttributeValues: { ':at': at.toISOString(), ':one': 1 },
          }),
        ),
      ),
    );
  }

  async recordMetered(bucketKey: string, meteringRecordId: string, at: Date): Promise<void> {
    await this.finish(bucketKey, 'metered', { outcome: 'Success', meteringRecordId, meteredAt: at.toISOString() });
  }

  async recordFailed(bucketKey: string, reason: string, message: string, at: Date): Promise<void> {
    await this.finish(bucketKey, 'failed', { outcome: reason, failureMessage: message, failedAt: at.toISOString() });
  }

  async recordHeld(bucketKey: string, reason: string, at: Date): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { [Schema.partitionKey]: `${BUCKET}${bucketKey}` },
        UpdateExpression: 'SET outcome = :reason, heldAt = :at',
        ExpressionAttributeValues: { ':reason': reason, ':at': at.toISOString() },
      }),
    );
  }

  /** Final status; the bucket leaves the work index. */
  private async finish(bucketKey: string, status: 'metered' | 'failed', fields: Record<string, string>): Promise<void> {
    const names: Record<string, string> = { '#status': 'status', '#state': 'meteringState' };
    const values: Record<string, unknown> = { ':status': status };
    const set = ['#status = :status'];
    Object.entries(fields).forEach(([field, value], i) => {
      names[`#f${i}`] = field;
      values[`:f${i}`] = value;
      set.push(`#f${i} = :f${i}`);
    });
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { [Schema.partitionKey]: `${BUCKET}${bucketKey}` },
        UpdateExpression: `SET ${set.join(', ')} REMOVE #state`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  }

  private async *queryWork(state: string, hourStartAtMost?: string): AsyncGenerator<HourBucket> {
    const { name, partitionKey, sortKey } = Schema.workIndex;
    const pages = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        IndexName: name,
        KeyConditionExpression: hourStartAtMost ? '#state = :state AND #hour <= :hour' : '#state = :state',
        ExpressionAttributeNames: { '#state': partitionKey, ...(hourStartAtMost ? { '#hour': sortKey } : {}) },
        ExpressionAttributeValues: { ':state': state, ...(hourStartAtMost ? { ':hour': hourStartAtMost } : {}) },
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) yield toBucket(item);
    }
  }
}

/** A ledger item as the domain's HourBucket. */
export function toBucket(item: Record<string, unknown>): HourBucket {
  const allocations: Record<string, number> = {};
  for (const [name, value] of Object.entries(item)) {
    if (name.startsWith(ALLOCATION)) allocations[name.slice(ALLOCATION.length)] = Number(value);
  }
  return {
    bucketKey: String(item.bucketKey),
    customerKey: String(item.customerKey),
    productCode: String(item.productCode),
    identityMode: item.identityMode === 'legacy' ? 'legacy' : 'license',
    customerAWSAccountId: String(item.customerAWSAccountId),
    licenseArn: item.licenseArn as string | undefined,
    customerIdentifier: item.customerIdentifier as string | undefined,
    dimension: String(item.dimension),
    hourStart: String(item.hourStart),
    quantity: Number(item.quantity ?? 0),
    allocations,
    status: item.status as HourBucket['status'],
    attempts: Number(item.attempts ?? 0),
    sealedAt: item.sealedAt as string | undefined,
    meteringRecordId: item.meteringRecordId as string | undefined,
    lastOutcome: item.outcome as string | undefined,
  };
}
