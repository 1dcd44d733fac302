import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { CachedCustomerDirectory, CustomerSubscriptions } from '../lambda/adapters/customer-directory';
import { DeadLetterQueue } from '../lambda/adapters/dead-letter-queue';
import { sdkMeteringApi } from '../lambda/adapters/metering-api';
import { DynamoDbMeteringLedger } from '../lambda/adapters/metering-ledger';
import { ZeroUsageFiller } from '../lambda/adapters/zero-usage';
import { MeteringPorts, MeteringReport, MeteringSettings } from '../lambda/core/metering/metering-run';
import { ProductConfig } from '../lambda/core/product-config';
import { createIngestHandler, IngestLog } from '../lambda/ingest/ingest-batch';
import { meteringDeadLetters, MeteringLog, meterNow } from '../lambda/metering/metering-job';
import { LocalRoute } from './api-gateway-server';
import { createMeteringTable, createUsageJournalTable } from './local-tables';
import { LocalClock } from './local-clock';
import { localClientConfig } from './services';
import { sqsRecordOf } from './sqs-record';

/**
 * The usage pipeline and metering on local services: queues in the local SQS, the Metering ledger
 * in DynamoDB Local, an ingest poller standing in for Lambda's SQS event source, and the metering
 * schedule as a timer. `POST /_local/metering/run` runs metering now, or as if at a later `now`,
 * which moves the local clock (ingestion, the schedule, the simulator) forward to it.
 */

export interface LocalUsageOptions {
  readonly sqsEndpoint: string;
  readonly dynamoDbEndpoint: string;
  readonly simulatorUrl: string;
  readonly products: readonly ProductConfig[];
  readonly customersTableName: string;
  /** @default 'MeteringLedger' */
  readonly meteringTableName?: string;
  /** @default 'UsageJournal' */
  readonly journalTableName?: string;
  /** Receives before a message goes to the usage dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
  /** Seconds between scheduled metering runs; 0: no schedule. @default 0 */
  readonly meteringIntervalSeconds?: number;
  readonly meteringSettings?: Partial<MeteringSettings>;
  /** Zero-quantity records for idle subscribed customers. @default true */
  readonly zeroUsageRecords?: boolean;
  readonly log?: IngestLog & MeteringLog;
  /** The local stack's time, shared with registration and the lifecycle. @default a clock of its own */
  readonly clock?: LocalClock;
}

export interface LocalUsage {
  readonly usageQueueUrl: string;
  readonly usageDeadLetterQueueUrl: string;
  readonly meteringDeadLetterQueueUrl: string;
  readonly meteringTableName: string;
  readonly journalTableName: string;
  readonly customersTableName: string;
  readonly documents: DynamoDBDocumentClient;
  readonly sqs: SQSClient;
  readonly ledger: DynamoDbMeteringLedger;
  readonly routes: readonly LocalRoute[];
  /** The local stack's time (local-clock.ts). */
  readonly clock: LocalClock;
  /** Runs metering now (by the local clock), or as if at `now` (the clock is left as it is). */
  meter(now?: Date): Promise<MeteringReport>;
  /** Receives and ingests until the queue looks empty; returns how many messages were handled. */
  drainUsageQueue(): Promise<number>;
  stop(): Promise<void>;
}

const SILENT = { info: () => undefined, warn: () => undefined, error: () => undefined };

export async function createLocalUsage(options: LocalUsageOptions): Promise<LocalUsage> {
  const meteringTableName = options.meteringTableName ?? 'MeteringLedger';
  const dynamoDb = new DynamoDBClient(localClientConfig(options.dynamoDbEndpoint));
  const journalTableName = options.journalTableName ?? 'UsageJournal';
  await createMeteringTable(dynamoDb, meteringTableName);
  await createUsageJournalTable(dynamoDb, journalTableName);
  const documents = DynamoDBDocumentClient.from(dynamoDb, { marshallOptions: { removeUndefinedValues: true } });
  const sqs = new SQSClient(localClientConfig(options.sqsEndpoint));
  const log = options.log ?? SILENT;
  const clock = options.clock ?? new LocalClock(options.simulatorUrl);

  const queueUrl = async (name: string, attributes: Record<string, string> = {}) =>
    (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl!;
  const usageDeadLetterQueueUrl = await queueUrl('usage-dead-letters');
  const meteringDeadLetterQueueUrl = await queueUrl('metering-dead-letters');
  const dlqArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: usageDeadLetterQueueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes!.QueueArn;
  const usageQueueUrl = await queueUrl('usage', {
    VisibilityTimeout: '30',
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: options.maxReceiveCount ?? 5 }),
  });

  const ledger = new DynamoDbMeteringLedger(documents, meteringTableName, journalTableName);
  const ingest = createIngestHandler({
    ports: {
      journal: ledger.journal,
      customers: new CachedCustomerDirectory(documents, options.customersTableName, 1000),
      products: options.products,
      now: () => clock.now(),
    },
    deadLetters: new DeadLetterQueue(sqs, usageDeadLetterQueueUrl),
    log,
  });
  const meteringPorts: MeteringPorts = {
    ledger,
    subscriptions: new CustomerSubscriptions(documents, options.customersTableName),
    zeroUsage:
      options.zeroUsageRecords === false ? undefined : new ZeroUsageFiller(documents, options.customersTableName, ledger, options.products),
    deadLetters: meteringDeadLetters(new DeadLetterQueue(sqs, meteringDeadLetterQueueUrl)),
    api: sdkMeteringApi(new MarketplaceMeteringClient({ ...localClientConfig(options.simulatorUrl), maxAttempts: 1 })),
    clock: { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) },
  };

  // One metering run at a time, as the stack's reserved concurrency of 1 guarantees.
  let running: Promise<MeteringReport> | undefined;
  const meter = async (now = clock.now()): Promise<MeteringReport> => {
    while (running) await running.catch(() => undefined);
    running = meterNow(meteringPorts, log, { now, deadline: new Date(Date.now() + 60_000), settings: options.meteringSettings });
    try {
      return await running;
    } finally {
      running = undefined;
    }
  };

  /** One receive and ingest round, as Lambda's event source does it. */
  const pollOnce = async (waitSeconds: number): Promise<number> => {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: usageQueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    if (Messages.length === 0) return 0;
    const event: SQSEvent = { Records: Messages.map((m) => sqsRecordOf(m)) };
    const { batchItemFailures } = await ingest(event);
    const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
    const done = Messages.filter((m) => !failed.has(m.MessageId!));
    if (done.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: usageQueueUrl,
          Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
    }
    return Messages.length;
  };

  let stopped = false;
  /** The background poller's receive-and-ingest round in progress, if any: a drain waits for it. */
  let backgroundRound: Promise<number> | undefined;
  const poller = (async () => {
    while (!stopped) {
      try {
        // Short polls with a pause, not a long poll: a drain then waits for a round trip, not a second.
        backgroundRound = pollOnce(0);
        const received = await backgroundRound;
        backgroundRound = undefined;
        if (received === 0) await new Promise((r) => setTimeout(r, 200));
      } catch (error) {
        backgroundRound = undefined;
        if (!stopped) log.error('local ingest poll failed', { error: String(error) });
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();
  const interval = options.meteringIntervalSeconds ?? 0;
  const timer =
    interval > 0
      ? setInterval(() => void meter().catch((error) => log.error('scheduled metering failed', { error: String(error) })), interval * 1000)
      : undefined;

  const routes: LocalRoute[] = [
    {
      method: 'POST',
      resource: '/_local/metering/run',
      handler: async (event) => {
        const badRequest = (error: string) => ({ statusCode: 400, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error }) });
        let now = clock.now();
        if (event.body) {
          const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
          let requested: unknown;
          try {
            requested = (JSON.parse(text) as { now?: unknown } | null)?.now;
          } catch {
            return badRequest('the body must be JSON: {"now": ISO 8601 time} or nothing');
          }
          if (requested !== undefined) {
            now = new Date(typeof requested === 'string' ? requested : Number.NaN);
            if (Number.isNaN(now.getTime())) return badRequest('now must be an ISO 8601 time');
            if (await clock.moveForwardTo(now)) log.info('local clock moved forward, simulator too', { now: now.toISOString() });
          }
        }
        return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(await meter(now)) };
      },
    },
  ];

  return {
    usageQueueUrl,
    usageDeadLetterQueueUrl,
    meteringDeadLetterQueueUrl,
    meteringTableName,
    journalTableName,
    customersTableName: options.customersTableName,
    documents,
    sqs,
    ledger,
    routes,
    clock,
    meter,
    drainUsageQueue: async () => {
      let handled = 0;
      for (;;) {
        const n = await pollOnce(0);
        handled += n;
        if (n > 0) continue;
        // The queue looks empty, but the background poller may still be ingesting messages it
        // received before: wait for its round, then look again.
        const round = backgroundRound;
        const inBackground = round ? await round.catch(() => 0) : 0;
        if (inBackground === 0) return handled;
        handled += inBackground;
      }
    },
    stop: async () => {
      stopped = true;
      if (timer) clearInterval(timer);
      await poller;
      while (running) await running.catch(() => undefined);
    },
  };
}

