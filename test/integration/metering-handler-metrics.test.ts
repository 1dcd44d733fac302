import type { Context } from 'aws-lambda';
import { createCustomersTable, createMeteringTable, createUsageJournalTable } from '../../local/local-tables';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/services/aws-local';
import { requireJava, useDynamoDbLocal } from '../support/local-services';

/**
 * The metering Lambda handler itself, as deployed (middy, Powertools), against DynamoDB Local: each
 * run publishes its counts as CloudWatch embedded metrics, under the namespace the stack gives it,
 * even when there was nothing to bill (a run's zero is what tells the backlog alarm that usage is
 * flowing again).
 */

requireJava();
const dynamoDb = useDynamoDbLocal();
const NAMESPACE = 'MarketplaceSaas/HandlerTest';

let handler: (event: unknown, context: Context) => Promise<unknown>;
const saved = { ...process.env };

beforeAll(async () => {
  await Promise.all([
    createCustomersTable(dynamoDb.client, 'HandlerCustomers'),
    createMeteringTable(dynamoDb.client, 'HandlerLedger'),
    createUsageJournalTable(dynamoDb.client, 'HandlerJournal'),
  ]);
  Object.assign(process.env, {
    METRICS_NAMESPACE: NAMESPACE,
    METERING_TABLE: 'HandlerLedger',
    USAGE_JOURNAL_TABLE: 'HandlerJournal',
    CUSTOMERS_TABLE: 'HandlerCustomers',
    PRODUCTS: JSON.stringify([{ productCode: 'handler-product', identityMode: 'license', dimensions: ['requests'] }]),
    ZERO_USAGE_RECORDS: 'false',
    // Nothing is sent to either in an empty run: a closed port would fail the test if it were.
    METERING_DEAD_LETTER_QUEUE_URL: 'http://127.0.0.1:9/000000000000/metering-dead-letters',
    MARKETPLACE_ENDPOINT: 'http://127.0.0.1:9',
    AWS_ENDPOINT_URL_DYNAMODB: dynamoDb.endpoint,
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    POWERTOOLS_SERVICE_NAME: 'marketplace-metering',
  });
  jest.isolateModules(() => {
    ({ handler } = require('../../lambda/metering/handler'));
  });
}, 60_000);

afterAll(() => {
  process.env = saved;
});

const context = {
  functionName: 'metering',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:111122223333:function:metering',
  memoryLimitInMB: '1024',
  awsRequestId: 'request-1',
  getRemainingTimeInMillis: () => 120_000,
} as unknown as Context;

test('a run publishes one EMF document with its counts, in the stack\'s namespace, service dimension marketplace-metering', async () => {
  const written: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
  let report: Record<string, unknown>;
  try {
    report = (await handler({}, context)) as Record<string, unknown>;
  } finally {
    write.mockRestore();
  }
  expect(report).toMatchObject({ sealed: 0, metered: 0, deferred: 0 });
  const documents = written
    .flatMap((chunk) => chunk.split('\n'))
    .filter((line) => line.includes('"CloudWatchMetrics"'))
    .map((line) => JSON.parse(line));
  expect(documents).toHaveLength(1);
  const [emf] = documents;
  expect(emf._aws.CloudWatchMetrics[0].Namespace).toBe(NAMESPACE);
  expect(emf._aws.CloudWatchMetrics[0].Dimensions).toEqual([['service']]);
  expect(emf.service).toBe('marketplace-metering');
  expect(emf).toMatchObject({ SealedBuckets: 0, MeteredBuckets: 0, DeferredBuckets: 0, DeadLetteredBuckets: 0, BatchMeterUsageCalls: 0 });
}, 60_000);
