import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListQueuesCommand,
  Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { localClientConfig, startDynamoDbLocal, startLocalSqs } from '../../local/services';
import { requireJava, useDynamoDbLocal, useLocalSqs } from '../support/local-services';

/**
 * The local services the integration tests and `npm start` run on, exercised through the real AWS
 * SDK v3 clients: if these behave unlike DynamoDB and SQS where we rely on them, every test built on
 * them would prove nothing.
 */

let uniqueCounter = 0;
const unique = (prefix: string): string => `${prefix}-${process.pid}-${Date.now()}-${++uniqueCounter}`;

/** True when a TCP server can bind `port` on 127.0.0.1 right now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) =>
      error.code === 'EADDRINUSE' ? resolve(false) : reject(error),
    );
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

describe('DynamoDB Local', () => {
  requireJava();
  const javaToolOptionsBefore = process.env.JAVA_TOOL_OPTIONS;
  const dynamoDb = useDynamoDbLocal();

  async function createLedgerTable(): Promise<string> {
    const tableName = unique('ledger');
    await dynamoDb.client.send(
      new CreateTableCommand({
        TableName: tableName,
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    await waitUntilTableExists({ client: dynamoDb.client, maxWaitTime: 30 }, { TableName: tableName });
    return tableName;
  }

  it('answers on a loopback endpoint with the port it reports', () => {
    expect(dynamoDb.endpoint).toBe(`http://127.0.0.1:${dynamoDb.port}`);
  });

  it('runs the JVM with the client compiler only (JAVA_TOOL_OPTIONS of that process; ours as they were)', () => {
    // The java process serving this port, found by its command line (Linux /proc).
    const pid = readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .find((name) => {
        try {
          return readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').includes(`DynamoDBLocal.jar -inMemory -port ${dynamoDb.port} `);
        } catch {
          return false; // gone meanwhile
        }
      });
    expect(pid).toBeDefined();
    const environment = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    expect(environment.filter((line) => line.startsWith('JAVA_TOOL_OPTIONS='))).toEqual([expect.stringMatching(/^JAVA_TOOL_OPTIONS=-XX:TieredStopAtLevel=1( |$)/)]);
    expect(process.env.JAVA_TOOL_OPTIONS).toBe(javaToolOptionsBefore);
  });

  it('creates a table, stores an item and reads it back', async () => {
    const tableName = await createLedgerTable();
    const { TableNames } = await dynamoDb.client.send(new ListTablesCommand({}));
    expect(TableNames).toContain(tableName);

    await dynamoDb.client.send(
      new PutItemCommand({
        TableName: tableName,
        Item: { pk: { S: 'customer#1' }, quantity: { N: '42' }, dimension: { S: 'requests' } },
      }),
    );
    const { Item } = await dynamoDb.client.send(
      new GetItemCommand({ TableName: tableName, Key: { pk: { S: 'customer#1' } }, ConsistentRead: true }),
    );
    expect(Item).toEqual({ pk: { S: 'customer#1' }, quantity: { N: '42' }, dimension: { S: 'requests' } });

    const missing = await dynamoDb.client.send(
      new GetItemCommand({ TableName: tableName, Key: { pk: { S: 'customer#2' } }, ConsistentRead: true }),
    );
    expect(missing.Item).toBeUndefined();
  });

  it('TransactWriteItems: a failed condition cancels every write, a met one applies them all', async () => {
    const tableName = await createLedgerTable();
    const bucket = { pk: { S: 'bucket#1' } };
    const marker = { pk: { S: 'event#1' } };
    await dynamoDb.client.send(new PutItemCommand({ TableName: tableName, Item: { ...bucket, quantity: { N: '10' } } }));

    // Same shape as the usage ledger: add to a bucket and write a de-dup marker, atomically.
    const addUsage = (sealed: boolean) =>
      new TransactWriteItemsCommand({
        TransactItems: [
          {
            Update: {
              TableName: tableName,
              Key: bucket,
              UpdateExpression: 'ADD quantity :q',
              ConditionExpression: sealed ? 'attribute_exists(sealedAt)' : 'attribute_not_exists(sealedAt)',
              ExpressionAttributeValues: { ':q': { N: '5' } },
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            },
          },
          { Put: { TableName: tableName, Item: marker, ConditionExpression: 'attribute_not_exists(pk)' } },
        ],
      });

    // The bucket is not sealed, so requiring "sealed" fails: nothing may be written.
    const failure = await dynamoDb.client.send(addUsage(true)).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(TransactionCanceledException);
    const reasons = (failure as TransactionCanceledException).CancellationReasons ?? [];
    expect(reasons.map((r) => r.Code)).toEqual(['ConditionalCheckFailed', 'None']);
    expect(reasons[0]?.Item).toEqual({ ...bucket, quantity: { N: '10' } });

    const read = async (key: typeof bucket) =>
      (await dynamoDb.client.send(new GetItemCommand({ TableName: tableName, Key: key, ConsistentRead: true }))).Item;
    expect(await read(bucket)).toEqual({ ...bucket, quantity: { N: '10' } });
    expect(await read(marker)).toBeUndefined();

    await dynamoDb.client.send(addUsage(false));
    expect(await read(bucket)).toEqual({ ...bucket, quantity: { N: '15' } });
    expect(await read(marker)).toEqual(marker);

    // The marker now exists: replaying the same event is refused as a whole.
    await expect(dynamoDb.client.send(addUsage(false))).rejects.toBeInstanceOf(TransactionCanceledException);
    expect(await read(bucket)).toEqual({ ...bucket, quantity: { N: '15' } });
  });
});

describe('local SQS (fauxqs)', () => {
  const sqs = useLocalSqs();

  async function createQueue(name: string, attributes: Record<string, string> = {}): Promise<{ url: string; arn: string }> {
    const { QueueUrl } = await sqs.client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    if (QueueUrl === undefined) throw new Error(`CreateQueue returned no QueueUrl for ${name}`);
    const { Attributes } = await sqs.client.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    const arn = Attributes?.QueueArn;
    if (arn === undefined) throw new Error(`GetQueueAttributes returned no QueueArn for ${name}`);
    return { url: QueueUrl, arn };
  }

  async function createQueueWithDlq(maxReceiveCount: number, visibilityTimeoutSeconds: number) {
    const dlq = await createQueue(unique('usage-dlq'));
    const queue = await createQueue(unique('usage'), {
      VisibilityTimeout: String(visibilityTimeoutSeconds),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount }),
    });
    return { queue, dlq };
  }

  /** Receives until `count` messages arrived or `timeoutMs` passed (SQS may hand out fewer per call). */
  async function receive(queueUrl: string, count: number, timeoutMs = 3000): Promise<Message[]> {
    const received: Message[] = [];
    const deadline = Date.now() + timeoutMs;
    while (received.length < count && Date.now() < deadline) {
      const { Messages } = await sqs.client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, count - received.length),
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
      );
      received.push(...(Messages ?? []));
    }
    return received;
  }

  /** One immediate receive: what is visible right now. */
  async function receiveNow(queueUrl: string): Promise<Message[]> {
    const { Messages } = await sqs.client.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    return Messages ?? [];
  }

  it('creates a queue with a redrive policy to a dead-letter queue', async () => {
    const { queue, dlq } = await createQueueWithDlq(3, 30);
    const { Attributes } = await sqs.client.send(
      new GetQueueAttributesCommand({ QueueUrl: queue.url, AttributeNames: ['RedrivePolicy', 'VisibilityTimeout'] }),
    );
    expect(JSON.parse(Attributes?.RedrivePolicy ?? '{}')).toEqual({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 3 });
    expect(Attributes?.VisibilityTimeout).toBe('30');

    const { QueueUrls } = await sqs.client.send(new ListQueuesCommand({}));
    expect(QueueUrls).toEqual(expect.arrayContaining([queue.url, dlq.url]));
  });

  it('sends a batch, receives it and deletes what was handled', async () => {
    const { queue } = await createQueueWithDlq(3, 30);
    const bodies = ['{"eventId":"e1"}', '{"eventId":"e2"}', '{"eventId":"e3"}'];
    const sent = await sqs.client.send(
      new SendMessageBatchCommand({
        QueueUrl: queue.url,
        Entries: bodies.map((body, i) => ({ Id: `m${i}`, MessageBody: body })),
      }),
    );
    expect(sent.Failed ?? []).toEqual([]);
    expect((sent.Successful ?? []).map((s) => s.Id).sort()).toEqual(['m0', 'm1', 'm2']);

    const received = await receive(queue.url, 3);
    expect(received.map((m) => m.Body).sort()).toEqual([...bodies].sort());

    for (const message of received) {
      await sqs.client.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: message.ReceiptHandle }));
    }
    const { Attributes } = await sqs.client.send(
      new GetQueueAttributesCommand({
        QueueUrl: queue.url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    expect(Attributes?.ApproximateNumberOfMessages).toBe('0');
    expect(Attributes?.ApproximateNumberOfMessagesNotVisible).toBe('0');
  });

  it('makes a message not deleted visible again after its visibility timeout, then dead-letters it', async () => {
    // A few seconds: long enough that a slow machine still finds the crashed message hidden.
    const visibilitySeconds = 3;
    const { queue, dlq } = await createQueueWithDlq(2, visibilitySeconds);
    await sqs.client.send(
      new SendMessageBatchCommand({
        QueueUrl: queue.url,
        Entries: [
          { Id: 'handled', MessageBody: 'handled' },
          { Id: 'crashed', MessageBody: 'crashed' },
        ],
      }),
    );
    const first = await receive(queue.url, 2);
    expect(first.map((m) => m.Body).sort()).toEqual(['crashed', 'handled']);
    const handled = first.find((m) => m.Body === 'handled');
    await sqs.client.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: handled?.ReceiptHandle }));

    // Within the visibility timeout the crashed message stays hidden...
    expect(await receiveNow(queue.url)).toEqual([]);
    // ...and after it, only that one comes back, on its second receive.
    await sleep(visibilitySeconds * 1000 + 200);
    const second = await receive(queue.url, 1);
    expect(second.map((m) => m.Body)).toEqual(['crashed']);
    expect(second[0]?.Attributes?.ApproximateReceiveCount).toBe('2');

    // Received maxReceiveCount (2) times and still not deleted: the next receive moves it to the DLQ.
    await sleep(visibilitySeconds * 1000 + 200);
    expect(await receiveNow(queue.url)).toEqual([]);
    const deadLettered = await receive(dlq.url, 1);
    expect(deadLettered.map((m) => m.Body)).toEqual(['crashed']);
  });
});

describe('stop() frees the port', () => {
  it('DynamoDB Local', async () => {
    const dynamoDb = await startDynamoDbLocal();
    const client = new DynamoDBClient({ ...localClientConfig(dynamoDb.endpoint), maxAttempts: 1 });
    try {
      expect(await canListen(dynamoDb.port)).toBe(false);
      await expect(client.send(new ListTablesCommand({}))).resolves.toBeDefined();
    } finally {
      await dynamoDb.stop();
    }
    expect(await canListen(dynamoDb.port)).toBe(true);
    await expect(client.send(new ListTablesCommand({}))).rejects.toThrow();
    client.destroy();
    // Stopping twice is harmless.
    await expect(dynamoDb.stop()).resolves.toBeUndefined();
  }, 120_000);

  it('fauxqs', async () => {
    const sqs = await startLocalSqs();
    const client = new SQSClient({ ...localClientConfig(sqs.endpoint), maxAttempts: 1 });
    try {
      expect(await canListen(sqs.port)).toBe(false);
      await expect(client.send(new ListQueuesCommand({}))).resolves.toBeDefined();
    } finally {
      await sqs.stop();
    }
    expect(await canListen(sqs.port)).toBe(true);
    await expect(client.send(new ListQueuesCommand({}))).rejects.toThrow();
    client.destroy();
    await expect(sqs.stop()).resolves.toBeUndefined();
  });
});
