import { DynamoDBDocumentClient, GetCommand, paginateQuery, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { FoldedBucket } from '../core/metering/fold';
import { foldCustomerNow, FoldReport, foldHoursEndedBy, FoldPorts } from '../core/metering/fold-hours';
import { BucketIdentity, HourBucket } from '../core/metering/hour-bucket';
import { MeteringLedger } from '../core/metering/metering-run';
import { MeteringTableSchema as Schema } from '../core/metering-table-schema';
import { batchWrite } from './batch-write';
import { bucketItemKey, sealedBucketItem, shardOf, toBucket } from './bucket-items';
import { DynamoDbUsageJournal } from './usage-journal';

/**
 * The Metering ledger in DynamoDB: hour buckets and their audit trail. Buckets are written once,
 * sealed, when an hour's usage journal is folded (fold-hours.ts); metering then records each
 * attempt and outcome on them.
 */

export { shardOf, toBucket };

export class DynamoDbMeteringLedger implements MeteringLedger {
  /** The usage journal the buckets are folded from (ingestion appends to it). */
  readonly journal: DynamoDbUsageJournal;
  private readonly fold: FoldPorts;

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    journalTableName: string,
  ) {
    this.journal = new DynamoDbUsageJournal(client, journalTableName, tableName);
    this.fold = { journal: this.journal, buckets: this };
  }

  /** Seals and folds the hours that ended by `cutoff` into sealed buckets. */
  sealHoursEndedBy(cutoff: Date, now: Date): Promise<FoldReport> {
    return foldHoursEndedBy(this.fold, cutoff, now);
  }

  /**
   * A customer's access is ending: its usage of every hour not folded yet is folded now into sealed
   * buckets, to be metered at once. Returns those buckets and any events refused.
   */
  sealCustomerBuckets(customerKey: string, now: Date): Promise<FoldReport> {
    return foldCustomerNow(this.fold, customerKey, now);
  }

  async putSealedBuckets(buckets: readonly FoldedBucket[], at: Date): Promise<HourBucket[]> {
    const items = buckets.map((bucket) => sealedBucketItem(bucket, at));
    await batchWrite(this.client, this.tableName, items);
    return items.map(toBucket);
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
    return this.createBucket({
      ...bucketItemKey(bucket.bucketKey),
      ...Object.fromEntries(Object.entries(bucket).filter(([, v]) => v !== undefined)),
      quantity: 0,
      usageEvents: 0,
      zeroUsage: true,
      status: 'sealed',
      meteringState: `sealed#${shardOf(bucket.bucketKey)}`,
      sealedAt: now.toISOString(),
    });
  }

  /** Writes a new bucket item; undefined when the bucket exists. */
  private async createBucket(item: Record<string, unknown>): Promise<HourBucket | undefined> {
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

  async recordAttempt(bucketKeys: readonly string[], at: Date): Promise<void> {
    await Promise.all(
      bucketKeys.map((bucketKey) =>
        this.client.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: bucketItemKey(bucketKey),
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
        Key: bucketItemKey(bucketKey),
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
        Key: bucketItemKey(bucketKey),
        UpdateExpression: `SET ${set.join(', ')} REMOVE #state`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  }

  private async *queryWork(state: string): AsyncGenerator<HourBucket> {
    const pages = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        IndexName: Schema.workIndex.name,
        KeyConditionExpression: '#state = :state',
        ExpressionAttributeNames: { '#state': Schema.workIndex.partitionKey },
        ExpressionAttributeValues: { ':state': state },
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) yield toBucket(item);
    }
  }
}
