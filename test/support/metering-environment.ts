import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { GetCommand, paginateScan } from '@aws-sdk/lib-dynamodb';
import { UsageProducer } from '../../lambda/adapters/usage-producer';
import { FoldReport } from '../../lambda/core/metering/fold-hours';
import { bucketKeyOf } from '../../lambda/core/metering/hour-bucket';
import { DEFAULT_METERING_SETTINGS, MeteringReport, MeteringSettings } from '../../lambda/core/metering/metering-run';
import { JournalEntry } from '../../lambda/core/usage/usage-journal';
import { ProductConfig } from '../../lambda/core/product-config';
import { utcHourStart } from '../../lambda/core/utc-hour';
import { IngestLog } from '../../lambda/ingest/ingest-batch';
import { MeteringLog } from '../../lambda/metering/metering-job';
import { LocalApiServer, startLocalApiServer } from '../../local/api-gateway-server';
import { createLocalRegistration, LocalRegistration } from '../../local/local-registration';
import { createLocalUsage, LocalUsage } from '../../local/local-usage';
import { RunningSimulator, SimulatorClock, startMarketplaceSimulator } from '../../local/simulator';
import { requireJava, useDynamoDbLocal, useLocalSqs } from './local-services';

/**
 * The usage pipeline and metering on real local services, for integration tests: DynamoDB Local
 * (Customers table, Metering ledger and usage journal), fauxqs (usage queue and both dead-letter queues), the AWS
 * Marketplace simulator, and our registration, ingest and metering code wired as `npm start` wires
 * them (createLocalRegistration, createLocalUsage).
 *
 * Time. Ingestion judges events by the real clock, metering by the `now` it is given, the simulator
 * by its own (frozen) clock. So: usage happens in USAGE_HOUR, the hour before the real current hour;
 * customers are created on the simulator one minute into that hour (their licences start then, so
 * usage of that hour is billable); `meterAt(now)` moves the simulator's clock to `now` and runs
 * metering as if at `now`, so both agree on the time.
 *
 * Each test gets a fresh Metering ledger table and usage journal table, empty queues and a reset
 * simulator.
 */

export const HOUR_MS = 3_600_000;
/** The real current UTC hour when the suite was loaded. */
export const CURRENT_HOUR = utcHourStart(new Date());
/** The hour usage is reported for: the one before. */
export const USAGE_HOUR = new Date(CURRENT_HOUR.getTime() - HOUR_MS);
/** The simulator's clock after each reset: customers created then have licences active in USAGE_HOUR. */
export const SIMULATOR_START = new Date(USAGE_HOUR.getTime() + 60_000);
/** A metering time at which USAGE_HOUR is over by more than the grace period (10 min) and the current hour is not. */
export const METER_USAGE_HOUR = new Date(CURRENT_HOUR.getTime() + 15 * 60_000);

/** A time `minutes` into USAGE_HOUR, as an ISO string (what events carry). */
export const inUsageHour = (minutes: number): string => new Date(USAGE_HOUR.getTime() + minutes * 60_000).toISOString();

export interface SimulatorProduct {
  readonly productCode: string;
  readonly identityMode: 'license' | 'legacy';
  readonly dimensions: readonly string[];
}

export interface Customer {
  readonly productCode: string;
  readonly customerAWSAccountId: string;
  readonly licenseArn: string;
  readonly customerIdentifier?: string;
  readonly identityMode: 'license' | 'legacy';
  /** The Customers table key registration stored. */
  readonly customerKey: string;
}

/** A buyer the simulator knows as subscribed, with the token registration takes. */
export interface Subscription {
  readonly productCode: string;
  readonly customerAWSAccountId: string;
  readonly licenseArn: string;
  readonly customerIdentifier?: string;
  readonly registrationToken: string;
}

export interface BilledRecord {
  meteringRecordId: string;
  productCode: string;
  licenseArn?: string;
  customerAWSAccountId?: string;
  customerIdentifier?: string;
  dimension: string;
  hour: string;
  timestamp: string;
  quantity: number;
  allocations?: { AllocatedUsageQuantity: number; Tags?: { Key: string; Value: string }[] }[];
  billedAt: string;
}

export interface ApiCall {
  operation: string;
  time: string;
  outcome: string;
  httpStatus: number;
  recordCount?: number;
}

export interface DeadLetter {
  reason: string | undefined;
  body: any;
}

/** One event of a usage journal entry, with what its entry says about it. */
export interface JournaledEvent {
  readonly messageId: string;
  /** The hour the entry counts in. */
  readonly hourStart: string;
  /** Set on a late entry: the event's own hour, sealed when it arrived. */
  readonly rolledFrom?: string;
  readonly customerKey: string;
  readonly dimension: string;
  readonly quantity: number;
  /** The event's position in its message. */
  readonly position: number;
  readonly eventId?: string;
  /** Quantity per allocation tag set (tagSetKey). */
  readonly allocations?: Readonly<Record<string, number>>;
}

/** What the ingest handler's `usage message ingested` log lines add up to. */
export interface IngestTotals {
  /** Messages ingested (not rejected as a whole). */
  messages: number;
  counted: number;
  duplicates: number;
  rolledOver: number;
  rejected: number;
}

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  message: string;
  attributes: Record<string, unknown>;
}

export interface MeteringEnvironmentOptions {
  /** The products as the stack is configured with them. */
  readonly stackProducts: readonly ProductConfig[];
  /** The products as AWS Marketplace (the simulator) knows them. */
  readonly simulatorProducts: readonly SimulatorProduct[];
  readonly meteringSettings?: Partial<MeteringSettings>;
  /** Zero-quantity records for idle customers (the Customers table is shared by a file's tests). @default false */
  readonly zeroUsageRecords?: boolean;
}

const REFERENCE_SECRET = 'metering-integration-test-secret-0123456789';
const START_TIMEOUT_MS = 120_000;

export function useMeteringEnvironment(options: MeteringEnvironmentOptions) {
  requireJava();
  const dynamoDb = useDynamoDbLocal();
  const sqs = useLocalSqs();
  const clock = new SimulatorClock({ start: SIMULATOR_START, frozen: true });
  let simulator: RunningSimulator | undefined;
  let registration: LocalRegistration | undefined;
  let api: LocalApiServer | undefined;
  let usage: LocalUsage | undefined;
  let tables = 0;
  let accounts = 0;
  const logLines: LogLine[] = [];
  const log: IngestLog & MeteringLog = {
    info: (message, attributes) => logLines.push({ level: 'info', message, attributes }),
    warn: (message, attributes) => logLines.push({ level: 'warn', message, attributes }),
    error: (message, attributes) => logLines.push({ level: 'error', message, attributes }),
  };

  beforeAll(async () => {
    simulator = await startMarketplaceSimulator({ port: 0, clock, config: { rateLimitPerSecond: 0 } });
    registration = await createLocalRegistration({
      simulatorUrl: simulator.url,
      dynamoDbEndpoint: dynamoDb.endpoint,
      products: options.stackProducts,
      referenceSecret: REFERENCE_SECRET,
    });
    api = await startLocalApiServer({ routes: registration.routes });
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.allSettled([api?.stop(), simulator?.stop()]);
    registration?.documents.destroy();
  });

  beforeEach(async () => {
    await admin('POST', '/_admin/reset');
    for (const product of options.simulatorProducts) await admin('POST', '/_admin/products', product);
    logLines.length = 0;
    usage = await createLocalUsage({
      sqsEndpoint: sqs.endpoint,
      dynamoDbEndpoint: dynamoDb.endpoint,
      simulatorUrl: running().simulator.url,
      products: options.stackProducts,
      customersTableName: running().registration.tableName,
      meteringTableName: `MeteringLedger-${++tables}`,
      journalTableName: `UsageJournal-${tables}`,
      meteringSettings: options.meteringSettings,
      zeroUsageRecords: options.zeroUsageRecords ?? false,
      log,
    });
    // The queues outlive a test (same names): start each test with them empty.
    for (const url of [usage.usageQueueUrl, usage.usageDeadLetterQueueUrl, usage.meteringDeadLetterQueueUrl]) {
      await usage.sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
    }
  }, 30_000);

  afterEach(async () => {
    await usage?.stop();
    usage?.documents.destroy();
    usage?.sqs.destroy();
    usage = undefined;
  });

  const running = () => {
    if (!simulator || !registration || !api) throw new Error('The simulator, the registration or the local API did not start (see beforeAll)');
    return { simulator, registration, api };
  };
  const currentUsage = (): LocalUsage => {
    if (!usage) throw new Error('The local usage pipeline is not running (see beforeEach)');
    return usage;
  };

  const admin = <T = any>(method: string, path: string, body?: unknown): Promise<T> => simulatorAdmin<T>(running().simulator.url, method, path, body);

  /**
   * A buyer who subscribes on AWS Marketplace (the simulator) and registers through our
   * registration endpoint, as the browser does it: the Customers item is what registration writes.
   */
  async function newCustomer(productCode: string, extra: { subscribed?: boolean } = {}): Promise<Customer> {
    return register(await subscribe(productCode, extra));
  }

  /** A buyer who subscribes on AWS Marketplace (the simulator) and has not registered yet. */
  async function subscribe(productCode: string, extra: { subscribed?: boolean } = {}): Promise<Subscription> {
    const customerAWSAccountId = String(300000000000 + (process.pid % 1000) * 1_000_000 + ++accounts);
    const subscribed = await admin('POST', '/_admin/customers', { productCode, customerAWSAccountId, ...extra });
    return { productCode, ...subscribed };
  }

  /** The subscribed buyer registers through our registration endpoint, as the browser does it. */
  async function register(subscribed: Subscription): Promise<Customer> {
    const response = await fetch(`${running().api.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ 'x-amzn-marketplace-token': subscribed.registrationToken }).toString(),
    });
    const answer = (await response.json()) as Record<string, any>;
    if (response.status !== 200) throw new Error(`registration failed: ${response.status} ${JSON.stringify(answer)}`);
    return {
      productCode: subscribed.productCode,
      customerAWSAccountId: subscribed.customerAWSAccountId,
      licenseArn: subscribed.licenseArn,
      customerIdentifier: subscribed.customerIdentifier,
      identityMode: subscribed.customerIdentifier ? 'legacy' : 'license',
      customerKey: answer.customerKey,
    };
  }

  /** How a usage event names the customer: the licence, or the legacy product + CustomerIdentifier. */
  const identityOf = (customer: Customer) =>
    customer.identityMode === 'license'
      ? { licenseArn: customer.licenseArn }
      : { productCode: customer.productCode, customerIdentifier: customer.customerIdentifier };

  /** Sends events with the producer client, as a seller's service does; every event must be accepted by SQS. */
  async function send(events: readonly unknown[], eventsPerMessage = 10): Promise<void> {
    const producer = new UsageProducer({ queueUrl: currentUsage().usageQueueUrl, client: currentUsage().sqs, eventsPerMessage });
    const { sent, failed } = await producer.send(events);
    if (failed.length > 0) throw new Error(`the producer did not send ${failed.length} events: ${JSON.stringify(failed.slice(0, 3))}`);
    expect(sent).toBe(events.length);
  }

  /** One raw message, as a producer in another language sends it. */
  async function sendRaw(body: string): Promise<string> {
    const { MessageId } = await currentUsage().sqs.send(new SendMessageCommand({ QueueUrl: currentUsage().usageQueueUrl, MessageBody: body }));
    return MessageId!;
  }

  /** Moves the simulator's clock to `now` and runs metering as if at `now`. */
  async function meterAt(now: Date): Promise<MeteringReport> {
    await admin('POST', '/_admin/clock', { now: now.toISOString() });
    return currentUsage().meter(now);
  }

  const billed = async (): Promise<BilledRecord[]> => (await admin<{ records: BilledRecord[] }>('GET', '/_admin/metering-records')).records;
  const meteringCalls = async (): Promise<ApiCall[]> =>
    (await admin<{ calls: ApiCall[] }>('GET', '/_admin/calls?operation=BatchMeterUsage')).calls;

  /** A bucket item of the ledger, read consistently; undefined when there is none. */
  async function bucket(customer: Customer, dimension: string, hourStart: Date | string): Promise<Record<string, any> | undefined> {
    const hour = typeof hourStart === 'string' ? hourStart : hourStart.toISOString();
    const { Item } = await currentUsage().documents.send(
      new GetCommand({
        TableName: currentUsage().meteringTableName,
        Key: { pk: `bucket#${bucketKeyOf(customer.customerKey, dimension, hour)}` },
        ConsistentRead: true,
      }),
    );
    return Item;
  }

  /** Every bucket item of the ledger. */
  async function buckets(): Promise<Record<string, any>[]> {
    const items: Record<string, any>[] = [];
    for await (const page of paginateScan(
      { client: currentUsage().documents },
      {
        TableName: currentUsage().meteringTableName,
        FilterExpression: 'begins_with(pk, :bucket)',
        ExpressionAttributeValues: { ':bucket': 'bucket#' },
        ConsistentRead: true,
      },
    )) {
      items.push(...(page.Items ?? []));
    }
    return items;
  }

  /** The usage journal's entries of an hour (a strongly consistent read), in message id order. */
  async function journal(hourStart: Date | string): Promise<JournalEntry[]> {
    const hour = typeof hourStart === 'string' ? hourStart : hourStart.toISOString();
    const entries = await currentUsage().ledger.journal.entries(hour);
    return entries.sort((a, b) => a.messageId.localeCompare(b.messageId) || (a.events[0]?.p ?? 0) - (b.events[0]?.p ?? 0));
  }

  /** The events journaled for an hour, one per event, with their customer and entry. */
  async function journalEvents(hourStart: Date | string): Promise<JournaledEvent[]> {
    return (await journal(hourStart)).flatMap((entry) =>
      entry.events.map((event) => ({
        messageId: entry.messageId,
        hourStart: entry.hourStart,
        ...(entry.rolledFrom === undefined ? {} : { rolledFrom: entry.rolledFrom }),
        customerKey: entry.customers[event.c].customerKey,
        dimension: event.d,
        quantity: event.q,
        position: event.p,
        ...(event.id === undefined ? {} : { eventId: event.id }),
        ...(event.a === undefined ? {} : { allocations: event.a }),
      })),
    );
  }

  /** The ingest handler's counts so far (since the test began), from its log lines. */
  function ingested(): IngestTotals {
    const totals: IngestTotals = { messages: 0, counted: 0, duplicates: 0, rolledOver: 0, rejected: 0 };
    for (const line of logLines) {
      if (line.message !== 'usage message ingested') continue;
      totals.messages += 1;
      totals.counted += Number(line.attributes.counted);
      totals.duplicates += Number(line.attributes.duplicates);
      totals.rolledOver += Number(line.attributes.rolledOver);
      totals.rejected += Number(line.attributes.rejected);
    }
    return totals;
  }

  /**
   * What the metering run does first, alone: seals the hours that ended by `now` less the grace
   * period and folds their journal entries into sealed buckets, without billing anything.
   */
  function foldAt(now: Date): Promise<FoldReport> {
    const grace = (options.meteringSettings?.gracePeriodSeconds ?? DEFAULT_METERING_SETTINGS.gracePeriodSeconds) * 1000;
    return currentUsage().ledger.sealHoursEndedBy(new Date(now.getTime() - grace), now);
  }

  /** Every message in a queue, received and deleted, with its `reason` attribute and JSON body. */
  async function takeAll(queueUrl: string): Promise<DeadLetter[]> {
    const taken: DeadLetter[] = [];
    for (;;) {
      const { Messages = [] } = await currentUsage().sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: ['All'] }),
      );
      if (Messages.length === 0) return taken;
      for (const m of Messages) {
        let body: unknown;
        try {
          body = JSON.parse(m.Body ?? '');
        } catch {
          body = m.Body;
        }
        taken.push({ reason: m.MessageAttributes?.reason?.StringValue, body });
      }
      await currentUsage().sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }),
      );
    }
  }

  /** Messages visible and in flight in a queue. */
  async function queueDepth(queueUrl: string): Promise<{ visible: number; inFlight: number }> {
    const { Attributes = {} } = await currentUsage().sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
    );
    return { visible: Number(Attributes.ApproximateNumberOfMessages), inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible) };
  }

  return {
    dynamoDb,
    sqs,
    clock,
    logLines,
    get simulator() {
      return running().simulator;
    },
    get usage() {
      return currentUsage();
    },
    admin,
    newCustomer,
    subscribe,
    register,
    identityOf,
    send,
    sendRaw,
    drain: () => currentUsage().drainUsageQueue(),
    meterAt,
    billed,
    meteringCalls,
    bucket,
    buckets,
    journal,
    journalEvents,
    ingested,
    foldAt,
    takeAll,
    queueDepth,
    usageDeadLetters: () => takeAll(currentUsage().usageDeadLetterQueueUrl),
    meteringDeadLetters: () => takeAll(currentUsage().meteringDeadLetterQueueUrl),
  };
}

export type MeteringEnvironment = ReturnType<typeof useMeteringEnvironment>;

/** A call to the simulator's admin API; fails with the status and body when it is not 2xx. */
export async function simulatorAdmin<T = any>(simulatorUrl: string, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${simulatorUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}
