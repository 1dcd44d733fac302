import { createHash } from 'node:crypto';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, paginateQuery, PutCommand, TransactWriteCommand, TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { FoldedBucket } from '../core/metering/fold';
import { HourJournal } from '../core/metering/fold-hours';
import { backoffDelayMs } from '../core/metering/pacing';
import { UsageJournalSchema as Schema } from '../core/usage-journal-schema';
import { AppendOutcome, entryIdOf, JournalEntry, journalShardOf, UsageJournal } from '../core/usage/usage-journal';
import { sealedBucketItem } from './bucket-items';

/**
 * The usage journal in DynamoDB (keys: usage-journal-schema.ts). An entry is written in one
 * transaction with a check that its hour's seal (of the entry's shard) does not exist, so once the
 * metering run has sealed an hour, a strongly consistent read of its entries is complete.
 */

type TransactItems = NonNullable<TransactWriteCommandInput['TransactItems']>;

const CONFLICT_RETRIES = 8;
/** Counted-key hashes per item: 8 bytes each, well under DynamoDB's 400 KB item limit. */
const HASHES_PER_ITEM = 40_000;
/** Entry ids per early-metering record item. */
const ENTRY_IDS_PER_ITEM = 5_000;

const key = (pk: string, sk: string) => ({ [Schema.partitionKey]: pk, [Schema.sortKey]: sk });
const entryPartition = (hourStart: string, shard: number) => `entry#${hourStart}#${shard}`;
const shardOfMessage = (messageId: string) => journalShardOf(messageId, Schema.shards);

export class DynamoDbUsageJournal implements UsageJournal, HourJournal {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    /** The Metering ledger table: early metering writes its buckets there (not needed to append). */
    private readonly ledgerTableName?: string,
  ) {}

  async append(entries: readonly JournalEntry[]): Promise<AppendOutcome[]> {
    return Promise.all(entries.map((entry) => this.appendOne(entry)));
  }

  private async appendOne(entry: JournalEntry): Promise<AppendOutcome> {
    const shard = shardOfMessage(entry.messageId);
    const expiresAt = this.expiry(new Date(entry.writtenAt));
    const notExists = { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': Schema.partitionKey } };
    const items: TransactItems = [];
    if (entry.rolledFrom !== undefined) {
      // A late entry leaves a placeholder under its own hour: a redelivery, however late, finds it.
      items.push({
        Put: { TableName: this.tableName, Item: { ...key(entryPartition(entry.rolledFrom, shard), entry.messageId), countedIn: entry.hourStart, expiresAt }, ...notExists },
      });
    }
    items.push({
      Put: {
        TableName: this.tableName,
        Item: {
          ...key(entryPartition(entry.hourStart, shard), entryIdOf(entry)),
          messageId: entry.messageId,
          hourStart: entry.hourStart,
          ...(entry.rolledFrom === undefined ? {} : { rolledFrom: entry.rolledFrom }),
          // One string, not nested maps: smaller to store and far cheaper to (un)marshal.
          usage: JSON.stringify({ customers: entry.customers, events: entry.events }),
          writtenAt: entry.writtenAt,
          expiresAt,
        },
        ...notExists,
      },
    });
    items.push({
      ConditionCheck: {
        TableName: this.tableName,
        Key: key(`seal#${entry.hourStart}`, String(shard)),
        ConditionExpression: 'attribute_not_exists(sealedAt)',
      },
    });
    for (let conflicts = 0; ; conflicts++) {
      try {
        await this.client.send(new TransactWriteCommand({ TransactItems: items }));
        return 'appended';
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const codes = (error.CancellationReasons ?? []).map((r) => r.Code);
        // The entry (or its placeholder) exists: a redelivery, whatever the seal says.
        if (codes.slice(0, -1).includes('ConditionalCheckFailed')) return 'duplicate';
        if (codes[codes.length - 1] === 'ConditionalCheckFailed') return 'sealed';
        if (!codes.includes('TransactionConflict') || conflicts === CONFLICT_RETRIES) throw error;
        await new Promise((r) => setTimeout(r, backoffDelayMs(conflicts, { baseMs: 20, capMs: 1000 })));
      }
    }
  }

  async seal(hourStart: string, at: Date): Promise<void> {
    await Promise.all(
      Array.from({ length: Schema.shards }, (_, shard) =>
        this.withConflictRetries(() =>
          this.client.send(
            new PutCommand({ TableName: this.tableName, Item: { ...key(`seal#${hourStart}`, String(shard)), sealedAt: at.toISOString(), expiresAt: this.expiry(at) } }),
          ),
        ),
      ),
    );
  }

  async entries(hourStart: string): Promise<JournalEntry[]> {
    const shards = await Promise.all(Array.from({ length: Schema.shards }, (_, shard) => this.query(entryPartition(hourStart, shard))));
    const entries: JournalEntry[] = [];
    for (const item of shards.flat()) {
      // Placeholders of late entries carry no usage.
      if (typeof item.usage !== 'string') continue;
      const usage = JSON.parse(item.usage) as Pick<JournalEntry, 'customers' | 'events'>;
      entries.push({
        messageId: String(item.messageId),
        hourStart: String(item.hourStart),
        ...(item.rolledFrom === undefined ? {} : { rolledFrom: String(item.rolledFrom) }),
        customers: usage.customers,
        events: usage.events,
        writtenAt: String(item.writtenAt),
      });
    }
    return entries;
  }

  async flushes(hourStart: string): Promise<Map<string, Set<string>>> {
    const flushed = new Map<string, Set<string>>();
    for (const item of await this.query(`flush#${hourStart}`)) {
      const customerKey = String(item.customerKey);
      let ids = flushed.get(customerKey);
      if (!ids) flushed.set(customerKey, (ids = new Set()));
      for (const id of item.entryIds as string[]) ids.add(id);
    }
    return flushed;
  }

  async recordFlush(hourStart: string, customerKey: string, entryIds: readonly string[], buckets: readonly FoldedBucket[], at: Date): Promise<'recorded' | 'exists'> {
    if (!this.ledgerTableName) throw new Error('the usage journal was created without the Metering ledger table');
    const parts: string[][] = [];
    for (let i = 0; i < entryIds.length; i += ENTRY_IDS_PER_ITEM) parts.push(entryIds.slice(i, i + ENTRY_IDS_PER_ITEM));
    if (parts.length + buckets.length > 100) {
      throw new Error(`early metering of ${customerKey} for ${hourStart}: ${entryIds.length} entries and ${buckets.length} buckets do not fit one transaction`);
    }
    const notExists = { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': 'pk' } };
    const items: TransactItems = [
      ...parts.map((ids, part) => ({
        Put: { TableName: this.tableName, Item: { ...key(`flush#${hourStart}`, `${customerKey}#${part}`), customerKey, entryIds: ids, flushedAt: at.toISOString(), expiresAt: this.expiry(at) }, ...notExists },
      })),
      ...buckets.map((bucket) => ({ Put: { TableName: this.ledgerTableName, Item: sealedBucketItem(bucket, at), ...notExists } })),
    ];
    try {
      await this.withConflictRetries(() => this.client.send(new TransactWriteCommand({ TransactItems: items })));
      return 'recorded';
    } catch (error) {
      if (error instanceof TransactionCanceledException && (error.CancellationReasons ?? []).some((r) => r.Code === 'ConditionalCheckFailed')) return 'exists';
      throw error;
    }
  }

  async counted(hours: readonly string[]): Promise<(countedKey: string) => boolean> {
    const hashes = new Set<string>();
    for (const hourStart of hours) {
      for (const item of await this.query(`counted#${hourStart}`)) {
        const bytes = Buffer.from(item.hashes as Uint8Array);
        for (let i = 0; i + 8 <= bytes.length; i += 8) hashes.add(bytes.toString('hex', i, i + 8));
      }
    }
    return (countedKey) => hashes.has(hashOf(countedKey).toString('hex'));
  }

  async recordCounted(hourStart: string, countedKeys: readonly string[]): Promise<void> {
    const at = new Date();
    for (let part = 0; part * HASHES_PER_ITEM < countedKeys.length; part++) {
      const slice = countedKeys.slice(part * HASHES_PER_ITEM, (part + 1) * HASHES_PER_ITEM);
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...key(`counted#${hourStart}`, String(part)), hashes: Buffer.concat(slice.map(hashOf)), expiresAt: this.expiry(at) },
        }),
      );
    }
  }

  async foldedThrough(): Promise<string | undefined> {
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: key('folded', 'through'), ConsistentRead: true }));
    return Item?.hourStart as string | undefined;
  }

  async markFolded(hourStart: string, at: Date): Promise<void> {
    await this.client.send(new PutCommand({ TableName: this.tableName, Item: { ...key('folded', 'through'), hourStart, foldedAt: at.toISOString() } }));
  }

  private async query(partition: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    const pages = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': Schema.partitionKey },
        ExpressionAttributeValues: { ':pk': partition },
        ConsistentRead: true,
      },
    );
    for await (const page of pages) items.push(...(page.Items ?? []));
    return items;
  }

  /** Retries a write that an in-flight ingestion transaction on the same item made DynamoDB refuse. */
  private async withConflictRetries<T>(write: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await write();
      } catch (error) {
        const name = (error as Error).name;
        const conflict =
          name === 'TransactionConflictException' ||
          (error instanceof TransactionCanceledException && (error.CancellationReasons ?? []).some((r) => r.Code === 'TransactionConflict'));
        if (!conflict || attempt === CONFLICT_RETRIES) throw error;
        await new Promise((r) => setTimeout(r, backoffDelayMs(attempt, { baseMs: 20, capMs: 1000 })));
      }
    }
  }

  private expiry(at: Date): number {
    return Math.floor(at.getTime() / 1000) + Schema.lifetimeSeconds;
  }
}

function hashOf(countedKey: string): Buffer {
  return createHash('sha1').update(countedKey).digest().subarray(0, 8);
}
