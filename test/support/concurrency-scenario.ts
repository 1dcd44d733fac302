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
 * Duplicates: SQS twins, lost deletes and DynamoDB latency, as ingestion-fleet.ts makes them.
 */
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import { CreateQueueCommand, DeleteMessageCommand, DeleteQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, paginateScan, PutCommand } from '@aws-sdk/lib-dynamodb';
import { CustomerSubscriptions } from '../../lambda/adapters/customer-directory';
import { DeadLetterQueue } from '../../lambda/adapters/dead-letter-queue';
import { sdkMeteringApi } from '../../lambda/adapters/metering-api';
import { DynamoDbMeteringLedger } from '../../lambda/adapters/metering-ledger';
import { DynamoDbUsageJournal } from '../../lambda/adapters/usage-journal';
import { licenseCustomerKey } from '../../lambda/core/customer';
import { MeteringPorts, MeteringReport } from '../../lambda/core/metering/metering-run';
import { ProductConfig } from '../../lambda/core/product-config';
import { entryIdOf } from '../../lambda/core/usage/usage-journal';
import { HOUR_MS, utcHourStart } from '../../lambda/core/utc-hour';
import { meteringDeadLetters, meterNow } from '../../lambda/metering/metering-job';
import { createCustomersTable, createMeteringTable, createUsageJournalTable } from '../../local/local-tables';
import { localClientConfig } from '../../local/services';
import { SimulatorClock, startMarketplaceSimulator } from '../../local/simulator';
import { FleetOptions, FleetStats, newFleetStats, sleep, startIngestionFleet, tracedIngest } from './ingestion-fleet';
import { simulatorAdmin } from './metering-environment';
import { customerItemOf, PlannedMessage, planUsage, ScenarioCustomer, scenarioCustomerOf, Series, seriesOf, UsagePlanOptions, UsageUnit } from './usage-plan';

export type { PlannedMessage, ScenarioCustomer, Series, UsageUnit };
import { seededRandom } from '../unit/lifecycle/event-history';

export const MIN_MS = 60_000;
/** The ingest function's timeout (the stack's: 60 s), a little less to be safe. */
export const LAMBDA_TIMEOUT_MS = 55_000;
const GRACE_MS = 10 * MIN_MS;

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

  /** Moves forward `virtualMs` every `realMs` (real time) until the returned stop is called; `onHourTurn` when a step crosses an hour. */
  startTicking(virtualMs: number, realMs: number, onHourTurn: () => void): () => Promise<void> {
    let stopped = false;
    const loop = (async () => {
      while (!stopped) {
        await sleep(realMs);
        const hourBefore = utcHourStart(new Date(this.nowMs)).getTime();
        this.advance(virtualMs);
        if (utcHourStart(new Date(this.nowMs)).getTime() !== hourBefore) onHourTurn();
      }
    })();
    return async () => {
      stopped = true;
      await loop;
    };
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
// Products and options

export const LICENSE: ProductConfig = { productCode: 'conc-license', identityMode: 'license', dimensions: ['requests', 'storage'] };
export const LEGACY: ProductConfig = { productCode: 'conc-legacy', identityMode: 'legacy', dimensions: ['seats'] };
export const PRODUCTS = [LICENSE, LEGACY];

/**
 * The fleet's options (ingestion-fleet.ts: twins, lost deletes, DynamoDB latency), and the usage
 * planned (usage-plan.ts; defaults: 24 units per series, 20% without eventId, 25% of eventId events
 * sent again, 15% late, 25% slow).
 */
export interface ScenarioOptions extends FleetOptions, UsagePlanOptions {
  /** Virtual time per clock step, and real time between steps. @default 45 s / 25 ms */
  readonly tickVirtualMs?: number;
  readonly tickRealMs?: number;
  /** Harness self-check: this message is deleted from the queue unread, as if lost. */
  readonly dropMessage?: (messages: readonly PlannedMessage[], units: readonly UsageUnit[]) => PlannedMessage;
}

export interface ScenarioStats extends FleetStats {
  messages: number;
  unitsDistinct: number;
  unitsSent: number;
  unitsWithoutEventId: number;
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
    ...newFleetStats(),
    messages: 0,
    unitsDistinct: 0,
    unitsSent: 0,
    unitsWithoutEventId: 0,
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
  let fleet: ReturnType<typeof startIngestionFleet> | undefined;

  try {
    for (const p of PRODUCTS) await admin('POST', '/_admin/products', { productCode: p.productCode, identityMode: p.identityMode, dimensions: p.dimensions });
    const customers: ScenarioCustomer[] = [];
    for (const [name, product] of [['L1', LICENSE], ['L2', LICENSE], ['L3', LICENSE], ['G1', LEGACY]] as const) {
      const created = await admin('POST', '/_admin/customers', { productCode: product.productCode });
      const customer = scenarioCustomerOf(name, product, created);
      customers.push(customer);
      await documents.send(new PutCommand({ TableName: customersTable, Item: customerItemOf(customer) }));
    }
    const series = seriesOf(customers, PRODUCTS);

    const { units, messages } = planUsage(options, { unitsPerSeries: 24, noEventIdShare: 0.2, resendShare: 0.25, lateShare: 0.15, slowShare: 0.25 }, series, rand);
    stats.messages = messages.length;
    stats.unitsDistinct = units.length;
    stats.unitsSent = messages.reduce((sum, m) => sum + m.units.length, 0);
    stats.unitsWithoutEventId = units.filter((u) => u.eventId === undefined).length;
    const dropped = options.dropMessage?.(messages, units);

    // --- Clock ---------------------------------------------------------------------------
    const clock = new VirtualClock(options.start, (now) => simClock.set(now));
    let ingesting = true;
    let stopping = false;
    const stopClock = clock.startTicking(options.tickVirtualMs ?? 45_000, options.tickRealMs ?? 25, () => {
      if (ingesting) stats.hourTurnsDuringIngestion++;
    });

    // --- Ingestion containers ---------------------------------------------------------------
    fleet = startIngestionFleet({
      dynamoDbEndpoint: services.dynamoDbEndpoint,
      sqsEndpoint: services.sqsEndpoint,
      resources: { sqs, usageQueueUrl, usageDeadLettersUrl, customersTable, journalTable },
      products: PRODUCTS,
      clock,
      rand,
      jitterRand,
      options,
      stats,
      problems,
      trace: (line) => trace.push(`${((Date.now() - startedAt) / 1000).toFixed(3)}s ${new Date(clock.now()).toISOString().slice(11, 19)} ${line}`),
      log: () => ({
        info: (message, attributes) => {
          if (message !== 'usage message ingested') return;
          stats.eventsRolledIntoOpenHour += Number(attributes.rolledOver);
          stats.duplicatesReported += Number(attributes.duplicates);
        },
        warn: () => undefined,
      }),
      droppedBody: dropped?.body,
    });

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

    // --- Producer, then drain -----------------------------------------------------------------
    await fleet.produce(messages);
    await fleet.drain();
    ingesting = false;
    stopping = true;
    await Promise.all([fleet.stop(), stopClock(), meteringLoop]);

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
    fleet?.destroy();
    marketplace.destroy();
    await simulator.stop();
    await Promise.allSettled([
      ...[customersTable, journalTable, ledgerTable].map((TableName) => services.dynamoDb.send(new DeleteTableCommand({ TableName }))),
      ...[usageQueueUrl, usageDeadLettersUrl, meteringDeadLettersUrl].map((QueueUrl) => sqs.send(new DeleteQueueCommand({ QueueUrl }))),
    ]);
    documents.destroy();
    sqs.destroy();
  }
}

/** Takes every message off a dead-letter queue: its reason (message attribute) and body (parsed when JSON). */
export async function takeAll(sqs: SQSClient, queueUrl: string): Promise<{ reason?: string; body: unknown }[]> {
  const taken: { reason?: string; body: unknown }[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: ['All'] }));
    if (Messages.length === 0) return taken;
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
    let releaseA!: () => void;
    const aMayGoOn = new Promise<void>((resolve) => (releaseA = resolve));
    const resources = { documents, sqs, customersTable, journalTable, usageDeadLettersUrl };
    const container = (name: string, now: string, gateSecondAppend: boolean) =>
      tracedIngest(resources, name, {
        now: () => Date.parse(now),
        trace: (line) => trace.push(line),
        products: PRODUCTS,
        // A's late entry is slow to land (network, a conflict retry...): B runs meanwhile.
        gate: async (call, appendsBefore) => {
          if (gateSecondAppend && call === 'append' && appendsBefore === 1) await aMayGoOn;
        },
      });
    const a = container('A (receive count 1)', '2026-11-02T11:20:00.000Z', true);
    const b = container('B (receive count 2)', '2026-11-02T11:20:30.000Z', false);
    const first = a(body, 1);
    // A's on-time entry has landed; its late one has not.
    for (let i = 0; i < 200 && !trace.some((line) => line.startsWith('A')); i++) await sleep(10);
    const second = await b(body, 2);
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
    await Promise.allSettled([
      ...[customersTable, journalTable, ledgerTable].map((TableName) => services.dynamoDb.send(new DeleteTableCommand({ TableName }))),
      ...[usageDeadLettersUrl, meteringDeadLettersUrl].map((QueueUrl) => sqs.send(new DeleteQueueCommand({ QueueUrl }))),
    ]);
    documents.destroy();
    sqs.destroy();
  }
}

/** A scenario's own tables, dead-letter queues and clients (queues with `attributes`), named `<prefix>...-<n>`. */
export async function scenarioResources(services: Services, n: number, attributes?: Record<string, string>, prefix = 'Conc') {
  const customersTable = `${prefix}Customers-${n}`;
  const journalTable = `${prefix}Journal-${n}`;
  const ledgerTable = `${prefix}Ledger-${n}`;
  await Promise.all([
    createCustomersTable(services.dynamoDb, customersTable),
    createUsageJournalTable(services.dynamoDb, journalTable),
    createMeteringTable(services.dynamoDb, ledgerTable),
  ]);
  const sqs = new SQSClient(localClientConfig(services.sqsEndpoint));
  const queue = async (name: string) => (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-${n}`, Attributes: attributes }))).QueueUrl!;
  const usageDeadLettersUrl = await queue(`${prefix.toLowerCase()}-usage-dead-letters`);
  const meteringDeadLettersUrl = await queue(`${prefix.toLowerCase()}-metering-dead-letters`);
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
