import { DynamoDBDocumentClient, GetCommand, paginateQuery, PutCommand } from '@aws-sdk/lib-dynamodb';
import { FoldedBucket, FoldRejection } from '../core/metering/fold';
import { addToReport, foldCustomerNow, FoldReport, foldHoursEndedBy, FoldPorts } from '../core/metering/fold-hours';
import { BucketIdentity, HourBucket } from '../core/metering/hour-bucket';
import { FinalUsageFailure, FinalUsageReport, MeteringLedger } from '../core/metering/metering-run';
import { FinalUsageFlush, finalUsageFlushExpired } from '../core/lifecycle/subscription-state';
import { MeteringTableSchema as Schema } from '../core/metering-table-schema';
import { batchGet, batchWrite } from './batch-requests';
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
  /**
   * The latest image of each bucket this metering run has read (consistently) or written. The run
   * is the only writer of existing buckets (one run at a time; early metering only creates new
   * ones), so its audit writes replace whole items, 25 to a BatchWriteItem, instead of one
   * UpdateItem per bucket and write.
   */
  private readonly images = new Map<string, Record<string, unknown>>();
  private readonly queued = new Map<string, { item: Record<string, unknown>; waiters: { resolve: () => void; reject: (error: unknown) => void }[] }>();
  private flushScheduled = false;
  /** Each bucket's last change in progress: the next one waits for it. */
  private readonly tails = new Map<string, Promise<void>>();

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
    // A new run: images of earlier runs are not trusted.
    this.images.clear();
    return foldHoursEndedBy(this.fold, cutoff, now);
  }

  /**
   * A customer's access is ending: its usage of every hour not folded yet (up to `sealsThrough`, if
   * given) is folded now into sealed buckets, to be metered at once. Returns those buckets and any
   * events refused.
   */
  sealCustomerBuckets(customerKey: string, now: Date, sealsThrough?: string): Promise<FoldReport> {
    return foldCustomerNow(this.fold, customerKey, now, sealsThrough);
  }

  async sealFinalUsageDue(now: Date, stands: (flushes: readonly FinalUsageFlush[]) => Promise<readonly boolean[]>): Promise<FinalUsageReport> {
    const report = { buckets: [] as HourBucket[], rejected: [] as FoldRejection[], duplicates: 0, customers: 0, withdrawn: 0, failed: [] as FinalUsageFailure[] };
    const due = await this.journal.finalUsageDue(now);
    const standing = due.length > 0 ? await stands(due) : [];
    for (const [i, flush] of due.entries()) {
      if (!standing[i]) {
        await this.journal.forgetFinalUsage(flush);
        report.withdrawn += 1;
        continue;
      }
      let sealed: FoldReport;
      try {
        sealed = await this.sealCustomerBuckets(flush.customerKey, now, flush.sealsThrough);
      } catch (error) {
        // One customer's flush must not keep the run from billing everyone else: it is tried again
        // next run, until its final usage window has closed (the hours' own folds then take the usage).
        const givenUp = finalUsageFlushExpired(flush.dueAt, now);
        report.failed.push({ customerKey: flush.customerKey, dueAt: flush.dueAt, message: error instanceof Error ? `${error.name}: ${error.message}` : String(error), givenUp });
        if (givenUp) await this.journal.forgetFinalUsage(flush);
        continue;
      }
      addToReport(report, sealed);
      report.customers += 1;
      // Only once sealed: a run that fails before this seals it again (sealing twice adds nothing).
      await this.journal.forgetFinalUsage(flush);
    }
    return report;
  }

  async putSealedBuckets(buckets: readonly FoldedBucket[], at: Date): Promise<HourBucket[]> {
    const items = buckets.map((bucket) => sealedBucketItem(bucket, at));
    await batchWrite(this.client, this.tableName, items);
    for (const item of items) this.images.set(String(item.bucketKey), item);
    return items.map(toBucket);
  }

  /** Sealed buckets, oldest hour first: found in the work index, read back consistently from the table. */
  async bucketsToMeter(limit: number): Promise<HourBucket[]> {
    const found: HourBucket[] = [];
    for (let shard = 0; shard < Schema.workShards; shard++) {
      for await (const bucket of this.queryWork(`sealed#${shard}`)) found.push(bucket);
    }
    const oldestFirst = found.sort((a, b) => a.hourStart.localeCompare(b.hourStart)).map((b) => b.bucketKey);
    const buckets: HourBucket[] = [];
    // Read back as many as are still wanted; the index lags the table a little, so a bucket it
    // lists may have been metered meanwhile: that one is not sent again, the next oldest is read.
    for (let next = 0; next < oldestFirst.length && buckets.length < limit; ) {
      const keys = oldestFirst.slice(next, next + limit - buckets.length);
      next += keys.length;
      const items = await this.readItems(keys);
      for (const bucketKey of keys) {
        const item = items.get(bucketKey);
        if (!item || item.status !== 'sealed') continue;
        this.images.set(bucketKey, item);
        buckets.push(toBucket(item));
      }
    }
    return buckets;
  }

  /** Bucket items by key, read consistently. */
  private async readItems(bucketKeys: readonly string[]): Promise<Map<string, Record<string, unknown>>> {
    const items = await batchGet(this.client, this.tableName, bucketKeys.map(bucketItemKey), { ConsistentRead: true });
    return new Map(items.map((item) => [String(item.bucketKey), item]));
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
      this.images.set(String(item.bucketKey), item);
      return toBucket(item);
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return undefined;
      throw error;
    }
  }

  /**
   * Whether zero records were all created for an hour; marks it done when `mark` is set. An hour
   * whose fill is still under way (a stored scan position, no `filledAt`) is not done.
   */
  async zeroFillDone(hourStart: string, mark = false): Promise<boolean> {
    if (mark) {
      await this.client.send(new PutCommand({ TableName: this.tableName, Item: { ...this.zeroFillKey(hourStart), filledAt: new Date().toISOString() } }));
      return true;
    }
    return (await this.zeroFillProgress(hourStart)).done;
  }

  /**
   * How far an hour's zero fill got: done, or the Customers scan position to resume from
   * (undefined: from the start).
   */
  async zeroFillProgress(hourStart: string): Promise<{ done: boolean; resumeKey?: Record<string, unknown> }> {
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: this.zeroFillKey(hourStart), ConsistentRead: true }));
    if (!Item) return { done: false };
    // `filledAt` marks a finished hour (the only field of marks written before fills were resumable).
    if (Item.filledAt !== undefined) return { done: true };
    return { done: false, resumeKey: Item.resumeKey as Record<string, unknown> | undefined };
  }

  /** The mark of an hour's zero fill: its scan position while under way, `filledAt` once done. */
  private zeroFillKey(hourStart: string): Record<string, string> {
    return { [Schema.partitionKey]: `zero-fill#${hourStart}` };
  }

  /** Stores where an hour's zero fill stopped in the Customers scan; never undoes an hour marked done. */
  async saveZeroFillProgress(hourStart: string, resumeKey: Record<string, unknown>, at: Date): Promise<void> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...this.zeroFillKey(hourStart), resumeKey, progressAt: at.toISOString() },
          ConditionExpression: 'attribute_not_exists(filledAt)',
        }),
      );
    } catch (error) {
      if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
    }
  }

  async recordAttempt(bucketKeys: readonly string[], at: Date): Promise<void> {
    await Promise.all(
      bucketKeys.map((bucketKey) => this.change(bucketKey, (item) => ({ ...item, lastAttemptAt: at.toISOString(), attempts: Number(item.attempts ?? 0) + 1 }))),
    );
  }

  async recordMetered(bucketKey: string, meteringRecordId: string, at: Date): Promise<void> {
    await this.finish(bucketKey, 'metered', { outcome: 'Success', meteringRecordId, meteredAt: at.toISOString() });
  }

  async recordFailed(bucketKey: string, reason: string, message: string, at: Date): Promise<void> {
    await this.finish(bucketKey, 'failed', { outcome: reason, failureMessage: message, failedAt: at.toISOString() });
  }

  async recordHeld(bucketKey: string, reason: string, at: Date): Promise<void> {
    await this.change(bucketKey, (item) => ({ ...item, outcome: reason, heldAt: at.toISOString() }));
  }

  /** Final status; the bucket leaves the work index. */
  private async finish(bucketKey: string, status: 'metered' | 'failed', fields: Record<string, string>): Promise<void> {
    await this.change(bucketKey, (item) => {
      const { [Schema.workIndex.partitionKey]: _leaves, ...rest } = item;
      return { ...rest, ...fields, status };
    });
  }

  /**
   * Writes a new image of a bucket. Changes of one bucket wait for the one before (a change never
   * builds on an image that was not written); changes of different buckets asked for in the same
   * turn of the event loop (a request's 25 outcomes) go out together in BatchWriteItem calls.
   */
  private change(bucketKey: string, next: (item: Record<string, unknown>) => Record<string, unknown>): Promise<void> {
    const previous = this.tails.get(bucketKey) ?? Promise.resolve();
    const write = previous
      .catch(() => undefined)
      .then(async () => {
        let image = this.images.get(bucketKey);
        if (!image) {
          const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: bucketItemKey(bucketKey), ConsistentRead: true }));
          if (!Item) throw new Error(`no bucket ${bucketKey} in the Metering ledger`);
          image = Item;
        }
        const item = next(image);
        this.images.set(bucketKey, item);
        await this.enqueue(bucketKey, item);
      });
    this.tails.set(bucketKey, write);
    const forget = () => {
      if (this.tails.get(bucketKey) === write) this.tails.delete(bucketKey);
    };
    write.then(forget, forget);
    return write;
  }

  private enqueue(bucketKey: string, item: Record<string, unknown>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued.set(bucketKey, { item, waiters: [{ resolve, reject }] });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => void this.flushQueued());
      }
    });
  }

  private async flushQueued(): Promise<void> {
    const batch = [...this.queued.values()];
    this.queued.clear();
    this.flushScheduled = false;
    try {
      await batchWrite(this.client, this.tableName, batch.map((b) => b.item));
      for (const { waiters } of batch) for (const w of waiters) w.resolve();
    } catch (error) {
      // What was not written must be read again before it is changed.
      for (const { item } of batch) if (this.images.get(String(item.bucketKey)) === item) this.images.delete(String(item.bucketKey));
      for (const { waiters } of batch) for (const w of waiters) w.reject(error);
    }
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
