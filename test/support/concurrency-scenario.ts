/**
 * Harness for test/integration/concurrency.test.ts: usage ingestion by several Lambda
 * "containers" at once, SQS duplicates and redeliveries, and metering runs (one at a time) sealing,
 * folding and billing hours while ingestion still writes, with a virtual clock that crosses hour
 * boundaries. Real components: DynamoDB Local, fauxqs, the AWS Marketplace simulator, and the
 * project's own ingest handler, journal, ledger and metering run.
 *
 * Time. One virtual clock drives ingestion (`now` of every container), metering (`now` of a run)
 * and the simulator. It moves forward in small steps while everything runs, but never more than
 * LAMBDA_TIMEOUT_MS past the start of an ingestion invocation still in flight: a real invocation
 * cannot outlive the function's timeout, so the hour an invocation rolls late usage into is never
 * sealed under it (that would be an artefact of the harness, not a reachable interleaving).
 *
 * Duplicates. A "twin" is SQS handing a message a container is working on to a second container
 * (ApproximateReceiveCount the same, or one more: a redelivery). It starts at a random I/O boundary
 * of the first container (once its n-th DynamoDB call has landed), which is then held up a few ms
 * more, as a slow network or a paused process would; every DynamoDB call of an ingest container
 * also takes a little random time. A lost delete makes fauxqs deliver the message again, later.
 */
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, paginateScan, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { CachedCustomerDirectory, CustomerSubscriptions } from '../../lambda/adapters/customer-directory';
import { DeadLetterQueue } from '../../lambda/adapters/dead-letter-queue';
import { sdkMeteringApi } from '../../lambda/adapters/metering-api';
import { DynamoDbMeteringLedger } from '../../lambda/adapters/metering-ledger';
import { DynamoDbUsageJournal } from '../../lambda/adapters/usage-journal';
import { legacyCustomerKey, licenseCustomerKey } from '../../lambda/core/customer';
import { MeteringPorts, MeteringReport } from '../../lambda/core/metering/metering-run';
import { ProductConfig } from '../../lambda/core/product-config';
import { entryIdOf, UsageJournal } from '../../lambda/core/usage/usage-journal';
import { HOUR_MS, utcHourStart } from '../../lambda/core/utc-hour';
import { createIngestHandler } from '../../lambda/ingest/ingest-batch';
import { meteringDeadLetters, meterNow } from '../../lambda/metering/metering-job';
import { createCustomersTable, createMeteringTable, createUsageJournalTable } from '../../local/local-tables';
import { localClientConfig } from '../../local/services';
import { SimulatorClock, startMarketplaceSimulator } from '../../local/simulator';
import { Customer, simulatorAdmin } from './metering-environment';
import { seededRandom } from '../unit/lifecycle/event-history';

export const MIN_MS = 60_000;
/** The ingest function's timeout (the stack's: 60 s), a little less to be safe. */
export const LAMBDA_TIMEOUT_MS = 55_000;
const GRACE_MS = 10 * MIN_MS;

// ---------------------------------------------------------------------------------------------
// Seeded randomness


const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The virtual clock

export class VirtualClock {
  private nowMs: number;
  private readonly inFlight = new Map<number, number>();
  private tokens = 0;

  constructor(
    start: Date,
    private readonly onMove: (now: Date) => void,
  ) {
    this.nowMs = start.getTime();
    onMove(start);
  }

  now(): number {
    return this.nowMs;
  }

  /** An ingestion invocation starts now (its container reads this time). */
  begin(): number {
    const token = ++this.tokens;
    this.inFlight.set(token, this.nowMs);
    return token;
  }

  end(token: number): void {
    this.inFlight.delete(token);
  }

  get invocationsInFlight(): number {
    return this.inFlight.size;
  }

  /** Forward by up to `ms`, bounded by the Lambda timeout of every invocation in flight. */
  advance(ms: number): void {
    this.advanceTo(this.nowMs + ms);
  }

  advanceTo(target: number): void {
    let bound = target;
    for (const start of this.inFlight.values()) bound = Math.min(bound, start + LAMBDA_TIMEOUT_MS);
    if (bound <= this.nowMs) return;
    this.nowMs = bound;
    this.onMove(new Date(bound));
  }
}

// ---------------------------------------------------------------------------------------------
// Usage: customers, series, events, messages

export const LICENSE: ProductConfig = { productCode: 'conc-license', identityMode: 'license', dimensions: ['requests', 'storage'] };
export const LEGACY: ProductConfig = { productCode: 'conc-legacy', identityMode: 'legacy', dimensions: ['seats'] };
export const PRODUCTS = [LICENSE, LEGACY];

/** A customer of the scenario, named in problem lines. */
export type ScenarioCustomer = Customer & { readonly name: string };

/** A customer x dimension: what the totals are compared on. */
export interface Series {
  readonly index: number;
  readonly customer: ScenarioCustomer;
  readonly dimension: string;
  /** `customerKey|dimension` */
  readonly key: string;
}

/** One distinct unit of usage (distinct by eventId, or by message id + position when it has none). */
export interface UsageUnit {
  readonly series: number;
  /** A power of two, unique within its series: a loss or a double shows in the total. */
  readonly quantity: number;
  readonly eventId?: string;
  readonly happenedAt: number;
}

export interface PlannedMessage {
  readonly index: number;
  readonly sendAt: number;
  readonly units: readonly UsageUnit[];
  sqsMessageId?: string;
}

export interface ScenarioOptions {
  readonly seed: number;
  /** Virtual time the producers start and stop sending. */
  readonly start: Date;
  readonly end: Date;
  /** Ingestion containers polling the queue at once. @default 4 */
  readonly instances?: number;
  /** Distinct events per customer x dimension (2^0 .. 2^(n-1)), at most 30. @default 24 */
  readonly unitsPerSeries?: number;
  /** Share of events without an eventId (counted by message id + position). @default 0.2 */
  readonly noEventIdShare?: number;
  /** Share of eventId events the producer sends again in another message. @default 0.25 */
  readonly resendShare?: number;
  /** Share of events sent 20 to 150 minutes after they happened (their hour is usually sealed). @default 0.15 */
  readonly lateShare?: number;
  /** Share of events sent 4 to 14 minutes after they happened (around the seal of their hour). @default 0.25 */
  readonly slowShare?: number;
  /** Per received message: the chance that SQS also delivers it to another container at the same time. @default 0.25 */
  readonly twinChance?: number;
  /** Of those twins: the chance it carries ApproximateReceiveCount + 1 (a redelivery), else the same count. @default 0.5 */
  readonly twinNextCountChance?: number;
  /**
   * A twin starts once the first container's n-th DynamoDB call of the invocation has landed (n picked
   * at random, 0 to 4), then 0 to this many ms later (real time). @default 20
   */
  readonly twinDelayMaxMs?: number;
  /** How long (0 to this many ms, real time) the first container is held up once it has started a twin. @default 80 */
  readonly twinHeadStartMaxMs?: number;
  /** Per message handled: the chance its delete is lost, so SQS redelivers it (receive count + 1). @default 0.15 */
  readonly redeliverChance?: number;
  /** Random latency added to each DynamoDB call of the ingest containers, before and after, in ms. @default 6 */
  readonly dynamoJitterMs?: number;
  /** Per DynamoDB call of an ingest container: the chance of a longer pause (40 to 120 ms: a GC pause, a slow network). @default 0 */
  readonly dynamoPauseChance?: number;
  /** Virtual time per clock step, and real time between steps. @default 45 s / 25 ms */
  readonly tickVirtualMs?: number;
  readonly tickRealMs?: number;
  /** Harness self-check: this message is deleted from the queue unread, as if lost. */
  readonly dropMessage?: (messages: readonly PlannedMessage[], units: readonly UsageUnit[]) => PlannedMessage;
}

export interface ScenarioStats {
  messages: number;
  unitsDistinct: number;
  unitsSent: number;
  unitsWithoutEventId: number;
  invocations: number;
  twinInvocations: number;
  twinsSameCount: number;
  twinsNextCount: number;
  deliveriesWithReceiveCountAbove1: number;
  lostDeletes: number;
  batchItemFailures: number;
  eventsRolledIntoOpenHour: number;
  duplicatesReported: number;
  meteringRuns: number;
  meteringRunsDuringIngestion: number;
  hoursSealed: number;
  bucketsMetered: number;
  hourTurnsDuringIngestion: number;
  virtualStart: string;
  virtualEnd: string;
  realMs: number;
}

export interface ScenarioResult {
  readonly seed: number;
  readonly problems: string[];
  readonly stats: ScenarioStats;
  /** Per series key: expected and billed totals. */
  readonly totals: Map<string, { expected: number; billed: number }>;
  readonly dropped?: PlannedMessage;
  readonly series: readonly Series[];
}

export interface Services {
  readonly dynamoDbEndpoint: string;
  readonly dynamoDb: DynamoDBClient;
  readonly sqsEndpoint: string;
}

let scenarioCount = 0;

function planUsage(options: ScenarioOptions, series: readonly Series[], rand: () => number) {
  const n = options.unitsPerSeries ?? 24;
  if (n > 30) throw new Error('at most 30 units per series (a bucket must stay under 2^31)');
  const start = options.start.getTime();
  const span = options.end.getTime() - start;
  const units: UsageUnit[] = [];
  const copies: { unit: UsageUnit; sendAt: number }[] = [];
  for (const s of series) {
    for (let k = 0; k < n; k++) {
      const sendAt = start + Math.floor(rand() * span);
      const category = rand();
      const lateShare = options.lateShare ?? 0.15;
      const slowShare = options.slowShare ?? 0.25;
      const lag =
        category < lateShare ? (20 + rand() * 130) * MIN_MS : category < lateShare + slowShare ? (4 + rand() * 10) * MIN_MS : rand() * 3 * MIN_MS;
      const withoutId = rand() < (options.noEventIdShare ?? 0.2);
      const unit: UsageUnit = {
        series: s.index,
        quantity: 2 ** k,
        ...(withoutId ? {} : { eventId: `ev-${options.seed}-${s.index}-${k}` }),
        happenedAt: Math.floor(sendAt - lag),
      };
      units.push(unit);
      copies.push({ unit, sendAt });
      if (!withoutId && rand() < (options.resendShare ?? 0.25)) {
        // The producer sends it again (a retry of its own): same eventId, timestamp and quantity.
        const again = Math.min(options.end.getTime(), Math.max(unit.happenedAt, sendAt + Math.floor((rand() * 1.5 - 0.25) * HOUR_MS)));
        copies.push({ unit, sendAt: again });
      }
    }
  }
  copies.sort((a, b) => a.sendAt - b.sendAt);
  const messages: PlannedMessage[] = [];
  for (let i = 0; i < copies.length; ) {
    const size = 1 + Math.floor(rand() * 5);
    const group = copies.slice(i, i + size);
    i += group.length;
    // Shuffled within the message; a message is sent once its last event is.
    const shuffled = group.map((c) => ({ c, r: rand() })).sort((a, b) => a.r - b.r).map(({ c }) => c.unit);
    messages.push({ index: messages.length, sendAt: group[group.length - 1].sendAt, units: shuffled });
  }
  return { units, copies, messages };
}

function bodyOf(message: PlannedMessage, series: readonly Series[]): string {
  return JSON.stringify(
    message.units.map((u) => {
      const { customer, dimension } = series[u.series];
      const identity =
        customer.identityMode === 'license'
          ? { licenseArn: customer.licenseArn }
          : { productCode: customer.productCode, customerIdentifier: customer.customerIdentifier };
      return { ...identity, dimension, quantity: u.quantity, timestamp: new Date(u.happenedAt).toISOString(), ...(u.eventId ? { eventId: u.eventId } : {}) };
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Containers

/** A DynamoDB document client whose every call takes a little random time before and after (network). */
function jitteryDocuments(endpoint: string, jitterMs: number, pauseChance: number, rand: () => number, onLanded: () => number): DynamoDBDocumentClient {
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient(localClientConfig(endpoint)), { marshallOptions: { removeUndefinedValues: true } });
  const delay = () => Math.floor(rand() * jitterMs) + (rand() < pauseChance ? 40 + Math.floor(rand() * 80) : 0);
  {
    documents.middlewareStack.add(
      (next) => async (args) => {
        await sleep(delay());
        let out;
        let extra = 0;
        try {
          out = await next(args);
        } finally {
          // The call has landed (its answer is on the way back); a twin started now may get a head start.
          extra = onLanded();
        }
        await sleep(delay() + extra);
        return out;
      },
      { step: 'initialize', name: 'concurrencyJitter', priority: 'high' },
    );
  }
  return documents;
}

interface Container {
  readonly name: string;
  /** Run once this invocation's n-th DynamoDB call has landed (n = 0: at once); pending ones run when it ends. */
  readonly afterCalls: { n: number; run: () => void }[];
  handle(event: SQSEvent): Promise<SQSBatchResponse>;
  busy: boolean;
  destroy(): void;
}

// ---------------------------------------------------------------------------------------------
// The scenario

export async function runScenario(services: Services, options: ScenarioOptions): Promise<ScenarioResult> {
  const startedAt = Date.now();
  const n = ++scenarioCount;
  const rand = seededRandom(options.seed);
  const jitterRand = seededRandom(options.seed ^ 0x5eed);
  const problems: string[] = [];
  /** What the containers did with the journal, in order (printed for a message found doubled or lost). */
  const trace: string[] = [];
  const stats: ScenarioStats = {
    messages: 0,
    unitsDistinct: 0,
    unitsSent: 0,
    unitsWithoutEventId: 0,
    invocations: 0,
    twinInvocations: 0,
    twinsSameCount: 0,
    twinsNextCount: 0,
    deliveriesWithReceiveCountAbove1: 0,
    lostDeletes: 0,
    batchItemFailures: 0,
    eventsRolledIntoOpenHour: 0,
    duplicatesReported: 0,
    meteringRuns: 0,
    meteringRunsDuringIngestion: 0,
    hoursSealed: 0,
    bucketsMetered: 0,
    hourTurnsDuringIngestion: 0,
    virtualStart: options.start.toISOString(),
    virtualEnd: '',
    realMs: 0,
  };

  // --- Services: tables, queues, simulator -------------------------------------------------
  const { customersTable, journalTable, ledgerTable, sqs, queue, usageDeadLettersUrl, meteringDeadLettersUrl, documents } = await scenarioResources(services, n, { VisibilityTimeout: '2' });
  const usageQueueUrl = await queue('conc-usage');

  // Customers subscribe on AWS (their licences start) well before the oldest usage.
  const simClock = new SimulatorClock({ start: new Date(options.start.getTime() - 4 * HOUR_MS), frozen: true });
  const simulator = await startMarketplaceSimulator({ port: 0, clock: simClock, config: { rateLimitPerSecond: 0 } });
  const admin = <T = any>(method: string, path: string, body?: unknown) => simulatorAdmin<T>(simulator.url, method, path, body);
  const marketplace = new MarketplaceMeteringClient({ ...localClientConfig(simulator.url), maxAttempts: 1 });
  const containers: Container[] = [];

  try {
    for (const p of PRODUCTS) await admin('POST', '/_admin/products', { productCode: p.productCode, identityMode: p.identityMode, dimensions: p.dimensions });
    const customers: ScenarioCustomer[] = [];
    for (const [name, product] of [['L1', LICENSE], ['L2', LICENSE], ['L3', LICENSE], ['G1', LEGACY]] as const) {
      const created = await admin('POST', '/_admin/customers', { productCode: product.productCode });
      const customer: ScenarioCustomer = {
        name,
        productCode: product.productCode,
        identityMode: product.identityMode,
        customerAWSAccountId: created.customerAWSAccountId,
        licenseArn: created.licenseArn,
        customerIdentifier: created.customerIdentifier,
        customerKey: product.identityMode === 'license' ? licenseCustomerKey(created.licenseArn) : legacyCustomerKey(product.productCode, created.customerIdentifier),
      };
      customers.push(customer);
      await documents.send(
        new PutCommand({
          TableName: customersTable,
          Item: {
            customerKey: customer.customerKey,
            productCode: customer.productCode,
            identityMode: customer.identityMode,
            customerAWSAccountId: customer.customerAWSAccountId,
            licenseArn: customer.licenseArn,
            ...(customer.customerIdentifier ? { customerIdentifier: customer.customerIdentifier } : {}),
          },
        }),
      );
    }
    const series: Series[] = [];
    for (const customer of customers) {
      const product = PRODUCTS.find((p) => p.productCode === customer.productCode)!;
      for (const dimension of product.dimensions) series.push({ index: series.length, customer, dimension, key: `${customer.customerKey}|${dimension}` });
    }

    const { units, copies, messages } = planUsage(options, series, rand);
    stats.messages = messages.length;
    stats.unitsDistinct = units.length;
    stats.unitsSent = copies.length;
    stats.unitsWithoutEventId = units.filter((u) => u.eventId === undefined).length;
    const dropped = options.dropMessage?.(messages, units);

    // --- Clock ---------------------------------------------------------------------------
    const clock = new VirtualClock(options.start, (now) => simClock.set(now));
    const tickVirtualMs = options.tickVirtualMs ?? 45_000;
    const tickRealMs = options.tickRealMs ?? 25;
    let ingesting = true;
    let stopping = false;
    const clockLoop = (async () => {
      while (!stopping) {
        await sleep(tickRealMs);
        const hourBefore = utcHourStart(new Date(clock.now())).getTime();
        clock.advance(tickVirtualMs);
        if (ingesting && utcHourStart(new Date(clock.now())).getTime() !== hourBefore) stats.hourTurnsDuringIngestion++;
      }
    })();

    // --- Ingestion containers ---------------------------------------------------------------
    const ingestLog = {
      info: (message: string, attributes: Record<string, unknown>) => {
        if (message !== 'usage message ingested') return;
        stats.eventsRolledIntoOpenHour += Number(attributes.rolledOver);
        stats.duplicatesReported += Number(attributes.duplicates);
      },
      warn: () => undefined,
    };
    const newContainer = (name: string): Container => {
      let calls = 0;
      const afterCalls: Container['afterCalls'] = [];
      /** Starts the twins due; returns how long this container is then held up (descheduled), in ms. */
      const fire = (all: boolean): number => {
        let fired = 0;
        for (let i = afterCalls.length - 1; i >= 0; i--) {
          if (all || afterCalls[i].n <= calls) {
            afterCalls.splice(i, 1)[0].run();
            fired++;
          }
        }
        return fired > 0 ? Math.floor(rand() * (options.twinHeadStartMaxMs ?? 80)) : 0;
      };
      const docs = jitteryDocuments(services.dynamoDbEndpoint, options.dynamoJitterMs ?? 6, options.dynamoPauseChance ?? 0, jitterRand, () => {
        calls++;
        return fire(false);
      });
      const deadLetterSqs = new SQSClient(localClientConfig(services.sqsEndpoint));
      const realJournal = new DynamoDbUsageJournal(docs, journalTable);
      const t = () => `${((Date.now() - startedAt) / 1000).toFixed(3)}s`;
      const journal: UsageJournal = {
        append: async (entries) => {
          const ids = entries.map((e) => `${e.hourStart.slice(11, 16)}:${entryIdOf(e)}{${e.events.map((x) => x.p).join(',')}}`);
          trace.push(`${t()} ${name} append ${ids.join(' ')} ...`);
          const out = await realJournal.append(entries);
          trace.push(`${t()} ${name} append ${ids.join(' ')} -> ${out.join(',')}`);
          return out;
        },
        storedPositions: async (messageId, hours) => {
          const out = await realJournal.storedPositions(messageId, hours);
          trace.push(`${t()} ${name} storedPositions ${messageId} [${hours.map((h) => h.slice(11, 16)).join(',')}] -> {${[...out].join(',')}}`);
          return out;
        },
        refusedPositions: (messageId) => realJournal.refusedPositions(messageId),
        recordRefused: (messageId, refused, at) => realJournal.recordRefused(messageId, refused, at),
        meteredEarly: (hours) => realJournal.meteredEarly(hours),
      };
      const handler = createIngestHandler({
        ports: {
          journal,
          customers: new CachedCustomerDirectory(docs, customersTable),
          products: PRODUCTS,
          now: () => new Date(clock.now()),
        },
        deadLetters: new DeadLetterQueue(deadLetterSqs, usageDeadLettersUrl),
        log: ingestLog,
      });
      const container: Container = {
        name,
        afterCalls,
        busy: false,
        handle: async (event) => {
          calls = 0;
          fire(false);
          const token = clock.begin();
          trace.push(`${t()} ${name} invoke at ${new Date(clock.now()).toISOString().slice(11, 19)} ${event.Records.map((r) => `${r.messageId}(count ${r.attributes.ApproximateReceiveCount})`).join(' ')}`);
          try {
            return await handler(event);
          } finally {
            clock.end(token);
            fire(true);
          }
        },
        destroy: () => {
          docs.destroy();
          deadLetterSqs.destroy();
        },
      };
      containers.push(container);
      return container;
    };

    const recordOf = (m: Message, receiveCount: number): SQSEvent['Records'][number] => ({
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body ?? '',
      attributes: { ...(m.Attributes ?? {}), ApproximateReceiveCount: String(receiveCount) } as SQSEvent['Records'][number]['attributes'],
      messageAttributes: {},
      md5OfBody: m.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:usage',
      awsRegion: 'us-east-1',
    });

    /** Invokes a container; the ids of the messages that failed (all of them if it threw). */
    const invoke = async (container: Container, records: SQSEvent['Records']): Promise<Set<string>> => {
      stats.invocations++;
      for (const r of records) if (Number(r.attributes.ApproximateReceiveCount) > 1) stats.deliveriesWithReceiveCountAbove1++;
      try {
        const response = await container.handle({ Records: records });
        stats.batchItemFailures += response.batchItemFailures.length;
        return new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      } catch (error) {
        stats.batchItemFailures += records.length;
        return new Set(records.map((r) => r.messageId));
      }
    };

    // Twins: SQS hands the same message to another container at the same moment. A twin that fails
    // is delivered again (as SQS would), until it is handled.
    const twinPool: Container[] = [];
    const twinsInFlight = new Set<Promise<void>>();
    const takeTwinContainer = () => {
      const free = twinPool.find((c) => !c.busy);
      const container = free ?? newContainer(`twin-${twinPool.length + 1}`);
      if (!free) twinPool.push(container);
      container.busy = true;
      return container;
    };
    const runTwin = (m: Message, receiveCount: number) => {
      const task = (async () => {
        await sleep(Math.floor(rand() * (options.twinDelayMaxMs ?? 20)));
        for (let count = receiveCount, attempt = 0; ; count++, attempt++) {
          const container = takeTwinContainer();
          stats.twinInvocations++;
          let failed: Set<string>;
          try {
            failed = await invoke(container, [recordOf(m, count)]);
          } finally {
            container.busy = false;
          }
          if (failed.size === 0) return;
          if (attempt === 6) {
            problems.push(`NEVER HANDLED: twin delivery of ${m.MessageId} still failing after ${attempt + 1} deliveries`);
            return;
          }
          await sleep(50);
        }
      })();
      twinsInFlight.add(task);
      void task.finally(() => twinsInFlight.delete(task));
    };

    const lostDeletes = new Map<string, number>();
    const droppedOnce = new Set<string>();
    const worker = async (container: Container) => {
      while (!stopping) {
        let received: Message[];
        try {
          ({ Messages: received = [] } = await sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: usageQueueUrl,
              MaxNumberOfMessages: 1 + Math.floor(rand() * 10),
              WaitTimeSeconds: 0,
              VisibilityTimeout: 2,
              MessageSystemAttributeNames: ['All'],
            }),
          ));
        } catch (error) {
          if (!stopping) problems.push(`harness: receive failed: ${String(error)}`);
          await sleep(50);
          continue;
        }
        if (received.length === 0) {
          await sleep(15);
          continue;
        }
        // Self-check: a message lost before any container saw it.
        // Known by its body: a container can receive it before the producer has read its message id.
        if (dropped) {
          const isDropped = (m: Message) => m.Body === (dropped as { body?: string }).body;
          for (const m of received.filter((m) => isDropped(m) && !droppedOnce.has(m.MessageId!))) {
            droppedOnce.add(m.MessageId!);
            await sqs.send(new DeleteMessageCommand({ QueueUrl: usageQueueUrl, ReceiptHandle: m.ReceiptHandle! }));
          }
          received = received.filter((m) => !isDropped(m));
          if (received.length === 0) continue;
        }
        const counts = new Map(received.map((m) => [m.MessageId!, Number(m.Attributes?.ApproximateReceiveCount ?? '1')]));
        for (const m of received) {
          if (rand() >= (options.twinChance ?? 0.25)) continue;
          const next = rand() < (options.twinNextCountChance ?? 0.5);
          if (next) stats.twinsNextCount++;
          else stats.twinsSameCount++;
          // SQS hands it over again while the first container works: after its n-th DynamoDB call has landed.
          const count = counts.get(m.MessageId!)! + (next ? 1 : 0);
          container.afterCalls.push({ n: Math.floor(rand() * 5), run: () => runTwin(m, count) });
        }
        container.busy = true;
        const failed = await invoke(
          container,
          received.map((m) => recordOf(m, counts.get(m.MessageId!)!)),
        );
        container.busy = false;
        for (const m of received) {
          const url = usageQueueUrl;
          if (failed.has(m.MessageId!)) {
            await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })).catch(() => undefined);
            continue;
          }
          const lost = lostDeletes.get(m.MessageId!) ?? 0;
          if (lost < 2 && rand() < (options.redeliverChance ?? 0.15)) {
            // The delete never reached SQS: the message comes back, later or at once.
            lostDeletes.set(m.MessageId!, lost + 1);
            stats.lostDeletes++;
            await sqs
              .send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: rand() < 0.5 ? 0 : 1 }))
              .catch(() => undefined);
            continue;
          }
          await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }));
        }
      }
    };
    const workers = Array.from({ length: options.instances ?? 4 }, (_, i) => worker(newContainer(`ingest-${i + 1}`)));

    // --- Metering: a run every 5 virtual minutes, one at a time --------------------------------
    const ledger = new DynamoDbMeteringLedger(documents, ledgerTable, journalTable);
    const meteringPorts = meteringPortsOf(ledger, { documents, customersTable, sqs, meteringDeadLettersUrl }, marketplace);
    const meterLog = { info: () => undefined, error: (message: string, attributes: Record<string, unknown>) => problems.push(`metering: ${message} ${JSON.stringify(attributes).slice(0, 300)}`) };
    const sealedHours = new Set<string>();
    const meter = async (now: Date): Promise<MeteringReport> => {
      stats.meteringRuns++;
      if (ingesting) stats.meteringRunsDuringIngestion++;
      const report = await meterNow(meteringPorts, meterLog, { now, deadline: new Date(Date.now() + 60_000) });
      const lastSealed = utcHourStart(new Date(now.getTime() - GRACE_MS)).getTime() - HOUR_MS;
      for (let h = utcHourStart(options.start).getTime() - 4 * HOUR_MS; h <= lastSealed; h += HOUR_MS) sealedHours.add(new Date(h).toISOString());
      stats.bucketsMetered += report.metered;
      return report;
    };
    let nextMeterAt = Math.ceil(options.start.getTime() / (5 * MIN_MS)) * 5 * MIN_MS;
    const meteringLoop = (async () => {
      while (!stopping) {
        if (clock.now() < nextMeterAt) {
          await sleep(5);
          continue;
        }
        const now = new Date(clock.now());
        nextMeterAt = Math.floor(now.getTime() / (5 * MIN_MS)) * 5 * MIN_MS + 5 * MIN_MS;
        try {
          await meter(now);
        } catch (error) {
          problems.push(`metering run at ${now.toISOString()} threw: ${String(error)}`);
        }
      }
    })();

    // --- Producer ----------------------------------------------------------------------------
    for (const m of messages) (m as { body?: string }).body = bodyOf(m, series);
    for (let i = 0; i < messages.length; ) {
      if (messages[i].sendAt > clock.now()) {
        await sleep(3);
        continue;
      }
      const due: PlannedMessage[] = [];
      while (i < messages.length && messages[i].sendAt <= clock.now() && due.length < 10) due.push(messages[i++]);
      const { Successful = [], Failed = [] } = await sqs.send(
        new SendMessageBatchCommand({ QueueUrl: usageQueueUrl, Entries: due.map((m) => ({ Id: String(m.index), MessageBody: (m as { body?: string }).body! })) }),
      );
      if (Failed.length > 0) throw new Error(`harness: SQS refused ${Failed.length} messages`);
      for (const s of Successful) messages[Number(s.Id)].sqsMessageId = s.MessageId;
    }

    // --- Drain -------------------------------------------------------------------------------
    for (let quiet = 0; quiet < 3; ) {
      await sleep(40);
      const { Attributes = {} } = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: usageQueueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
      );
      const left = Number(Attributes.ApproximateNumberOfMessages) + Number(Attributes.ApproximateNumberOfMessagesNotVisible);
      quiet = left === 0 && twinsInFlight.size === 0 && clock.invocationsInFlight === 0 ? quiet + 1 : 0;
    }
    ingesting = false;
    stopping = true;
    await Promise.all([...workers, clockLoop, meteringLoop]);
    await Promise.all([...twinsInFlight]);

    // --- Settle: every hour billed -------------------------------------------------------------
    const finalNow = utcHourStart(new Date(clock.now())).getTime() + HOUR_MS + 15 * MIN_MS;
    clock.advanceTo(finalNow);
    stats.virtualEnd = new Date(clock.now()).toISOString();
    for (let run = 0; run < 4; run++) {
      const report = await meter(new Date(clock.now()));
      if (report.sealed + report.metered + report.deferred + report.held + report.deadLettered === 0) break;
    }
    stats.hoursSealed = sealedHours.size;

    // --- What was billed, against what was sent -------------------------------------------------
    const expected = new Map<string, number>();
    for (const s of series) expected.set(s.key, 0);
    for (const u of units) expected.set(series[u.series].key, expected.get(series[u.series].key)! + u.quantity);
    const billedRecords = (await admin<{ records: any[] }>('GET', '/_admin/metering-records')).records;
    const seriesOfRecord = (r: any): Series | undefined =>
      series.find((s) => s.dimension === r.dimension && (s.customer.identityMode === 'license' ? s.customer.licenseArn === r.licenseArn : s.customer.customerIdentifier === r.customerIdentifier));
    const billed = new Map<string, number>([...series].map((s) => [s.key, 0]));
    const perHour = new Map<string, number>();
    for (const r of billedRecords) {
      const s = seriesOfRecord(r);
      if (!s) {
        problems.push(`BILLED UNKNOWN ${JSON.stringify(r)}`);
        continue;
      }
      billed.set(s.key, billed.get(s.key)! + r.quantity);
      const hourKey = `${s.key}|${r.hour}`;
      perHour.set(hourKey, (perHour.get(hourKey) ?? 0) + 1);
    }
    for (const [hourKey, count] of perHour) if (count > 1) problems.push(`BILLED TWICE ${hourKey}: ${count} records`);

    // Where each unit is in the journal (for explaining a difference).
    const journal = new DynamoDbUsageJournal(documents, journalTable);
    const where = new Map<string, string[]>();
    for (let h = utcHourStart(options.start).getTime() - 4 * HOUR_MS; h < finalNow; h += HOUR_MS) {
      const hour = new Date(h).toISOString();
      for (const entry of await journal.entries(hour)) {
        for (const e of entry.events) {
          const k = `${entry.customers[e.c].customerKey}|${e.d}|${e.q}`;
          const list = where.get(k) ?? [];
          list.push(`${hour.slice(11, 16)}:${entryIdOf(entry)}`);
          where.set(k, list);
        }
      }
    }
    const totals = new Map<string, { expected: number; billed: number }>();
    for (const s of series) {
      const want = expected.get(s.key)!;
      const got = billed.get(s.key)!;
      totals.set(s.key, { expected: want, billed: got });
      if (got === want) continue;
      const explain = units
        .filter((u) => u.series === s.index)
        .map((u) => {
          const seen = where.get(`${s.key}|${u.quantity}`) ?? [];
          const unitName = `2^${Math.log2(u.quantity)}${u.eventId ? ` (${u.eventId})` : ' (no eventId)'}`;
          if (seen.length === 0) return `${unitName} not in the journal`;
          if (u.eventId === undefined && seen.length > 1) {
            const messageId = seen[0].slice(6).split('#')[0];
            return `${unitName} journaled ${seen.length} times: ${seen.join(', ')}\n      ${trace.filter((line) => line.includes(messageId)).join('\n      ')}`;
          }
          return undefined;
        })
        .filter(Boolean);
      problems.push(`${got < want ? 'LOST' : 'DOUBLE'} ${s.customer.name} ${s.key}: billed ${got}, expected ${want} (difference ${got - want}); ${explain.join('; ') || 'journal looks complete'}`);
    }

    // Nothing valid dead-lettered, nothing refused by AWS, every bucket metered.
    for (const [name, url] of [['usage', usageDeadLettersUrl], ['metering', meteringDeadLettersUrl]] as const) {
      for (const letter of await takeAll(sqs, url)) problems.push(`DEAD-LETTERED (${name} queue) ${letter.reason}: ${JSON.stringify(letter.body).slice(0, 300)}`);
    }
    for await (const page of paginateScan({ client: documents }, { TableName: ledgerTable, ConsistentRead: true })) {
      for (const item of page.Items ?? []) {
        if (String(item.pk).startsWith('bucket#') && item.status !== 'metered') problems.push(`BUCKET NOT METERED ${item.bucketKey}: ${item.status} ${item.outcome ?? ''}`);
      }
    }
    stats.realMs = Date.now() - startedAt;
    return { seed: options.seed, problems, stats, totals, dropped, series };
  } finally {
    for (const c of containers) c.destroy();
    marketplace.destroy();
    await simulator.stop();
    await Promise.allSettled([
      ...[customersTable, journalTable, ledgerTable].map((TableName) => services.dynamoDb.send(new DeleteTableCommand({ TableName }))),
    ]);
    documents.destroy();
    sqs.destroy();
  }
}

async function takeAll(sqs: SQSClient, queueUrl: string): Promise<{ reason?: string; body: unknown }[]> {
  const taken: { reason?: string; body: unknown }[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: ['All'] }));
    if (Messages.length === 0) break;
    for (const m of Messages) {
      let body: unknown = m.Body;
      try {
        body = JSON.parse(m.Body ?? '');
      } catch {
        // kept as text
      }
      taken.push({ reason: m.MessageAttributes?.reason?.StringValue, body });
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }));
    }
  }
  await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
  return taken;
}

/** A readable summary of a run. */
export function describe(result: ScenarioResult): string {
  const s = result.stats;
  return [
    `seed ${result.seed}: ${s.messages} messages (${s.unitsDistinct} distinct events, ${s.unitsSent} sent, ${s.unitsWithoutEventId} without eventId)`,
    `virtual ${s.virtualStart} .. ${s.virtualEnd}, ${s.hourTurnsDuringIngestion} hour turns while ingesting, ${s.hoursSealed} hours sealed`,
    `${s.invocations} invocations (${s.twinInvocations} concurrent twins: ${s.twinsSameCount} same receive count, ${s.twinsNextCount} count + 1), ` +
      `${s.deliveriesWithReceiveCountAbove1} deliveries with receive count > 1, ${s.lostDeletes} lost deletes, ${s.batchItemFailures} batch item failures`,
    `${s.eventsRolledIntoOpenHour} events rolled into the open hour, ${s.duplicatesReported} reported duplicates`,
    `${s.meteringRuns} metering runs (${s.meteringRunsDuringIngestion} while ingesting), ${s.bucketsMetered} buckets metered; ${s.realMs} ms`,
    ...(result.problems.length === 0 ? ['no problem'] : result.problems.map((p) => `PROBLEM ${p}`)),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The focused case: a redelivery running alongside the delivery before it

export interface OverlapResult {
  /** What the simulator billed for the customer's `requests`, per hour. */
  readonly billed: Record<string, number>;
  readonly billedTotal: number;
  /** The journal entries holding each event of the message (by position). */
  readonly journaled: Record<number, string[]>;
  readonly deadLetters: number;
  readonly trace: string[];
}

/**
 * One message M = [1 unit at 11:12 (on time in 11:00), 2 units at 10:50 (10:00 is sealed: late,
 * rolled into 11:00)], no eventIds (the default de-duplication key: message id + position).
 * Container A takes M (ApproximateReceiveCount 1) at 11:20: its first journal append writes the
 * on-time entry; before its second append (the late entry) lands, SQS hands M again to container
 * B (ApproximateReceiveCount 2): B reads what earlier deliveries stored (position 0 only), writes
 * position 1 in a supplement entry (`M#more1`, an id A never uses) rolled into 11:00, and returns.
 * A's late entry (`M#from#10:00`) then lands too. The metering run bills 11:00 at 12:15.
 */
export async function overlappingRedelivery(services: Services): Promise<OverlapResult> {
  const n = ++scenarioCount;
  const trace: string[] = [];
  const { customersTable, journalTable, ledgerTable, sqs, usageDeadLettersUrl, meteringDeadLettersUrl, documents } = await scenarioResources(services, n);
  const simClock = new SimulatorClock({ start: new Date('2026-11-02T08:00:00.000Z'), frozen: true });
  const simulator = await startMarketplaceSimulator({ port: 0, clock: simClock, config: { rateLimitPerSecond: 0 } });
  const marketplace = new MarketplaceMeteringClient({ ...localClientConfig(simulator.url), maxAttempts: 1 });
  try {
    const admin = <T = any>(method: string, path: string, body?: unknown) => simulatorAdmin<T>(simulator.url, method, path, body);
    await admin('POST', '/_admin/products', { productCode: LICENSE.productCode, identityMode: 'license', dimensions: LICENSE.dimensions });
    const created = await admin('POST', '/_admin/customers', { productCode: LICENSE.productCode });
    const customerKey = licenseCustomerKey(created.licenseArn);
    await documents.send(
      new PutCommand({
        TableName: customersTable,
        Item: { customerKey, productCode: LICENSE.productCode, identityMode: 'license', customerAWSAccountId: created.customerAWSAccountId, licenseArn: created.licenseArn },
      }),
    );
    const ledger = new DynamoDbMeteringLedger(documents, ledgerTable, journalTable);
    const ports = meteringPortsOf(ledger, { documents, customersTable, sqs, meteringDeadLettersUrl }, marketplace);
    const meterAt = async (iso: string) => {
      simClock.set(new Date(iso));
      return meterNow(ports, { info: () => undefined, error: () => undefined }, { now: new Date(iso), deadline: new Date(Date.now() + 60_000) });
    };
    // 11:15: the metering run seals and folds 10:00 (nothing to bill yet).
    await meterAt('2026-11-02T11:15:00.000Z');

    const body = JSON.stringify([
      { licenseArn: created.licenseArn, dimension: 'requests', quantity: 1, timestamp: '2026-11-02T11:12:00.000Z' },
      { licenseArn: created.licenseArn, dimension: 'requests', quantity: 2, timestamp: '2026-11-02T10:50:00.000Z' },
    ]);
    const record = (receiveCount: number): SQSEvent['Records'][number] => ({
      messageId: 'usage-message-M',
      receiptHandle: `receipt-${receiveCount}`,
      body,
      attributes: { ApproximateReceiveCount: String(receiveCount) } as SQSEvent['Records'][number]['attributes'],
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:usage',
      awsRegion: 'us-east-1',
    });
    let releaseA!: () => void;
    const aMayGoOn = new Promise<void>((resolve) => (releaseA = resolve));
    const container = (name: string, now: string, gateSecondAppend: boolean) => {
      const real = new DynamoDbUsageJournal(documents, journalTable);
      let appends = 0;
      const journal: UsageJournal = {
        append: async (entries) => {
          // A's late entry is slow to land (network, a conflict retry...): B runs meanwhile.
          if (gateSecondAppend && ++appends === 2) await aMayGoOn;
          const out = await real.append(entries);
          trace.push(`${name} append ${entries.map((e) => `${e.hourStart.slice(11, 16)}:${entryIdOf(e)}{${e.events.map((x) => x.p).join(',')}}`).join(' ')} -> ${out.join(',')}`);
          return out;
        },
        storedPositions: async (messageId, hours) => {
          const out = await real.storedPositions(messageId, hours);
          trace.push(`${name} storedPositions -> {${[...out].join(',')}}`);
          return out;
        },
        refusedPositions: (messageId) => real.refusedPositions(messageId),
        recordRefused: (messageId, refused, at) => real.recordRefused(messageId, refused, at),
        meteredEarly: (hours) => real.meteredEarly(hours),
      };
      return createIngestHandler({
        ports: { journal, customers: new CachedCustomerDirectory(documents, customersTable), products: PRODUCTS, now: () => new Date(now) },
        deadLetters: new DeadLetterQueue(sqs, usageDeadLettersUrl),
        log: { info: () => undefined, warn: () => undefined },
      });
    };
    const a = container('A (receive count 1)', '2026-11-02T11:20:00.000Z', true);
    const b = container('B (receive count 2)', '2026-11-02T11:20:30.000Z', false);
    const first = a({ Records: [record(1)] });
    // A's on-time entry has landed; its late one has not.
    for (let i = 0; i < 200 && !trace.some((line) => line.startsWith('A')); i++) await sleep(10);
    const second = await b({ Records: [record(2)] });
    releaseA();
    const firstResponse = await first;
    if (firstResponse.batchItemFailures.length + second.batchItemFailures.length > 0) throw new Error('harness: a delivery failed');

    // 12:15: the run seals 11:00 and bills it.
    await meterAt('2026-11-02T12:15:00.000Z');
    const records = (await admin<{ records: any[] }>('GET', '/_admin/metering-records')).records;
    const billed: Record<string, number> = {};
    for (const r of records) if (r.licenseArn === created.licenseArn && r.dimension === 'requests') billed[r.hour] = (billed[r.hour] ?? 0) + r.quantity;
    const journaled: Record<number, string[]> = {};
    const reader = new DynamoDbUsageJournal(documents, journalTable);
    for (const hour of ['2026-11-02T10:00:00.000Z', '2026-11-02T11:00:00.000Z']) {
      for (const entry of await reader.entries(hour)) for (const e of entry.events) (journaled[e.p] ??= []).push(`${hour.slice(11, 16)}:${entryIdOf(entry)}`);
    }
    const deadLetters = (await takeAll(sqs, usageDeadLettersUrl)).length + (await takeAll(sqs, meteringDeadLettersUrl)).length;
    return { billed, billedTotal: Object.values(billed).reduce((x, y) => x + y, 0), journaled, deadLetters, trace };
  } finally {
    marketplace.destroy();
    await simulator.stop();
    await Promise.allSettled([customersTable, journalTable, ledgerTable].map((TableName) => services.dynamoDb.send(new DeleteTableCommand({ TableName }))));
    documents.destroy();
    sqs.destroy();
  }
}

/** A scenario's own tables, dead-letter queues and clients (queues with `attributes`). */
async function scenarioResources(services: Services, n: number, attributes?: Record<string, string>) {
  const customersTable = `ConcCustomers-${n}`;
  const journalTable = `ConcJournal-${n}`;
  const ledgerTable = `ConcLedger-${n}`;
  await Promise.all([
    createCustomersTable(services.dynamoDb, customersTable),
    createUsageJournalTable(services.dynamoDb, journalTable),
    createMeteringTable(services.dynamoDb, ledgerTable),
  ]);
  const sqs = new SQSClient(localClientConfig(services.sqsEndpoint));
  const queue = async (name: string) => (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-${n}`, Attributes: attributes }))).QueueUrl!;
  const usageDeadLettersUrl = await queue('conc-usage-dead-letters');
  const meteringDeadLettersUrl = await queue('conc-metering-dead-letters');
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient(localClientConfig(services.dynamoDbEndpoint)), { marshallOptions: { removeUndefinedValues: true } });
  return { customersTable, journalTable, ledgerTable, sqs, queue, usageDeadLettersUrl, meteringDeadLettersUrl, documents };
}

/** The metering run's ports over a scenario's resources, on real time. */
function meteringPortsOf(
  ledger: DynamoDbMeteringLedger,
  resources: Pick<Awaited<ReturnType<typeof scenarioResources>>, 'documents' | 'customersTable' | 'sqs' | 'meteringDeadLettersUrl'>,
  marketplace: Parameters<typeof sdkMeteringApi>[0],
): MeteringPorts {
  return {
    ledger,
    subscriptions: new CustomerSubscriptions(resources.documents, resources.customersTable),
    deadLetters: meteringDeadLetters(new DeadLetterQueue(resources.sqs, resources.meteringDeadLettersUrl)),
    api: sdkMeteringApi(marketplace),
    clock: { now: () => Date.now(), sleep },
  };
}
