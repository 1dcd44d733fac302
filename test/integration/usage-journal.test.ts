/**
 * The Metering ledger's usage writes on DynamoDB Local: a message's events go in few transactions
 * (markers + one update per bucket); what a cancelled transaction reports settles those events, and
 * the rest is written again, so every event ends up counted once or refused with its reason.
 */
import { DynamoDBClient, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { DynamoDbMeteringLedger } from '../../lambda/adapters/metering-ledger';
import { UsageAddition } from '../../lambda/core/usage/ingest';
import { createMeteringTable } from '../../local/local-tables';
import { localClientConfig } from '../../local/services';
import { requireJava, useDynamoDbLocal } from '../support/local-services';

requireJava();
const dynamoDb = useDynamoDbLocal();
const HOUR = '2026-11-02T10:00:00.000Z';
let table = 0;

async function newLedger() {
  const tableName = `Ledger${++table}`;
  await createMeteringTable(dynamoDb.client, tableName);
  // A client of its own: the transaction counter goes on its middleware stack.
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient(localClientConfig(dynamoDb.endpoint)), { marshallOptions: { removeUndefinedValues: true } });
  let transactions = 0;
  documents.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'TransactWriteItemsCommand') transactions++;
      return next(args);
    },
    { step: 'initialize', name: 'countTransactions' },
  );
  const bucket = async (customer: string, dimension = 'requests') => {
    const { Item } = await dynamoDb.client.send(
      new GetItemCommand({ TableName: tableName, Key: { pk: { S: `bucket#license#${customer}|${dimension}|${HOUR}` } }, ConsistentRead: true }),
    );
    return Item && unmarshall(Item);
  };
  return { ledger: new DynamoDbMeteringLedger(documents, tableName), tableName, bucket, transactions: () => transactions };
}

function addition(customer: string, eventId: string, quantity: number, change: { dimension?: string; allocations?: Record<string, number> } = {}): UsageAddition {
  const dimension = change.dimension ?? 'requests';
  return {
    bucket: {
      bucketKey: `license#${customer}|${dimension}|${HOUR}`,
      customerKey: `license#${customer}`,
      productCode: 'prod',
      identityMode: 'license',
      customerAWSAccountId: '111122223333',
      licenseArn: `arn:aws:license-manager::111122223333:license:${customer}`,
      dimension,
      hourStart: HOUR,
    },
    eventKey: `license#${customer}|${eventId}`,
    quantity,
    allocations: change.allocations ?? {},
    at: new Date('2026-11-02T10:30:00Z'),
  };
}

describe('Metering ledger: adding a message of usage', () => {
  it('sums events per bucket, in one transaction for the message', async () => {
    const { ledger, bucket, transactions } = await newLedger();
    const additions = [
      addition('l-a', 'e1', 1, { allocations: { '[["team","x"]]': 1 } }),
      addition('l-b', 'e2', 10),
      addition('l-a', 'e3', 2, { allocations: { '[["team","x"]]': 1, '[["team","y"]]': 1 } }),
      addition('l-a', 'e4', 4, { dimension: 'storage' }),
      addition('l-b', 'e5', 20),
    ];
    expect(await ledger.addUsage(additions)).toEqual(['added', 'added', 'added', 'added', 'added']);
    expect(transactions()).toBe(1);
    expect(await bucket('l-a')).toMatchObject({ quantity: 3, usageEvents: 2, status: 'open', 'alloc#[["team","x"]]': 2, 'alloc#[["team","y"]]': 1 });
    expect(await bucket('l-a', 'storage')).toMatchObject({ quantity: 4, usageEvents: 1 });
    expect(await bucket('l-b')).toMatchObject({ quantity: 30, usageEvents: 2 });
  });

  it('counts what is new and refuses what was counted before, in the same call', async () => {
    const { ledger, bucket } = await newLedger();
    await ledger.addUsage([addition('l-a', 'e1', 1), addition('l-b', 'e2', 10)]);
    const outcomes = await ledger.addUsage([addition('l-a', 'e1', 1), addition('l-a', 'e3', 2), addition('l-b', 'e2', 10), addition('l-b', 'e4', 5)]);
    expect(outcomes).toEqual(['duplicate', 'added', 'duplicate', 'added']);
    expect(await bucket('l-a')).toMatchObject({ quantity: 3, usageEvents: 2 });
    expect(await bucket('l-b')).toMatchObject({ quantity: 15, usageEvents: 2 });
    // Redelivered as a whole: nothing more.
    expect(await ledger.addUsage([addition('l-a', 'e1', 1), addition('l-a', 'e3', 2)])).toEqual(['duplicate', 'duplicate']);
    expect(await bucket('l-a')).toMatchObject({ quantity: 3 });
  });

  it('counts an event given twice in one call once', async () => {
    const { ledger, bucket } = await newLedger();
    expect(await ledger.addUsage([addition('l-a', 'e1', 1), addition('l-a', 'e1', 1), addition('l-a', 'e2', 2)])).toEqual(['added', 'duplicate', 'added']);
    expect(await bucket('l-a')).toMatchObject({ quantity: 3, usageEvents: 2 });
  });

  it('refuses events for a sealed bucket and still counts the others of the message', async () => {
    const { ledger, tableName, bucket } = await newLedger();
    await ledger.addUsage([addition('l-a', 'e1', 1)]);
    await dynamoDb.client.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: { pk: { S: `bucket#license#l-a|requests|${HOUR}` } },
        UpdateExpression: 'SET #status = :sealed',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':sealed': { S: 'sealed' } },
      }),
    );
    const outcomes = await ledger.addUsage([addition('l-a', 'e1', 1), addition('l-a', 'e2', 2), addition('l-b', 'e3', 3)]);
    expect(outcomes).toEqual(['duplicate', 'sealed', 'added']);
    expect(await bucket('l-a')).toMatchObject({ quantity: 1, status: 'sealed' });
    expect(await bucket('l-b')).toMatchObject({ quantity: 3 });
  });

  it('splits more events than one transaction holds (99 markers and their bucket update)', async () => {
    const { ledger, bucket, transactions } = await newLedger();
    const additions = Array.from({ length: 150 }, (_, i) => addition('l-a', `e${i}`, i));
    expect(new Set(await ledger.addUsage(additions))).toEqual(new Set(['added']));
    expect(transactions()).toBe(2);
    expect(await bucket('l-a')).toMatchObject({ quantity: (149 * 150) / 2, usageEvents: 150 });
  });

  it('refuses, alone, the events that would grow a bucket past the item size limit', async () => {
    const { ledger, bucket } = await newLedger();
    // Each event: 100 tag sets of about 1.3 KB of names: three events cannot share one 400 KB item.
    const big = (event: number) =>
      Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`[["tag","${String(event * 1000 + i).padStart(1300, 'v')}"]]`, 1]));
    const additions = [0, 1, 2, 3].map((i) => addition('l-a', `big${i}`, 100, { allocations: big(i) }));
    additions.push(addition('l-b', 'small', 7));
    const outcomes = await ledger.addUsage(additions);
    expect(outcomes.slice(0, 4)).toContain('too-large');
    expect(outcomes.slice(0, 4)).toContain('added');
    expect(outcomes[4]).toBe('added');
    const added = outcomes.slice(0, 4).filter((o) => o === 'added').length;
    expect(await bucket('l-a')).toMatchObject({ quantity: 100 * added, usageEvents: added });
    expect(await bucket('l-b')).toMatchObject({ quantity: 7 });
  });

  it('counts every event when many messages write the same buckets at once (TransactionConflict retried)', async () => {
    const { ledger, bucket } = await newLedger();
    const messages = Array.from({ length: 12 }, (_, m) =>
      Array.from({ length: 10 }, (_, i) => addition(i % 2 === 0 ? 'l-a' : 'l-b', `m${m}-e${i}`, 1)),
    );
    const outcomes = await Promise.all(messages.map((additions) => ledger.addUsage(additions)));
    expect(new Set(outcomes.flat())).toEqual(new Set(['added']));
    expect(await bucket('l-a')).toMatchObject({ quantity: 60, usageEvents: 60 });
    expect(await bucket('l-b')).toMatchObject({ quantity: 60, usageEvents: 60 });
  });
});
