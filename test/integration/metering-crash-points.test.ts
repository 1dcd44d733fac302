/**
 * A systematic crash-point test of the metering run.
 *
 * For every k, the metering function "dies" at the k-th I/O call of a run (before the call is made,
 * or after it landed: test/support/metering-crash-points.ts), then two ordinary runs follow, and what AWS
 * Marketplace (the simulator) billed is compared with the usage: each customer x dimension x hour
 * billed exactly once with the exact quantity and allocations, nothing dead-lettered that should not
 * be, every bucket ending in the state its outcome calls for.
 *
 * The usage is set up once, end to end (simulator customers, registration, lifecycle state, usage
 * sent with the producer client and ingested into the usage journal); each case then starts from a
 * copy of that state: its own tables (Customers, Metering ledger, usage journal), its own metering
 * dead-letter queue and its own simulator loaded from the saved simulator state. The usage:
 * - license product (requests, storage_gb): L1, L2 subscribed (zero records for their idle hours),
 *   with allocations and a repeated eventId; L5 registered but not yet subscribed on AWS (held,
 *   CustomerNotSubscribed); L6 leaving (unsubscribe-pending): its current hour is metered early
 *   through a final usage flush;
 * - legacy product (seats, admins): G1, G2 subscribed; G2's seats of one hour were billed by AWS
 *   already with another quantity, so ours is a DuplicateRecord (dead-lettered, never billed).
 * Two hours are sealed and folded, then zero-filled: 11 license records and 8 legacy ones, in two
 * concurrent BatchMeterUsage calls (one per product).
 *
 * Port-level sweeps (every MeteringPorts method and the journal / ledger methods the fold uses)
 * always run; the finer wire-level sweeps (every DynamoDB, SQS and Marketplace request) take a few
 * minutes and run with CRASH_POINTS_WIRE=1.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchMeterUsageCommand, MarketplaceMeteringClient } from '@aws-sdk/client-marketplace-metering';
import { CreateQueueCommand, DeleteMessageBatchCommand, DeleteQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { BatchWriteCommand, DynamoDBDocumentClient, paginateScan, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { CustomerSubscriptions } from '../../lambda/adapters/customer-directory';
import { DeadLetterQueue } from '../../lambda/adapters/dead-letter-queue';
import { sdkMeteringApi } from '../../lambda/adapters/metering-api';
import { DynamoDbMeteringLedger } from '../../lambda/adapters/metering-ledger';
import { UsageProducer } from '../../lambda/adapters/usage-producer';
import { ZeroUsageFiller } from '../../lambda/adapters/zero-usage';
import { bucketKeyOf } from '../../lambda/core/metering/hour-bucket';
import { MeteringPorts, MeteringReport } from '../../lambda/core/metering/metering-run';
import { ProductConfig } from '../../lambda/core/product-config';
import { tagsOfKey, tagSetKey } from '../../lambda/core/usage/usage-rules';
import { utcHourStart } from '../../lambda/core/utc-hour';
import { meteringDeadLetters, meterNow } from '../../lambda/metering/metering-job';
import { startLocalApiServer } from '../../local/api-gateway-server';
import { createLocalRegistration } from '../../local/local-registration';
import { createCustomersTable, createMeteringTable, createUsageJournalTable } from '../../local/local-tables';
import { createLocalUsage } from '../../local/local-usage';
import { localClientConfig } from '../../local/services';
import { RunningSimulator, SimulatorClock, startMarketplaceSimulator } from '../../local/simulator';
import { requireJava, useDynamoDbLocal, useLocalSqs } from '../support/local-services';
import { Customer, simulatorAdmin } from '../support/metering-environment';
import { CrashInjector, CrashLevel, CrashMode, instrumentClient, instrumentGenerator, instrumentMethods } from '../support/metering-crash-points';

const HOUR_MS = 3_600_000;
const MIN_MS = 60_000;
/** The real current hour when the file was loaded; usage goes to the hours before it. */
const CURRENT_HOUR = utcHourStart(new Date());
const H = new Date(CURRENT_HOUR.getTime() - HOUR_MS);
const H1 = new Date(H.getTime() - HOUR_MS);
const H2 = new Date(H1.getTime() - HOUR_MS);
/** Customers subscribe on AWS (and their licences start) before H2, which earlier runs folded and zero-filled. */
const CREATE_AT = new Date(H2.getTime() - 5 * MIN_MS);
/** L6's agreement ends two minutes into the current hour (simulator time). */
const END_AT = new Date(CURRENT_HOUR.getTime() + 2 * MIN_MS);
/** The metering runs' time: H is over by more than the grace period, L6's final usage is due. */
const METER_AT = new Date(CURRENT_HOUR.getTime() + 15 * MIN_MS);

const LICENSE: ProductConfig = { productCode: 'crash-license', identityMode: 'license', dimensions: ['requests', 'storage_gb'] };
const LEGACY: ProductConfig = { productCode: 'crash-legacy', identityMode: 'legacy', dimensions: ['seats', 'admins'] };
const PRODUCTS = [LICENSE, LEGACY];
/** Cases run side by side (each has its own tables, queue and simulator). */
const CONCURRENT_CASES = Number(process.env.CRASH_POINTS_CONCURRENCY ?? 3);
const WIRE = process.env.CRASH_POINTS_WIRE === '1';

requireJava();
const dynamoDb = useDynamoDbLocal();
const sqs = useLocalSqs();

/** A customer of the case, named in problem lines. */
type CaseCustomer = Customer & { readonly name: string };

interface ExpectedRecord {
  readonly quantity: number;
  /** Sorted JSON of the allocations AWS must hold (undefined: not checked, none expected). */
  readonly allocations?: string;
}

/** The state every case starts from, built once. */
interface Base {
  readonly simulatorState: string;
  readonly customersItems: Record<string, unknown>[];
  readonly journalItems: Record<string, unknown>[];
  readonly ledgerItems: Record<string, unknown>[];
  readonly customers: Record<string, CaseCustomer>;
  /** identity|dimension|hour -> what AWS must have billed in the end. */
  readonly expected: Map<string, ExpectedRecord>;
  /** Bucket keys that must end `failed` (dead-lettered once or more) with that reason. */
  readonly expectedFailed: Map<string, string>;
  /** Bucket keys that must stay `sealed`, held (customer not subscribed yet). */
  readonly expectedHeld: Set<string>;
}

let base: Base;
let documents: DynamoDBDocumentClient;
let sqsClient: SQSClient;
let workDir: string;
let cases = 0;

const identityOf = (c: CaseCustomer) => (c.identityMode === 'license' ? c.licenseArn : `${c.productCode}/${c.customerIdentifier}`);
const sortedAllocations = (allocations: unknown[] | undefined) =>
  allocations === undefined ? undefined : JSON.stringify([...allocations].map((a) => JSON.stringify(a)).sort());
const at = (hour: Date, minutes: number) => new Date(hour.getTime() + minutes * MIN_MS);

async function scanAll(tableName: string, filter?: { FilterExpression: string; ExpressionAttributeValues: Record<string, unknown> }): Promise<Record<string, any>[]> {
  const items: Record<string, any>[] = [];
  for await (const page of paginateScan({ client: documents }, { TableName: tableName, ConsistentRead: true, ...filter })) items.push(...(page.Items ?? []));
  return items;
}

async function putAll(tableName: string, items: readonly Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < items.length; i += 25) {
    const { UnprocessedItems } = await documents.send(
      new BatchWriteCommand({ RequestItems: { [tableName]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) } }),
    );
    if (Object.keys(UnprocessedItems ?? {}).length > 0) throw new Error('unprocessed items while copying the base state');
  }
}

/**
 * The usage, end to end through our registration and ingestion, against one simulator; the
 * simulator's state and the tables are then kept for the cases to start from.
 */
async function buildBase(): Promise<Base> {
  const stateFile = path.join(workDir, 'base-simulator.json');
  const clock = new SimulatorClock({ start: CREATE_AT, frozen: true });
  const simulator = await startMarketplaceSimulator({ port: 0, clock, config: { rateLimitPerSecond: 0 }, stateFile });
  const admin = <T = any>(method: string, route: string, body?: unknown) => simulatorAdmin<T>(simulator.url, method, route, body);
  for (const p of PRODUCTS) await admin('POST', '/_admin/products', { productCode: p.productCode, identityMode: p.identityMode, dimensions: p.dimensions });
  const registration = await createLocalRegistration({
    simulatorUrl: simulator.url,
    dynamoDbEndpoint: dynamoDb.endpoint,
    products: PRODUCTS,
    tableName: 'CrashBaseCustomers',
    referenceSecret: 'crash-points-metering-secret-0123456789abcdef',
  });
  const api = await startLocalApiServer({ routes: registration.routes });
  const usage = await createLocalUsage({
    sqsEndpoint: sqs.endpoint,
    dynamoDbEndpoint: dynamoDb.endpoint,
    simulatorUrl: simulator.url,
    products: PRODUCTS,
    customersTableName: registration.tableName,
    meteringTableName: 'CrashBaseLedger',
    journalTableName: 'CrashBaseJournal',
    zeroUsageRecords: false,
  });
  try {
    let accounts = 0;
    const newCustomer = async (name: string, productCode: string, subscribed = true): Promise<CaseCustomer> => {
      const customerAWSAccountId = String(500000000000 + (process.pid % 1000) * 1_000_000 + ++accounts);
      const created = await admin('POST', '/_admin/customers', { productCode, customerAWSAccountId, subscribed });
      const response = await fetch(`${api.url}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ 'x-amzn-marketplace-token': created.registrationToken }).toString(),
      });
      const answer = (await response.json()) as Record<string, any>;
      if (response.status !== 200) throw new Error(`registration failed: ${response.status} ${JSON.stringify(answer)}`);
      return {
        name,
        productCode,
        identityMode: created.customerIdentifier ? 'legacy' : 'license',
        customerAWSAccountId: created.customerAWSAccountId,
        licenseArn: created.licenseArn,
        customerIdentifier: created.customerIdentifier,
        customerKey: answer.customerKey,
      };
    };
    /** The lifecycle fields the lifecycle handler would have stored. */
    const setLifecycle = async (c: CaseCustomer, fields: Record<string, string>) => {
      const names = Object.keys(fields);
      await documents.send(
        new UpdateCommand({
          TableName: registration.tableName,
          Key: { customerKey: c.customerKey },
          UpdateExpression: `SET ${names.map((_, i) => `#f${i} = :v${i}`).join(', ')}`,
          ExpressionAttributeNames: Object.fromEntries(names.map((f, i) => [`#f${i}`, f])),
          ExpressionAttributeValues: Object.fromEntries(names.map((f, i) => [`:v${i}`, fields[f]])),
        }),
      );
    };

    const customers: Record<string, CaseCustomer> = {};
    for (const name of ['L1', 'L2', 'L6']) customers[name] = await newCustomer(name, LICENSE.productCode);
    customers.L5 = await newCustomer('L5', LICENSE.productCode, false);
    for (const name of ['G1', 'G2']) customers[name] = await newCustomer(name, LEGACY.productCode);
    const { L1, L2, L5, L6, G1, G2 } = customers;
    const subscribed = { status: 'subscribed', statusEventTime: CREATE_AT.toISOString(), statusVersion: 'v-subscribed', activeSince: CREATE_AT.toISOString() };
    for (const c of [L1, L2, G1, G2]) await setLifecycle(c, subscribed);
    // L6's agreement ended: an hour of final usage; the lifecycle scheduled its flush 5 minutes on.
    await admin('POST', '/_admin/clock', { now: END_AT.toISOString() });
    await admin('POST', '/_admin/customers/subscription', { licenseArn: L6.licenseArn, state: 'unsubscribe-pending' });
    await setLifecycle(L6, {
      status: 'unsubscribe-pending',
      statusEventTime: END_AT.toISOString(),
      statusVersion: 'v-ended',
      finalUsageUntil: new Date(END_AT.getTime() + HOUR_MS).toISOString(),
      activeSince: CREATE_AT.toISOString(),
    });
    await usage.ledger.journal.scheduleFinalUsage({ customerKey: L6.customerKey, dueAt: new Date(END_AT.getTime() + 5 * MIN_MS).toISOString(), statusVersion: 'v-ended' }, END_AT);
    // A system in its steady state: the runs of the hour before folded H2 and made its zero records.
    await usage.ledger.journal.markFolded(H2.toISOString(), H1);
    await usage.ledger.zeroFillDone(H2.toISOString(), true);

    const event = (c: CaseCustomer, dimension: string, quantity: number, time: Date, extra: Record<string, unknown> = {}) => ({
      ...(c.identityMode === 'license' ? { licenseArn: c.licenseArn } : { productCode: c.productCode, customerIdentifier: c.customerIdentifier }),
      dimension,
      quantity,
      timestamp: time.toISOString(),
      ...extra,
    });
    const events = [
      event(L1, 'requests', 5, at(H1, 5), { allocations: [{ quantity: 5, tags: { team: 'red' } }] }),
      event(L1, 'requests', 7, at(H1, 25), { allocations: [{ quantity: 3, tags: { team: 'blue' } }, { quantity: 4, tags: { team: 'red' } }] }),
      event(L1, 'requests', 2, at(H1, 45)),
      event(L1, 'requests', 11, at(H, 10)),
      event(L1, 'storage_gb', 2, at(H, 20)),
      event(L1, 'storage_gb', 3, at(H, 50)),
      event(L2, 'storage_gb', 1, at(H1, 30)),
      event(L2, 'requests', 6, at(H1, 12), { eventId: 'order-1' }),
      event(L2, 'requests', 6, at(H1, 12), { eventId: 'order-1' }), // the producer's resend: counted once
      event(L2, 'requests', 1, at(H1, 40), { eventId: 'order-2' }),
      event(L5, 'requests', 9, at(H, 30)),
      event(L6, 'requests', 8, at(H, 30)),
      event(L6, 'requests', 12, CURRENT_HOUR), // the hour L6's access ends in: metered early
      event(G1, 'seats', 6, at(H, 5), { allocations: [{ quantity: 6, tags: { dept: 'eng' } }] }),
      event(G1, 'seats', 4, at(H, 55), { allocations: [{ quantity: 4, tags: { dept: 'ops' } }] }),
      event(G1, 'admins', 1, at(H1, 30)),
      event(G2, 'seats', 5, at(H1, 30)), // AWS holds 999 for this hour already: DuplicateRecord
      event(G2, 'seats', 3, at(H, 30)),
    ];
    const producer = new UsageProducer({ queueUrl: usage.usageQueueUrl, client: usage.sqs, eventsPerMessage: 4 });
    const { failed } = await producer.send(events);
    if (failed.length > 0) throw new Error(`usage not sent: ${JSON.stringify(failed)}`);
    await usage.drainUsageQueue();

    // AWS Marketplace already billed G2's seats of H1 (another quantity): ours is a DuplicateRecord.
    await admin('POST', '/_admin/clock', { now: METER_AT.toISOString() });
    const metering = new MarketplaceMeteringClient({ ...localClientConfig(simulator.url), maxAttempts: 1 });
    const prebilled = await metering.send(
      new BatchMeterUsageCommand({ ProductCode: LEGACY.productCode, UsageRecords: [{ CustomerIdentifier: G2.customerIdentifier, Dimension: 'seats', Quantity: 999, Timestamp: H1 }] }),
    );
    metering.destroy();
    if (prebilled.Results?.[0]?.Status !== 'Success') throw new Error('the pre-billed record was not billed');

    // What AWS must hold once metering is done: every (customer, dimension, hour) of the subscribed
    // customers, with usage or 0; L6's usage; G2's seats of H1 as billed before (999); nothing of L5.
    const expected = new Map<string, ExpectedRecord>();
    const key = (c: CaseCustomer, dimension: string, hour: Date) => `${identityOf(c)}|${dimension}|${hour.toISOString()}`;
    for (const c of [L1, L2, G1, G2]) {
      const product = PRODUCTS.find((p) => p.productCode === c.productCode)!;
      for (const dimension of product.dimensions) for (const hour of [H1, H]) expected.set(key(c, dimension, hour), { quantity: 0 });
    }
    const untagged = (quantity: number) => ({ AllocatedUsageQuantity: quantity });
    const tagged = (tags: Record<string, string>, quantity: number) => ({
      AllocatedUsageQuantity: quantity,
      Tags: Object.entries(tagsOfKey(tagSetKey(tags))).map(([Key, Value]) => ({ Key, Value })),
    });
    expected.set(key(L1, 'requests', H1), { quantity: 14, allocations: sortedAllocations([tagged({ team: 'red' }, 9), tagged({ team: 'blue' }, 3), untagged(2)]) });
    expected.set(key(L1, 'requests', H), { quantity: 11 });
    expected.set(key(L1, 'storage_gb', H), { quantity: 5 });
    expected.set(key(L2, 'storage_gb', H1), { quantity: 1 });
    expected.set(key(L2, 'requests', H1), { quantity: 7 });
    expected.set(key(L6, 'requests', H), { quantity: 8 });
    expected.set(key(L6, 'requests', CURRENT_HOUR), { quantity: 12 });
    expected.set(key(G1, 'seats', H), { quantity: 10, allocations: sortedAllocations([tagged({ dept: 'eng' }, 6), tagged({ dept: 'ops' }, 4)]) });
    expected.set(key(G1, 'admins', H1), { quantity: 1 });
    expected.set(key(G2, 'seats', H1), { quantity: 999 });
    expected.set(key(G2, 'seats', H), { quantity: 3 });

    await simulator.stop(); // saves its state file
    const customersItems = await scanAll(registration.tableName);
    const journalItems = await scanAll(usage.journalTableName);
    const ledgerItems = await scanAll(usage.meteringTableName);
    if (ledgerItems.some((item) => String(item.pk).startsWith('bucket#'))) throw new Error('the ledger holds buckets before any metering run');
    return {
      simulatorState: readFileSync(stateFile, 'utf8'),
      customersItems,
      journalItems,
      ledgerItems,
      customers,
      expected,
      expectedFailed: new Map([[bucketKeyOf(G2.customerKey, 'seats', H1.toISOString()), 'DuplicateRecord']]),
      expectedHeld: new Set([bucketKeyOf(L5.customerKey, 'requests', H.toISOString())]),
    };
  } finally {
    await usage.stop();
    usage.documents.destroy();
    usage.sqs.destroy();
    registration.documents.destroy();
    await Promise.allSettled([api.stop(), simulator.stop()]);
  }
}

beforeAll(async () => {
  workDir = mkdtempSync(path.join(tmpdir(), 'metering-crash-points-'));
  documents = DynamoDBDocumentClient.from(new DynamoDBClient(localClientConfig(dynamoDb.endpoint)), { marshallOptions: { removeUndefinedValues: true } });
  sqsClient = new SQSClient(localClientConfig(sqs.endpoint));
  base = await buildBase();
}, 120_000);

afterAll(() => {
  documents?.destroy();
  sqsClient?.destroy();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** One case's copy of the base state. */
interface World {
  readonly n: number;
  readonly simulator: RunningSimulator;
  readonly metering: MarketplaceMeteringClient;
  readonly customersTable: string;
  readonly ledgerTable: string;
  readonly journalTable: string;
  readonly deadLetterQueueUrl: string;
}

async function newWorld(): Promise<World> {
  const n = ++cases;
  const stateFile = path.join(workDir, `simulator-${n}.json`);
  writeFileSync(stateFile, base.simulatorState);
  const clock = new SimulatorClock({ start: METER_AT, frozen: true });
  const simulator = await startMarketplaceSimulator({ port: 0, clock, config: { rateLimitPerSecond: 0 }, stateFile });
  clock.set(METER_AT);
  const world: World = {
    n,
    simulator,
    metering: new MarketplaceMeteringClient({ ...localClientConfig(simulator.url), maxAttempts: 1 }),
    customersTable: `CrashCustomers-${n}`,
    ledgerTable: `CrashLedger-${n}`,
    journalTable: `CrashJournal-${n}`,
    deadLetterQueueUrl: (await sqsClient.send(new CreateQueueCommand({ QueueName: `crash-metering-dead-letters-${n}` }))).QueueUrl!,
  };
  const client = dynamoDb.client;
  await Promise.all([createCustomersTable(client, world.customersTable), createMeteringTable(client, world.ledgerTable), createUsageJournalTable(client, world.journalTable)]);
  await Promise.all([putAll(world.customersTable, base.customersItems), putAll(world.journalTable, base.journalItems), putAll(world.ledgerTable, base.ledgerItems)]);
  return world;
}

async function closeWorld(world: World): Promise<void> {
  world.metering.destroy();
  await world.simulator.stop();
  await Promise.allSettled([
    ...[world.customersTable, world.ledgerTable, world.journalTable].map((TableName) => dynamoDb.client.send(new DeleteTableCommand({ TableName }))),
    sqsClient.send(new DeleteQueueCommand({ QueueUrl: world.deadLetterQueueUrl })),
  ]);
  rmSync(path.join(workDir, `simulator-${world.n}.json`), { force: true });
}

/** The metering function's ports, as the Lambda handler builds them, optionally under a crash injector. */
function meteringPorts(world: World, injector?: CrashInjector, level: CrashLevel = 'ports'): MeteringPorts {
  const wire = injector && level === 'wire' ? injector : undefined;
  const docs = wire ? instrumentClient(documents, 'dynamodb', wire) : documents;
  const queue = wire ? instrumentClient(sqsClient, 'sqs', wire) : sqsClient;
  const marketplace = wire ? instrumentClient(world.metering, 'marketplace', wire) : world.metering;
  const ledger = new DynamoDbMeteringLedger(docs, world.ledgerTable, world.journalTable);
  const ports: MeteringPorts = {
    ledger,
    zeroUsage: new ZeroUsageFiller(docs, world.customersTable, ledger, PRODUCTS),
    deadLetters: meteringDeadLetters(new DeadLetterQueue(queue, world.deadLetterQueueUrl)),
    subscriptions: new CustomerSubscriptions(docs, world.customersTable),
    api: sdkMeteringApi(marketplace),
    clock: { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) },
  };
  if (injector && level === 'ports') {
    instrumentMethods(
      ledger,
      'ledger',
      [
        'sealHoursEndedBy',
        'sealFinalUsageDue',
        'sealCustomerBuckets',
        'putSealedBuckets',
        'bucketsToMeter',
        'addZeroBucket',
        'zeroFillProgress',
        'saveZeroFillProgress',
        'zeroFillDone',
        'recordAttempt',
        'recordMetered',
        'recordFailed',
        'recordHeld',
      ],
      injector,
    );
    instrumentMethods(ledger.journal, 'journal', ['foldedThrough', 'markFolded', 'sealHours', 'flushes', 'recordFlush', 'finalUsageDue', 'forgetFinalUsage'], injector);
    instrumentGenerator(ledger.journal, 'journal', 'readEntries', injector);
    instrumentMethods(ports.zeroUsage!, 'zeroUsage', ['fillHour'], injector);
    instrumentMethods(ports.subscriptions!, 'subscriptions', ['billingStates'], injector);
    instrumentMethods(ports.deadLetters, 'deadLetters', ['send', 'sendUsage'], injector);
    instrumentMethods(ports.api, 'api', ['batchMeterUsage'], injector);
  }
  return ports;
}

const SILENT = { info: () => undefined, error: () => undefined };

function meter(ports: MeteringPorts): Promise<MeteringReport> {
  return meterNow(ports, SILENT, { now: METER_AT, deadline: new Date(Date.now() + 60_000) });
}

/** Every message of the case's metering dead-letter queue. */
async function deadLetters(world: World): Promise<{ reason?: string; body: any }[]> {
  const taken: { reason?: string; body: any }[] = [];
  for (;;) {
    const { Messages = [] } = await sqsClient.send(
      new ReceiveMessageCommand({ QueueUrl: world.deadLetterQueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: ['All'] }),
    );
    if (Messages.length === 0) return taken;
    for (const m of Messages) taken.push({ reason: m.MessageAttributes?.reason?.StringValue, body: JSON.parse(m.Body ?? 'null') });
    await sqsClient.send(new DeleteMessageBatchCommand({ QueueUrl: world.deadLetterQueueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
  }
}

interface Verdict {
  readonly problems: string[];
  /** Dead letters of the expected bucket beyond the first (a repeat, not a loss). */
  readonly repeatedDeadLetters: number;
}

/** Compares what AWS billed, the ledger and the dead letters with what the usage calls for. */
async function verify(world: World): Promise<Verdict> {
  const problems: string[] = [];
  const { records } = await simulatorAdmin<{ records: any[] }>(world.simulator.url, 'GET', '/_admin/metering-records');
  const billed = new Map<string, any[]>();
  for (const r of records) {
    const k = `${r.licenseArn ?? `${r.productCode}/${r.customerIdentifier}`}|${r.dimension}|${r.hour}`;
    billed.set(k, [...(billed.get(k) ?? []), r]);
  }
  const customers = Object.values(base.customers);
  const name = (k: string) => {
    const c = customers.find((x) => k.startsWith(`${identityOf(x)}|`));
    return c ? k.replace(identityOf(c), c.name) : k;
  };
  for (const [k, want] of base.expected) {
    const got = billed.get(k) ?? [];
    if (got.length === 0) problems.push(`LOST: ${name(k)} not billed (want ${want.quantity})`);
    else if (got.length > 1) problems.push(`BILLED TWICE: ${name(k)} ${got.map((g) => g.quantity).join(' + ')}`);
    else {
      if (got[0].quantity !== want.quantity) problems.push(`WRONG QUANTITY: ${name(k)} billed ${got[0].quantity}, want ${want.quantity}`);
      const allocations = sortedAllocations(got[0].allocations);
      if (want.allocations !== undefined && allocations !== want.allocations) problems.push(`WRONG ALLOCATIONS: ${name(k)} ${allocations}, want ${want.allocations}`);
    }
  }
  for (const [k, got] of billed) if (!base.expected.has(k)) problems.push(`UNEXPECTED BILL: ${name(k)} ${got.map((g) => g.quantity).join(', ')}`);

  const byId = new Map(records.map((r) => [r.meteringRecordId, r]));
  const buckets = await scanAll(world.ledgerTable, { FilterExpression: 'begins_with(pk, :b)', ExpressionAttributeValues: { ':b': 'bucket#' } });
  for (const b of buckets) {
    const bucketKey = String(b.bucketKey);
    const label = `${customers.find((c) => c.customerKey === b.customerKey)?.name ?? b.customerKey}|${b.dimension}|${b.hourStart}`;
    const failedReason = base.expectedFailed.get(bucketKey);
    if (failedReason !== undefined) {
      if (b.status !== 'failed' || b.outcome !== failedReason) problems.push(`LEDGER: ${label} is ${b.status}/${b.outcome}, want failed/${failedReason}`);
    } else if (base.expectedHeld.has(bucketKey)) {
      if (b.status !== 'sealed' || b.outcome !== 'CustomerNotSubscribed') problems.push(`LEDGER: ${label} is ${b.status}/${b.outcome}, want sealed (held)/CustomerNotSubscribed`);
    } else if (b.status !== 'metered') {
      problems.push(`LEDGER: ${label} is ${b.status}/${b.outcome}, want metered`);
    } else {
      const record = byId.get(b.meteringRecordId);
      if (!record) problems.push(`LEDGER: ${label} metered with an id AWS does not know (${b.meteringRecordId})`);
      else if (record.quantity !== Number(b.quantity)) problems.push(`LEDGER: ${label} holds ${b.quantity}, AWS billed ${record.quantity}`);
    }
  }
  // One bucket per expected record (G2's seats of H1 is AWS's 999 there: our bucket is the failed one), and the held one.
  const expectedBuckets = base.expected.size + base.expectedHeld.size;
  if (buckets.length !== expectedBuckets) problems.push(`LEDGER: ${buckets.length} buckets, want ${expectedBuckets}`);

  let repeatedDeadLetters = 0;
  const seen = new Set<string>();
  for (const letter of await deadLetters(world)) {
    const bucketKey = letter.body?.bucket?.bucketKey;
    if (letter.body?.kind === 'usage-event') problems.push(`DEAD LETTER: usage event refused while folding: ${letter.reason} ${JSON.stringify(letter.body)}`);
    else if (base.expectedFailed.get(bucketKey) !== letter.reason) problems.push(`DEAD LETTER: ${bucketKey} ${letter.reason}`);
    else if (seen.has(bucketKey)) repeatedDeadLetters += 1;
    seen.add(bucketKey);
  }
  for (const [bucketKey, reason] of base.expectedFailed) if (!seen.has(bucketKey)) problems.push(`DEAD LETTER MISSING: ${bucketKey} ${reason}`);
  return { problems, repeatedDeadLetters };
}

interface CaseResult {
  readonly k: number | undefined;
  readonly mode: CrashMode;
  readonly level: CrashLevel;
  /** The run got to call k (and died there). */
  readonly reached: boolean;
  readonly killedAt?: string;
  readonly callsInCrashRun: number;
  readonly calls: readonly string[];
  readonly problems: string[];
  readonly repeatedDeadLetters: number;
  /** The report of the run under the injector, when it was not killed. */
  readonly firstRun?: MeteringReport;
  readonly recoveries: readonly MeteringReport[];
}

/** One case: a fresh copy of the base state, a run that dies at call k, then two ordinary runs. */
async function crashCase(level: CrashLevel, mode: CrashMode, k: number | undefined): Promise<CaseResult> {
  const world = await newWorld();
  try {
    const injector = new CrashInjector(mode, k);
    const errors: string[] = [];
    let firstRun: MeteringReport | undefined;
    try {
      firstRun = await meter(meteringPorts(world, injector, level));
    } catch (error) {
      // Once killed, what the dying run threw does not matter (a letter it could not send, say).
      if (!injector.killed) errors.push(`crash run failed: ${String(error)}`);
    }
    await injector.settle();
    // A new process for the next scheduled runs (reserved concurrency 1: one at a time).
    const recoveries: MeteringReport[] = [];
    for (let i = 1; i <= 2; i++) {
      try {
        recoveries.push(await meter(meteringPorts(world)));
      } catch (error) {
        errors.push(`recovery run ${i} failed: ${String(error)}`);
      }
    }
    const verdict = await verify(world);
    return {
      k,
      mode,
      level,
      reached: injector.killed,
      killedAt: injector.killedAt,
      callsInCrashRun: injector.count,
      calls: injector.calls,
      problems: [...errors.map((e) => `RUN ERROR: ${e}`), ...verdict.problems],
      repeatedDeadLetters: verdict.repeatedDeadLetters,
      firstRun,
      recoveries,
    };
  } finally {
    await closeWorld(world);
  }
}

/**
 * Every k from 1 until a run ends without reaching k (the last result), a few cases at a time.
 * CRASH_POINTS_MAX_K cuts it short (the sweep is then incomplete and the test fails).
 */
async function sweep(level: CrashLevel, mode: CrashMode): Promise<{ results: CaseResult[]; complete: boolean }> {
  const results: CaseResult[] = [];
  for (let first = 1; first <= Number(process.env.CRASH_POINTS_MAX_K ?? 1000); first += CONCURRENT_CASES) {
    const batch = await Promise.all(Array.from({ length: CONCURRENT_CASES }, (_, i) => crashCase(level, mode, first + i)));
    const end = batch.findIndex((r) => !r.reached);
    results.push(...(end === -1 ? batch : batch.slice(0, end + 1)));
    if (end !== -1) return { results, complete: true };
  }
  return { results, complete: false };
}

function summary(results: readonly CaseResult[]): string {
  return results
    .filter((r) => r.problems.length > 0)
    .map((r) => `k=${r.k} (${r.level}, ${r.mode}) killed ${r.killedAt ?? 'never'}:\n    ${r.problems.join('\n    ')}`)
    .join('\n');
}

describe('metering run: a crash at any I/O call loses nothing and bills nothing twice', () => {
  test('no crash: the usage is billed exactly as expected (the oracle is right)', async () => {
    const result = await crashCase('ports', 'before', undefined);
    expect(result.problems).toEqual([]);
    expect(result.firstRun).toMatchObject({ sealed: 12, zeroRecords: 7, metered: 17, deadLettered: 1, held: 1, finalUsage: 1, deferred: 0, usageRejected: 0 });
    expect(result.recoveries.map((r) => r.metered)).toEqual([0, 0]);
  }, 60_000);

  const levels: CrashLevel[] = WIRE ? ['ports', 'wire'] : ['ports'];
  for (const level of levels) {
    for (const mode of ['before', 'after'] as const) {
      test(`a crash ${mode} each ${level === 'ports' ? 'port call' : 'DynamoDB / SQS / Marketplace request'}, then two ordinary runs`, async () => {
        const started = Date.now();
        const { results, complete } = await sweep(level, mode);
        const last = results[results.length - 1];
        const repeats = results.reduce((n, r) => n + r.repeatedDeadLetters, 0);
        process.stdout.write(
          `[crash-points] ${level}/${mode}: ${results.length - 1} crash points (a whole run makes ${last.callsInCrashRun} calls), ` +
            `${results.filter((r) => r.problems.length > 0).length} broken, ${repeats} repeated dead letters, ${((Date.now() - started) / 1000).toFixed(1)} s\n` +
            (process.env.CRASH_POINTS_CALLS ? `${last.calls.join('\n')}\n` : ''),
        );
        expect(summary(results)).toBe('');
        expect(complete).toBe(true);
      }, 900_000);
    }
  }
});
