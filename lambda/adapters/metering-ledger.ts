import { createHash } from 'node:crypto';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, paginateQuery, PutCommand, TransactWriteCommand, TransactWriteCommandInput, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { BucketIdentity, HourBucket } from '../core/metering/hour-bucket';
import { MeteringLedger } from '../core/metering/metering-run';
import { MeteringTableSchema as Schema } from '../core/metering-table-schema';
import { AddUsageOutcome, UsageAddition, UsageLedger } from '../core/usage/ingest';
import { BucketWrite, planUsageWrites, UsageTransaction } from '../core/usage/usage-writes';
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
   * Writes the additions as planned (usage-writes.ts): each transaction holds bucket updates and the
   * markers of their events. A cancelled transaction says which items failed: those additions get
   * their outcome (`duplicate`, `sealed`, `too-large`) and the rest are written again. Concurrent
   * writers on one bucket make DynamoDB cancel all but one (TransactionConflict): those are tried
   * again after a short random pause.
   */
  async addUsage(additions: readonly UsageAddition[]): Promise<AddUsageOutcome[]> {
    // A transaction may not write one marker twice: an event repeated in the same call waits for
    // its first copy, and is a duplicate unless that copy was refused.
    const firsts = new Map<string, UsageAddition>();
    const repeats: UsageAddition[] = [];
    for (const addition of additions) {
      if (firsts.has(addition.eventKey)) repeats.push(addition);
      else firsts.set(addition.eventKey, addition);
    }
    const outcomes = await this.addDistinctUsage([...firsts.values()]);
    const again = repeats.filter((repeat) => {
      const first = outcomes.get(firsts.get(repeat.eventKey)!);
      if (first === 'added' || first === 'duplicate') outcomes.set(repeat, 'duplicate');
      return !outcomes.has(repeat);
    });
    if (again.length > 0) (await this.addUsage(again)).forEach((outcome, i) => outcomes.set(again[i], outcome));
    return additions.map((a) => outcomes.get(a)!);
  }

  private async addDistinctUsage(additions: readonly UsageAddition[]): Promise<Map<UsageAddition, AddUsageOutcome>> {
    const outcomes = new Map<UsageAddition, AddUsageOutcome>();
    const alone = new Set<UsageAddition>();
    let conflicts = 0;
    for (let pending = additions; pending.length > 0; pending = pending.filter((a) => !outcomes.has(a))) {
      const transactions = planUsageWrites(pending, { alone });
      const results = await Promise.all(transactions.map((transaction) => this.tryTransaction(transaction)));
      let conflicted = false;
      results.forEach((result, i) => {
        if (result === 'written') {
          for (const write of transactions[i]) for (const addition of write.additions) outcomes.set(addition, 'added');
          return;
        }
        for (const [addition, outcome] of result.outcomes) outcomes.set(addition, outcome);
        for (const addition of result.alone) alone.add(addition);
        conflicted ||= result.conflict;
      });
      if (conflicted) {
        if (conflicts === CONFLICT_RETRIES) throw new Error(`TransactionConflict on ${pending[0].bucket.bucketKey} after ${CONFLICT_RETRIES} retries`);
        await new Promise((r) => setTimeout(r, backoffDelayMs(conflicts++, { baseMs: 20, capMs: 1000 })));
      }
    }
    return outcomes;
  }

  private async tryTransaction(transaction: UsageTransaction): Promise<'written' | CancelledWrite> {
    const items: NonNullable<TransactWriteCommandInput['TransactItems']> = [];
    for (const write of transaction) {
      for (const addition of write.additions) items.push({ Put: this.markerPut(addition) });
      items.push({ Update: this.bucketUpdate(write) });
    }
    try {
      await this.client.send(new TransactWriteCommand({ TransactItems: items }));
      return 'written';
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const cancelled = readCancellation(transaction, (error.CancellationReasons ?? []).map((r) => r.Code));
      // Nothing to learn from (a throttled item, say): the message is retried by SQS.
      if (cancelled.outcomes.size === 0 && cancelled.alone.length === 0 && !cancelled.conflict) throw error;
      return cancelled;
    }
  }

  private markerPut(addition: UsageAddition) {
    return {
      TableName: this.tableName,
      Item: {
        [Schema.partitionKey]: `${EVENT}${addition.eventKey}`,
        bucketKey: addition.bucket.bucketKey,
        quantity: addition.quantity,
        countedAt: addition.at.toISOString(),
        [Schema.ttlAttribute]: Math.floor(addition.at.getTime() / 1000) + Schema.markerLifetimeSeconds,
      },
      ConditionExpression: 'attribute_not_exists(#pk)',
      ExpressionAttributeNames: { '#pk': Schema.partitionKey },
    };
  }

  /** Adds a write's quantity, event count and allocations to its bucket, creating it open if new. */
  private bucketUpdate(write: BucketWrite) {
    const { bucket } = write;
    const at = write.additions[write.additions.length - 1].at.toISOString();
    const names: Record<string, string> = { '#status': 'status', '#quantity': 'quantity', '#state': 'meteringState' };
    const values: Record<string, unknown> = { ':open': 'open', ':q': write.quantity, ':events': write.additions.length, ':at': at, ':state': `open#${shardOf(bucket.bucketKey)}` };
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
    const add = ['#quantity :q', 'usageEvents :events'];
    Object.entries(write.allocations).forEach(([tagSet, quantity], i) => {
      names[`#a${i}`] = `${ALLOCATION}${tagSet}`;
      values[`:a${i}`] = quantity;
      add.push(`#a${i} :a${i}`);
    });
    return {
      TableName: this.tableName,
      Key: { [Schema.partitionKey]: `${BUCKET}${bucket.bucketKey}` },
      UpdateExpression: `SET ${set.join(', ')} ADD ${add.join(', ')}`,
      ConditionExpression: 'attribute_not_exists(#status) OR #status = :open',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    };
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

interface CancelledWrite {
  /** Additions settled by the cancellation: their markers exist, or their bucket refused them. */
  readonly outcomes: Map<UsageAddition, AddUsageOutcome>;
  /** Additions whose merged bucket update was too large: each is tried on its own. */
  readonly alone: readonly UsageAddition[];
  /** Another writer held an item: the rest is tried again after a pause. */
  readonly conflict: boolean;
}

/**
 * What a cancelled usage transaction says, item by item (its reasons are in the order of the items:
 * each write's markers, then its bucket update). A marker that exists makes its event a duplicate,
 * whatever the bucket says; a bucket that is no longer open refuses the write's other events.
 */
export function readCancellation(transaction: UsageTransaction, codes: readonly (string | undefined)[]): CancelledWrite {
  const outcomes = new Map<UsageAddition, AddUsageOutcome>();
  const alone: UsageAddition[] = [];
  let conflict = false;
  let item = 0;
  for (const write of transaction) {
    const fresh: UsageAddition[] = [];
    for (const addition of write.additions) {
      const code = codes[item++];
      conflict ||= code === 'TransactionConflict';
      if (code === 'ConditionalCheckFailed') outcomes.set(addition, 'duplicate');
      else fresh.push(addition);
    }
    const code = codes[item++];
    conflict ||= code === 'TransactionConflict';
    if (code === 'ConditionalCheckFailed') {
      for (const addition of fresh) outcomes.set(addition, 'sealed');
    } else if (code === 'ValidationError') {
      // The bucket item would pass DynamoDB's 400 KB limit.
      if (fresh.length === 1) outcomes.set(fresh[0], 'too-large');
      else alone.push(...fresh);
    }
  }
  return { outcomes, alone, conflict };
}
