import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, paginateQuery, PutCommand, TransactWriteCommand, TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { FoldedBucket, FoldRejection } from '../core/metering/fold';
import { EarlyMetering, HourJournal } from '../core/metering/fold-hours';
import { FinalUsageFlush } from '../core/lifecycle/subscription-state';
import { backoffDelayMs } from '../core/metering/pacing';
import { UsageJournalSchema as Schema } from '../core/usage-journal-schema';
import { AppendOutcome, entryBytes, entryIdOf, JournalEntry, journalShardOf, UsageJournal } from '../core/usage/usage-journal';
import { batchWrite } from './batch-requests';
import { sealedBucketItem } from './bucket-items';
import { decodeUsage, encodeUsage } from './journal-usage-codec';
import { jsonStringPrefix } from './dead-letter-queue';
import { Rejection, RejectionReason } from '../core/usage/usage-event';

/**
 * The usage journal in DynamoDB (keys: usage-journal-schema.ts). An entry is written in one
 * transaction with a check that its hour's seal (of the entry's shard) does not exist, so once the
 * metering run has sealed an hour, a strongly consistent read of its entries is complete.
 */

type TransactItems = NonNullable<TransactWriteCommandInput['TransactItems']>;

const CONFLICT_RETRIES = 8;
/** Customers whose access ended, by when their final usage is due to be sealed. */
const FINAL_USAGE_PARTITION = 'final-usage';

/** A customer's final usage, to be sealed and metered once due. */
/** Entry ids per early-metering record item. */
const ENTRY_IDS_PER_ITEM = 5_000;

const key = (pk: string, sk: string) => ({ [Schema.partitionKey]: pk, [Schema.sortKey]: sk });
const entryPartition = (hourStart: string, shard: number) => `entry#${hourStart}#${shard}`;
const shardOfMessage = (messageId: string) => journalShardOf(messageId, Schema.shards);
/** A transaction checks one seal per hour it writes to. */
const sealKey = (entry: JournalEntry) => entry.hourStart;

const refusedPartition = (messageId: string) => `refused#${messageId}`;
/** A refusal's explanation, as kept for a redelivery's dead letter: 100 of them fit an item. */
const MAX_REFUSAL_MESSAGE_BYTES = 1000;

/** Hours read at once for a redelivered message (storedPositions). */
const STORED_POSITION_QUERIES_IN_FLIGHT = 8;

/** DynamoDB TransactWriteItems: items per transaction. */
const MAX_TRANSACTION_ITEMS = 100;
/** Entry bytes per transaction, well under its 4 MB limit. */
const MAX_TRANSACTION_BYTES = 3_000_000;

/** Packs entries into transactions: each entry's Puts plus the seal checks the transaction needs. */
function packTransactions(entries: readonly JournalEntry[]): JournalEntry[][] {
  const transactions: JournalEntry[][] = [];
  let current: JournalEntry[] = [];
  let items = 0;
  let bytes = 0;
  let seals = new Set<string>();
  for (const entry of entries) {
    const puts = entry.rolledFrom === undefined ? 1 : 2;
    const size = entryBytes(entry);
    const newSeal = seals.has(sealKey(entry)) ? 0 : 1;
    if (current.length > 0 && (items + puts + newSeal > MAX_TRANSACTION_ITEMS || bytes + size > MAX_TRANSACTION_BYTES)) {
      transactions.push(current);
      current = [];
      items = 0;
      bytes = 0;
      seals = new Set();
    }
    current.push(entry);
    items += puts + (seals.has(sealKey(entry)) ? 0 : 1);
    bytes += size;
    seals.add(sealKey(entry));
  }
  if (current.length > 0) transactions.push(current);
  return transactions;
}

export class DynamoDbUsageJournal implements UsageJournal, HourJournal {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    /** The Metering ledger table: early metering writes its buckets there (not needed to append). */
    private readonly ledgerTableName?: string,
    /** Picks the seal each transaction checks. @default Math.random */
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * Writes the entries in as few transactions as fit (100 items each: every entry's Put, a late
   * entry's placeholder, and one seal check per hour and shard). A cancelled transaction says which
   * items failed: those entries get their outcome and the others are written again.
   */
  async append(entries: readonly JournalEntry[]): Promise<AppendOutcome[]> {
    const outcomes = new Map<JournalEntry, AppendOutcome>();
    // The same entry twice in one call (SQS may deliver a message twice in a batch): the copy
    // shares the first one's fate, as a duplicate. By position: the same object may come twice.
    const firstOf = new Map<string, JournalEntry>();
    const copyOf: (JournalEntry | undefined)[] = entries.map((entry) => {
      const id = `${entry.hourStart}|${entryIdOf(entry)}`;
      const first = firstOf.get(id);
      if (first) return first;
      firstOf.set(id, entry);
      return undefined;
    });
    let pending = [...firstOf.values()];
    for (let conflicts = 0; pending.length > 0; ) {
      const results = await Promise.all(packTransactions(pending).map((batch) => this.tryAppend(batch)));
      let conflicted = false;
      for (const result of results) {
        for (const [entry, outcome] of result.settled) outcomes.set(entry, outcome);
        conflicted ||= result.conflict;
      }
      pending = pending.filter((entry) => !outcomes.has(entry));
      if (pending.length > 0 && conflicted) {
        if (conflicts === CONFLICT_RETRIES) throw new Error(`TransactionConflict appending to the usage journal after ${CONFLICT_RETRIES} retries`);
        await new Promise((r) => setTimeout(r, backoffDelayMs(conflicts++, { baseMs: 20, capMs: 1000 })));
      }
    }
    return entries.map((entry, i) => {
      const first = copyOf[i];
      if (first === undefined) return outcomes.get(entry)!;
      return outcomes.get(first) === 'sealed' ? 'sealed' : 'duplicate';
    });
  }

  /** One transaction: every entry is settled, or none is and `conflict` says whether to try again. */
  private async tryAppend(entries: readonly JournalEntry[]): Promise<{ settled: Map<JournalEntry, AppendOutcome>; conflict: boolean }> {
    const items: TransactItems = [];
    const owners: { entry?: JournalEntry; seal?: string }[] = [];
    const seals = new Map<string, JournalEntry[]>();
    for (const entry of entries) {
      for (const put of this.entryPuts(entry)) {
        items.push({ Put: put });
        owners.push({ entry });
      }
      const seal = sealKey(entry);
      const sharing = seals.get(seal);
      if (sharing) sharing.push(entry);
      else seals.set(seal, [entry]);
    }
    for (const hourStart of seals.keys()) {
      // Any seal of the hour will do: sealing writes them all before the hour is read.
      const shard = String(Math.floor(this.random() * Schema.sealShards));
      items.push({ ConditionCheck: { TableName: this.tableName, Key: key(`seal#${hourStart}`, shard), ConditionExpression: 'attribute_not_exists(sealedAt)' } });
      owners.push({ seal: hourStart });
    }
    const settled = new Map<JournalEntry, AppendOutcome>();
    try {
      await this.client.send(new TransactWriteCommand({ TransactItems: items }));
      for (const entry of entries) settled.set(entry, 'appended');
      return { settled, conflict: false };
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const codes = (error.CancellationReasons ?? []).map((r) => r.Code);
      let conflict = false;
      codes.forEach((code, i) => {
        conflict ||= code === 'TransactionConflict';
        if (code !== 'ConditionalCheckFailed') return;
        const owner = owners[i];
        // The entry (or its placeholder) exists: a redelivery, whatever the seal says.
        if (owner.entry) settled.set(owner.entry, 'duplicate');
      });
      codes.forEach((code, i) => {
        const seal = owners[i]?.seal;
        if (code !== 'ConditionalCheckFailed' || !seal) return;
        for (const entry of seals.get(seal)!) if (!settled.has(entry)) settled.set(entry, 'sealed');
      });
      // Nothing to learn from (a throttled item, say): the messages are retried by SQS.
      if (settled.size === 0 && !conflict) throw error;
      return { settled, conflict };
    }
  }

  /**
   * Positions of the message's events in its entries of `hours` and, through the placeholders
   * there, of the hours its late entries were counted in: one query per hour (the message's shard).
   */
  async storedPositions(messageId: string, hours: readonly string[]): Promise<ReadonlySet<number>> {
    const shard = shardOfMessage(messageId);
    const positions = new Set<number>();
    const read = new Set<string>();
    const readHour = async (hour: string) => {
      const countedIn: string[] = [];
      for await (const page of this.pages(entryPartition(hour, shard), messageId)) {
        for (const item of page.Items ?? []) {
          const entryId = String(item[Schema.sortKey]);
          // Another message whose id starts with this one's.
          if (entryId !== messageId && !entryId.startsWith(`${messageId}#`)) continue;
          if (typeof item.usage === 'string') for (const event of decodeUsage(item.usage).events) positions.add(event.p);
          else if (typeof item.countedIn === 'string') countedIn.push(item.countedIn);
        }
      }
      return countedIn;
    };
    // A few hours at a time (a backfill message may span many), then the hours late entries went to.
    for (let toRead = [...new Set(hours)]; toRead.length > 0; ) {
      const wave = toRead.splice(0, STORED_POSITION_QUERIES_IN_FLIGHT).filter((hour) => !read.has(hour));
      for (const hour of wave) read.add(hour);
      for (const more of await Promise.all(wave.map(readHour))) toRead.push(...more.filter((hour) => !read.has(hour)));
    }
    return positions;
  }

  /**
   * One item per set of refused positions (`refused#<message id>` / the positions): a delivery that
   * refuses what an earlier one did writes the same item again, never a conflicting one.
   */
  async recordRefused(messageId: string, refused: ReadonlyMap<number, Rejection>, at: Date): Promise<void> {
    const positions = [...refused.keys()].sort((a, b) => a - b);
    const events = positions.map((p) => {
      const { reason, message } = refused.get(p)!;
      return { p, reason, message: jsonStringPrefix(message, MAX_REFUSAL_MESSAGE_BYTES) };
    });
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: { ...key(refusedPartition(messageId), positions.join(',')), refused: JSON.stringify(events), expiresAt: this.expiry(at) },
      }),
    );
  }

  async refusedPositions(messageId: string): Promise<ReadonlyMap<number, Rejection>> {
    const refused = new Map<number, Rejection>();
    for (const item of await this.query(refusedPartition(messageId))) {
      if (typeof item.refused !== 'string') continue;
      for (const { p, reason, message } of JSON.parse(item.refused) as { p: number; reason: RejectionReason; message: string }[]) {
        if (!refused.has(p)) refused.set(p, { reason, message });
      }
    }
    return refused;
  }

  /** The entry's item, after a late entry's placeholder under its own hour. */
  private entryPuts(entry: JournalEntry) {
    const shard = shardOfMessage(entry.messageId);
    const expiresAt = this.expiry(new Date(entry.writtenAt));
    const notExists = { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': Schema.partitionKey } };
    const puts = [];
    if (entry.rolledFrom !== undefined) {
      // A redelivery, however late, finds the placeholder.
      const ownId = entryIdOf({ messageId: entry.messageId, part: entry.part, supplement: entry.supplement });
      puts.push({ TableName: this.tableName, Item: { ...key(entryPartition(entry.rolledFrom, shard), ownId), countedIn: entry.hourStart, expiresAt }, ...notExists });
    }
    puts.push({
      TableName: this.tableName,
      Item: {
        ...key(entryPartition(entry.hourStart, shard), entryIdOf(entry)),
        messageId: entry.messageId,
        hourStart: entry.hourStart,
        ...(entry.rolledFrom === undefined ? {} : { rolledFrom: entry.rolledFrom }),
        ...(entry.part === undefined ? {} : { part: entry.part }),
        ...(entry.supplement === undefined ? {} : { supplement: entry.supplement }),
        // One compact string, not nested maps: smaller to store and far cheaper to (un)marshal.
        usage: encodeUsage(entry),
        writtenAt: entry.writtenAt,
        expiresAt,
      },
      ...notExists,
    });
    return puts;
  }

  /** Seals several hours with BatchWriteItem (25 seals a call): the first fold seals a whole day. */
  async sealHours(hours: readonly string[], at: Date): Promise<void> {
    const requests = hours.flatMap((hourStart) =>
      Array.from({ length: Schema.sealShards }, (_, shard) => ({ ...key(`seal#${hourStart}`, String(shard)), sealedAt: at.toISOString(), expiresAt: this.expiry(at) })),
    );
    await batchWrite(this.client, this.tableName, requests);
  }

  /** All entries of the hour, in the order readEntries gives them. */
  async entries(hourStart: string): Promise<JournalEntry[]> {
    const entries: JournalEntry[] = [];
    for await (const entry of this.readEntries(hourStart)) entries.push(entry);
    return entries;
  }

  /**
   * The hour's entries, strongly consistent, in entry id order: the shards' queries (each sorted by
   * entry id) merged, a page per shard in memory plus the next one being fetched, each entry decoded
   * as it is handed out. A sealed hour gives the same entries in the same order every time.
   */
  async *readEntries(hourStart: string): AsyncGenerator<JournalEntry> {
    const shards = Array.from({ length: Schema.shards }, (_, shard) => new ShardReader(this.pages(entryPartition(hourStart, shard))));
    await Promise.all(shards.map((reader) => reader.ready()));
    for (;;) {
      let next: ShardReader | undefined;
      for (const reader of shards) {
        if (reader.head !== undefined && (next === undefined || String(reader.head[Schema.sortKey]) < String(next.head![Schema.sortKey]))) next = reader;
      }
      if (next === undefined) return;
      const item = next.head!;
      await next.advance();
      // Placeholders of late entries carry no usage.
      if (typeof item.usage !== 'string') continue;
      const usage = decodeUsage(item.usage);
      yield {
        messageId: String(item.messageId),
        hourStart: String(item.hourStart),
        ...(item.rolledFrom === undefined ? {} : { rolledFrom: String(item.rolledFrom) }),
        ...(item.part === undefined ? {} : { part: Number(item.part) }),
        ...(item.supplement === undefined ? {} : { supplement: Number(item.supplement) }),
        customers: usage.customers,
        events: usage.events,
        writtenAt: String(item.writtenAt),
      };
    }
  }

  async flushes(hourStart: string): Promise<Map<string, EarlyMetering>> {
    const flushed = new Map<string, { entryIds: Set<string>; rejected: FoldRejection[] }>();
    for (const item of await this.query(`flush#${hourStart}`)) {
      const customerKey = String(item.customerKey);
      let record = flushed.get(customerKey);
      if (!record) flushed.set(customerKey, (record = { entryIds: new Set(), rejected: [] }));
      for (const id of item.entryIds as string[]) record.entryIds.add(id);
      if (typeof item.rejected === 'string') record.rejected.push(...(JSON.parse(item.rejected) as FoldRejection[]));
    }
    return flushed;
  }

  async recordFlush(hourStart: string, customerKey: string, early: { entryIds: readonly string[]; rejected: readonly FoldRejection[] }, buckets: readonly FoldedBucket[], at: Date): Promise<'recorded' | 'exists'> {
    const { entryIds, rejected } = early;
    if (!this.ledgerTableName) throw new Error('the usage journal was created without the Metering ledger table');
    const parts: string[][] = [];
    for (let i = 0; i < Math.max(1, entryIds.length); i += ENTRY_IDS_PER_ITEM) parts.push(entryIds.slice(i, i + ENTRY_IDS_PER_ITEM));
    if (parts.length + buckets.length > 100) {
      throw new Error(`early metering of ${customerKey} for ${hourStart}: ${entryIds.length} entries and ${buckets.length} buckets do not fit one transaction`);
    }
    const notExists = { ConditionExpression: 'attribute_not_exists(#pk)', ExpressionAttributeNames: { '#pk': 'pk' } };
    const items: TransactItems = [
      ...parts.map((ids, part) => ({
        Put: {
          TableName: this.tableName,
          Item: {
            ...key(`flush#${hourStart}`, `${customerKey}#${part}`),
            customerKey,
            hourStart,
            entryIds: ids,
            // Events the early metering refused: dead-lettered when the hour is folded.
            ...(part === 0 && rejected.length > 0 ? { rejected: JSON.stringify(rejected) } : {}),
            flushedAt: at.toISOString(),
            expiresAt: this.expiry(at),
          },
          ...notExists,
        },
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

  /** Remembers that the customer's final usage is to be sealed at `dueAt` (the metering run does it). */
  async scheduleFinalUsage({ customerKey, dueAt, sealsThrough, statusVersion }: FinalUsageFlush, at: Date): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          ...key(FINAL_USAGE_PARTITION, `${dueAt}#${customerKey}`),
          customerKey,
          dueAt,
          ...(sealsThrough === undefined ? {} : { sealsThrough }),
          ...(statusVersion === undefined ? {} : { statusVersion }),
          expiresAt: this.expiry(at),
        },
      }),
    );
  }

  /** Final usage flushes due by `now`, earliest first. */
  async finalUsageDue(now: Date): Promise<FinalUsageFlush[]> {
    const due: FinalUsageFlush[] = [];
    const pages = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        // Sort keys start with the due time (ISO 8601, so they sort as times): those up to now.
        KeyConditionExpression: '#pk = :pk AND #sk < :after',
        ExpressionAttributeNames: { '#pk': Schema.partitionKey, '#sk': Schema.sortKey },
        ExpressionAttributeValues: { ':pk': FINAL_USAGE_PARTITION, ':after': `${now.toISOString()}$` },
        ConsistentRead: true,
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) {
        due.push({
          customerKey: String(item.customerKey),
          dueAt: String(item.dueAt),
          ...(typeof item.sealsThrough === 'string' ? { sealsThrough: item.sealsThrough } : {}),
          ...(typeof item.statusVersion === 'string' ? { statusVersion: item.statusVersion } : {}),
        });
      }
    }
    return due;
  }

  /** The flush is done: its customer's usage is sealed. */
  async forgetFinalUsage(flush: FinalUsageFlush): Promise<void> {
    await this.client.send(new DeleteCommand({ TableName: this.tableName, Key: key(FINAL_USAGE_PARTITION, `${flush.dueAt}#${flush.customerKey}`) }));
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
    for await (const page of this.pages(partition)) items.push(...(page.Items ?? []));
    return items;
  }

  /** A partition's items (those whose sort key starts with `prefix`), a page at a time, in sort key order (strongly consistent). */
  private pages(partition: string, prefix?: string) {
    return paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        KeyConditionExpression: prefix === undefined ? '#pk = :pk' : '#pk = :pk AND begins_with(#sk, :prefix)',
        ExpressionAttributeNames: { '#pk': Schema.partitionKey, ...(prefix === undefined ? {} : { '#sk': Schema.sortKey }) },
        ExpressionAttributeValues: { ':pk': partition, ...(prefix === undefined ? {} : { ':prefix': prefix }) },
        ConsistentRead: true,
      },
    );
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

type Item = Record<string, unknown>;

/**
 * One shard's entries for the merge in readEntries: the current item, its page, and the next page
 * already requested, so the merge seldom waits for DynamoDB.
 */
class ShardReader {
  head: Item | undefined;
  private page: Item[] = [];
  private index = 0;
  private nextPage: Promise<IteratorResult<{ Items?: Item[] }>> | undefined;

  constructor(private readonly pages: AsyncIterator<{ Items?: Item[] }>) {}

  /** Reads the first page. */
  async ready(): Promise<void> {
    this.request();
    await this.turnPage();
  }

  /** Moves to the next item (undefined head: the shard is read). */
  async advance(): Promise<void> {
    this.index++;
    if (this.index < this.page.length) this.head = this.page[this.index];
    else await this.turnPage();
  }

  private request(): void {
    this.nextPage = this.pages.next();
    // Awaited when its turn comes; should the reading stop before that, its failure is not an
    // unhandled rejection.
    this.nextPage.catch(() => undefined);
  }

  private async turnPage(): Promise<void> {
    // Pages can be empty (a page ends on the size limit) until the last one.
    for (;;) {
      const result = this.nextPage === undefined ? undefined : await this.nextPage;
      if (result === undefined || result.done) {
        this.nextPage = undefined;
        this.head = undefined;
        this.page = [];
        return;
      }
      this.request();
      this.page = result.value.Items ?? [];
      this.index = 0;
      if (this.page.length > 0) {
        this.head = this.page[0];
        return;
      }
    }
  }
}
