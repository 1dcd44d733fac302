import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, BatchWriteCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { batchGet } from '../../../lambda/adapters/batch-requests';
import { CachedCustomerDirectory } from '../../../lambda/adapters/customer-directory';
import { DynamoDbMeteringLedger } from '../../../lambda/adapters/metering-ledger';
import { DynamoDbUsageJournal } from '../../../lambda/adapters/usage-journal';
import { decodeUsage } from '../../../lambda/adapters/journal-usage-codec';
import { UsageJournalSchema } from '../../../lambda/core/usage-journal-schema';
import { JournalEntry, journalShardOf } from '../../../lambda/core/usage/usage-journal';
import { Sent, stubClient } from './stub-client';

/**
 * Error branches of the usage journal and customer directory adapters that DynamoDB Local does not
 * produce on demand: cancellation reasons, conflicts, unprocessed items and keys. The client is a
 * stub that records each command and answers it.
 */

const H09 = '2026-11-02T09:00:00.000Z';
const H10 = '2026-11-02T10:00:00.000Z';
const WRITTEN_AT = '2026-11-02T10:20:00.000Z';



type Item = { Put?: { Item: Record<string, unknown> }; ConditionCheck?: { Key: Record<string, unknown> } };

/** A cancelled transaction, with each item's reason from `codeOf` ('None' when it gives none). */
function cancelled(sent: Sent, codeOf: (item: Item) => string | undefined): TransactionCanceledException {
  const items = sent.input.TransactItems as Item[];
  return new TransactionCanceledException({ message: 'Transaction cancelled', $metadata: {}, CancellationReasons: items.map((item) => ({ Code: codeOf(item) ?? 'None' })) });
}

const shardOf = (messageId: string) => journalShardOf(messageId, UsageJournalSchema.shards);

/** Message ids: `count` on one shard, and one on another. */
function messageIds(count: number): { same: string[]; other: string } {
  const shard = shardOf('m-0');
  const same: string[] = [];
  let other: string | undefined;
  for (let i = 0; same.length < count || other === undefined; i++) {
    const id = `m-${i}`;
    if (shardOf(id) === shard) {
      if (same.length < count) same.push(id);
    } else other ??= id;
  }
  return { same, other: other! };
}

const entry = (messageId: string, hourStart = H10, extra: Partial<JournalEntry> = {}): JournalEntry => ({
  messageId,
  hourStart,
  customers: [{ customerKey: 'license#l-1', productCode: 'p', identityMode: 'license', customerAWSAccountId: '123456789012', licenseArn: 'arn:aws:license-manager::123456789012:license:l-1' }],
  events: [{ c: 0, d: 'requests', q: 1, p: 0 }],
  writtenAt: WRITTEN_AT,
  ...extra,
});

/** The entry Puts of a transaction, as `partition / sort key`. */
const putsOf = (sent: Sent) => (sent.input.TransactItems as Item[]).filter((i) => i.Put).map((i) => `${i.Put!.Item.pk} / ${i.Put!.Item.sk}`);
/** The seal checks of a transaction, as `partition / sort key`. */
const checksOf = (sent: Sent) => (sent.input.TransactItems as Item[]).filter((i) => i.ConditionCheck).map((i) => `${i.ConditionCheck!.Key.pk} / ${i.ConditionCheck!.Key.sk}`);
const put = (e: { messageId: string; hourStart: string }, sk = e.messageId) => `entry#${e.hourStart}#${shardOf(e.messageId)} / ${sk}`;
/** The journal picks the seal a transaction checks with `random`: the tests fix it. */
const SEAL_SHARD = 32;
const fixedRandom = () => SEAL_SHARD / UsageJournalSchema.sealShards;
const seal = (hourStart: string) => `seal#${hourStart} / ${SEAL_SHARD}`;

const isPutOf = (messageId: string) => (item: Item) => (item.Put?.Item.messageId === messageId ? 'ConditionalCheckFailed' : undefined);

describe('Usage journal: append', () => {
  it('writes the entries in one transaction, with one seal check per hour (a seal picked at random)', async () => {
    const { same, other } = messageIds(2);
    const { client, sent } = stubClient(() => ({}));
    const journal = new DynamoDbUsageJournal(client, 'Journal', undefined, fixedRandom);
    const entries = [entry(same[0]), entry(same[1]), entry(other), entry(same[0], H09)];
    await expect(journal.append(entries)).resolves.toEqual(['appended', 'appended', 'appended', 'appended']);
    expect(sent.map((s) => s.name)).toEqual(['TransactWriteCommand']);
    expect(putsOf(sent[0])).toEqual(entries.map((e) => put(e)));
    expect(checksOf(sent[0]).sort()).toEqual([seal(H10), seal(H09)].sort());
    const items = sent[0].input.TransactItems as { Put?: Record<string, unknown>; ConditionCheck?: Record<string, unknown> }[];
    for (const item of items) expect((item.Put ?? item.ConditionCheck)!.TableName).toBe('Journal');
    expect(items[0].Put).toMatchObject({ ConditionExpression: 'attribute_not_exists(#pk)', Item: { messageId: same[0], hourStart: H10, writtenAt: WRITTEN_AT } });
    expect(decodeUsage((items[0].Put!.Item as { usage: string }).usage)).toEqual({ customers: entries[0].customers, events: entries[0].events });
  });

  it('reads a ConditionalCheckFailed on an entry Put as a duplicate, and writes the other entries of that transaction again', async () => {
    const { same, other } = messageIds(2);
    const { client, sent } = stubClient((s, call) => (call === 0 ? cancelled(s, isPutOf(same[0])) : {}));
    const journal = new DynamoDbUsageJournal(client, 'Journal', undefined, fixedRandom);
    const entries = [entry(same[0]), entry(same[1]), entry(other)];
    await expect(journal.append(entries)).resolves.toEqual(['duplicate', 'appended', 'appended']);
    expect(sent).toHaveLength(2);
    expect(putsOf(sent[1])).toEqual([put(entries[1]), put(entries[2])]);
  });

  it('reads a ConditionalCheckFailed on a seal check as sealed for the entries of that hour only', async () => {
    const { same, other } = messageIds(2);
    const sealedCheck = seal(H09);
    const { client, sent } = stubClient((s, call) =>
      call === 0 ? cancelled(s, (item) => (item.ConditionCheck && `${item.ConditionCheck.Key.pk} / ${item.ConditionCheck.Key.sk}` === sealedCheck ? 'ConditionalCheckFailed' : undefined)) : {},
    );
    const journal = new DynamoDbUsageJournal(client, 'Journal', undefined, fixedRandom);
    // Three entries of the sealed hour, on two entry partitions; one of another hour.
    const entries = [entry(same[0], H09), entry(same[1], H09), entry(other, H09), entry(same[0], H10)];
    await expect(journal.append(entries)).resolves.toEqual(['sealed', 'sealed', 'sealed', 'appended']);
    expect(sent).toHaveLength(2);
    expect(putsOf(sent[1])).toEqual([put(entries[3])]);
    expect(checksOf(sent[1])).toEqual([seal(H10)]);
  });

  it('reads an entry that exists as a duplicate even when its hour is sealed too', async () => {
    const { same } = messageIds(2);
    const { client } = stubClient((s) => cancelled(s, (item) => (item.ConditionCheck || item.Put?.Item.messageId === same[0] ? 'ConditionalCheckFailed' : undefined)));
    const journal = new DynamoDbUsageJournal(client, 'Journal', undefined, fixedRandom);
    await expect(journal.append([entry(same[0]), entry(same[1])])).resolves.toEqual(['duplicate', 'sealed']);
  });

  it("writes a late entry with a placeholder under its own hour, and reads a failed placeholder as a duplicate (a redelivery)", async () => {
    const late = entry('m-late', H10, { rolledFrom: H09 });
    const { client, sent } = stubClient((s) => cancelled(s, (item) => (item.Put && item.Put.Item.pk === `entry#${H09}#${shardOf('m-late')}` ? 'ConditionalCheckFailed' : undefined)));
    const journal = new DynamoDbUsageJournal(client, 'Journal', undefined, fixedRandom);
    await expect(journal.append([late])).resolves.toEqual(['duplicate']);
    expect(putsOf(sent[0])).toEqual([put({ messageId: 'm-late', hourStart: H09 }), put(late, `m-late#from#${H09}`)]);
    expect(checksOf(sent[0])).toEqual([seal(H10)]);
    expect(sent[0].input.TransactItems[0].Put.Item).toMatchObject({ countedIn: H10 });
  });

  it('writes an entry given twice in one call once; the copy is a duplicate', async () => {
    const { client, sent } = stubClient(() => ({}));
    const journal = new DynamoDbUsageJournal(client, 'Journal', undefined, fixedRandom);
    await expect(journal.append([entry('m-1'), entry('m-1')])).resolves.toEqual(['appended', 'duplicate']);
    expect(putsOf(sent[0])).toEqual([put(entry('m-1'))]);
  });

  it('answers by position when the very same entry object comes twice', async () => {
    const { client, sent } = stubClient(() => ({}));
    const journal = new DynamoDbUsageJournal(client, 'Journal', undefined, fixedRandom);
    const same = entry('m-1');
    await expect(journal.append([same, same])).resolves.toEqual(['appended', 'duplicate']);
    expect(putsOf(sent[0])).toEqual([put(entry('m-1'))]);
  });

  it('tries the transaction again after a TransactionConflict', async () => {
    const { client, sent } = stubClient((s, call) => (call === 0 ? cancelled(s, (item) => (item.ConditionCheck ? 'TransactionConflict' : undefined)) : {}));
    const journal = new DynamoDbUsageJournal(client, 'Journal', undefined, fixedRandom);
    await expect(journal.append([entry('m-1'), entry('m-2', H09)])).resolves.toEqual(['appended', 'appended']);
    expect(sent).toHaveLength(2);
    expect(sent[1].input).toEqual(sent[0].input);
  });

  it('gives up, loudly, when the conflicts do not stop', async () => {
    const { client, sent } = stubClient((s) => cancelled(s, (item) => (item.Put ? 'TransactionConflict' : undefined)));
    const journal = new DynamoDbUsageJournal(client, 'Journal', undefined, fixedRandom);
    await expect(journal.append([entry('m-1')])).rejects.toThrow(/TransactionConflict/);
    expect(sent).toHaveLength(9);
  }, 20_000);

  it('lets a cancellation with nothing to learn from (throttled items) through, so SQS retries the messages', async () => {
    let error: TransactionCanceledException | undefined;
    const { client, sent } = stubClient((s) => (error = cancelled(s, (item) => (item.Put ? 'ThrottlingError' : undefined))));
    const journal = new DynamoDbUsageJournal(client, 'Journal', undefined, fixedRandom);
    const appending = journal.append([entry('m-1'), entry('m-2')]);
    await expect(appending).rejects.toBeInstanceOf(TransactionCanceledException);
    await appending.catch((e) => expect(e).toBe(error));
    expect(sent).toHaveLength(1);
  });

  it('lets other errors through', async () => {
    const { client } = stubClient(() => Object.assign(new Error('Throughput exceeds the provisioned throughput'), { name: 'ProvisionedThroughputExceededException' }));
    const journal = new DynamoDbUsageJournal(client, 'Journal', undefined, fixedRandom);
    await expect(journal.append([entry('m-1')])).rejects.toThrow('Throughput exceeds');
  });
});

describe('Usage journal: sealing hours', () => {
  const sealItems = (sent: Sent) =>
    (sent.input.RequestItems.Journal as { PutRequest: { Item: { pk: string; sk: string } } }[]).map((r) => `${r.PutRequest.Item.pk} / ${r.PutRequest.Item.sk}`);

  it("puts every seal of each hour with BatchWriteItem, and sends what DynamoDB left unprocessed again", async () => {
    let unprocessed: unknown[] = [];
    const { client, sent } = stubClient((s, call) => {
      if (call > 0) return {};
      unprocessed = s.input.RequestItems.Journal.slice(2, 5);
      return { UnprocessedItems: { Journal: unprocessed } };
    });
    const journal = new DynamoDbUsageJournal(client, 'Journal', undefined, fixedRandom);
    await journal.sealHours([H09, H10], new Date('2026-11-02T11:10:00Z'));
    const shards = Array.from({ length: UsageJournalSchema.sealShards }, (_, i) => String(i));
    const calls = Math.ceil((2 * UsageJournalSchema.sealShards) / 25);
    expect(sent.map((s) => s.name)).toEqual(Array(calls + 1).fill('BatchWriteCommand'));
    expect(sent.slice(0, calls).flatMap(sealItems)).toEqual([...shards.map((s) => `seal#${H09} / ${s}`), ...shards.map((s) => `seal#${H10} / ${s}`)]);
    expect(sent[0].input.RequestItems.Journal[0].PutRequest.Item).toMatchObject({ sealedAt: '2026-11-02T11:10:00.000Z' });
    expect(sent[calls].input.RequestItems.Journal).toEqual(unprocessed);
    expect(sealItems(sent[calls])).toEqual([`seal#${H09} / 2`, `seal#${H09} / 3`, `seal#${H09} / 4`]);
  });

  it('sends a call again when DynamoDB refuses it for a transaction in flight', async () => {
    const conflict = Object.assign(new Error('conflict'), { name: 'TransactionConflictException' });
    const { client, sent } = stubClient((_s, call) => (call === 0 ? conflict : {}));
    await new DynamoDbUsageJournal(client, 'Journal', undefined, fixedRandom).sealHours([H10], new Date('2026-11-02T11:10:00Z'));
    const calls = Math.ceil(UsageJournalSchema.sealShards / 25);
    expect(sent).toHaveLength(calls + 1);
    expect(sent[calls].input).toEqual(sent[0].input);
  });

  it('splits the seals into calls of 25', async () => {
    const { client, sent } = stubClient(() => ({}));
    await new DynamoDbUsageJournal(client, 'Journal', undefined, fixedRandom).sealHours(['2026-11-02T07:00:00.000Z', '2026-11-02T08:00:00.000Z', H09, H10], new Date('2026-11-02T11:10:00Z'));
    const total = 4 * UsageJournalSchema.sealShards;
    const sizes = sent.map((s) => s.input.RequestItems.Journal.length);
    expect(sizes.every((n) => n <= 25)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(total);
    expect(sizes).toHaveLength(Math.ceil(total / 25));
  });
});

describe('batchGet (customer directory, ledger reads)', () => {
  it('reads with the options given and asks again for the keys DynamoDB left unprocessed', async () => {
    const { client, sent } = stubClient((_s, call) =>
      call === 0 ? { Responses: { Table: [{ id: 'a' }] }, UnprocessedKeys: { Table: { Keys: [{ id: 'b' }, { id: 'c' }] } } } : { Responses: { Table: [{ id: 'c' }] } },
    );
    const items = await batchGet(client, 'Table', [{ id: 'a' }, { id: 'b' }, { id: 'c' }], { ConsistentRead: true });
    // b does not exist: absent from the answer, not an error.
    expect(items.map((i) => i.id).sort()).toEqual(['a', 'c']);
    expect(sent.map((s) => s.name)).toEqual(['BatchGetCommand', 'BatchGetCommand']);
    expect(sent[0].input.RequestItems.Table).toMatchObject({ ConsistentRead: true, Keys: [{ id: 'a' }, { id: 'b' }, { id: 'c' }] });
    expect(sent[1].input.RequestItems.Table).toMatchObject({ ConsistentRead: true, Keys: [{ id: 'b' }, { id: 'c' }] });
  });

  it('gives up when keys stay unprocessed', async () => {
    const { client, sent } = stubClient((s) => ({ UnprocessedKeys: { Table: { Keys: s.input.RequestItems.Table.Keys } } }));
    await expect(batchGet(client, 'Table', [{ id: 'a' }])).rejects.toThrow(/unprocessed keys/);
    expect(sent.length).toBeGreaterThan(1);
  }, 20_000);
});

describe('Metering ledger: its usage journal', () => {
  it('appends to the journal table, not the ledger table', async () => {
    const { client, sent } = stubClient(() => ({}));
    const ledger = new DynamoDbMeteringLedger(client, 'Ledger', 'Journal');
    await expect(ledger.journal.append([entry('m-1')])).resolves.toEqual(['appended']);
    const tables = (sent[0].input.TransactItems as { Put?: { TableName: string }; ConditionCheck?: { TableName: string } }[]).map((i) => (i.Put ?? i.ConditionCheck)!.TableName);
    expect(tables).toEqual(['Journal', 'Journal']);
  });
});

describe('Customer directory: batch lookups', () => {
  const item = { customerKey: 'license#l-1', productCode: 'p', identityMode: 'license', customerAWSAccountId: '123456789012', licenseArn: 'arn:aws:license-manager::123456789012:license:l-1', status: 'unsubscribe-pending', finalUsageUntil: '2026-11-02T11:00:00.000Z' };
  const known = {
    customerKey: 'license#l-1',
    productCode: 'p',
    identityMode: 'license',
    customerAWSAccountId: '123456789012',
    licenseArn: 'arn:aws:license-manager::123456789012:license:l-1',
    subscription: { status: 'unsubscribe-pending', finalUsageUntil: '2026-11-02T11:00:00.000Z' },
  };

  it('reads the customers with one consistent BatchGetItem and answers again from its cache', async () => {
    const { client, sent } = stubClient(() => ({ Responses: { Customers: [item] } }));
    let now = 1_000_000;
    const directory = new CachedCustomerDirectory(client, 'Customers', 60_000, () => now);
    const first = await directory.find(['license#l-1', 'license#l-unknown']);
    expect([...first.keys()]).toEqual(['license#l-1']);
    expect(first.get('license#l-1')).toMatchObject(known);
    expect(sent.map((s) => s.name)).toEqual(['BatchGetCommand']);
    expect(sent[0].input.RequestItems.Customers).toEqual({ Keys: [{ customerKey: 'license#l-1' }, { customerKey: 'license#l-unknown' }], ConsistentRead: true });

    // Known customers come from the cache; an unknown one is asked for again, as its events are
    // refused for good (it may have registered meanwhile).
    const second = await directory.find(['license#l-1', 'license#l-unknown']);
    expect(sent).toHaveLength(2);
    expect(sent[1].input.RequestItems.Customers.Keys).toEqual([{ customerKey: 'license#l-unknown' }]);
    expect(second.get('license#l-1')).toMatchObject(known);
    expect(second.has('license#l-unknown')).toBe(false);

    // Only the keys not cached are asked for.
    await directory.find(['license#l-1', 'license#l-2']);
    expect(sent).toHaveLength(3);
    expect(sent[2].input.RequestItems.Customers.Keys).toEqual([{ customerKey: 'license#l-2' }]);

    // Once the entries expire, they are read again.
    now += 60_001;
    await directory.find(['license#l-1']);
    expect(sent).toHaveLength(4);
  });

  it('finds a customer that registers right after its first event was refused', async () => {
    let registered = false;
    const { client, sent } = stubClient(() => ({ Responses: { Customers: registered ? [item] : [] } }));
    const directory = new CachedCustomerDirectory(client, 'Customers', 60_000, () => 1_000_000);
    expect((await directory.find(['license#l-1'])).has('license#l-1')).toBe(false);
    registered = true;
    expect((await directory.find(['license#l-1'])).get('license#l-1')).toMatchObject(known);
    expect(sent).toHaveLength(2);
  });

  it('asks again for the keys DynamoDB left unprocessed', async () => {
    const { client, sent } = stubClient((_s, call) =>
      call === 0 ? { Responses: { Customers: [] }, UnprocessedKeys: { Customers: { Keys: [{ customerKey: 'license#l-1' }] } } } : { Responses: { Customers: [item] } },
    );
    const directory = new CachedCustomerDirectory(client, 'Customers');
    const found = await directory.find(['license#l-1', 'license#l-9']);
    expect(found.get('license#l-1')).toMatchObject(known);
    expect(sent.map((s) => s.input.RequestItems.Customers.Keys)).toEqual([[{ customerKey: 'license#l-1' }, { customerKey: 'license#l-9' }], [{ customerKey: 'license#l-1' }]]);
  });

  it('makes no request when given no keys', async () => {
    const { client, sent } = stubClient(() => ({}));
    await expect(new CachedCustomerDirectory(client, 'Customers').find([])).resolves.toEqual(new Map());
    expect(sent).toHaveLength(0);
  });
});

// The stub reads commands by class name: make sure those are the classes the adapters send.
test('the stub sees the command classes by name', () => {
  expect([new TransactWriteCommand({ TransactItems: [] }), new BatchWriteCommand({ RequestItems: {} }), new BatchGetCommand({ RequestItems: {} })].map((c) => c.constructor.name)).toEqual([
    'TransactWriteCommand',
    'BatchWriteCommand',
    'BatchGetCommand',
  ]);
});
