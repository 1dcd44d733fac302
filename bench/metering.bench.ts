import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, paginateScan } from '@aws-sdk/lib-dynamodb';
import { UsageProducer } from '../lambda/adapters/usage-producer';
import { MarketplaceLimits } from '../lambda/core/marketplace-limits';
import { ProductConfig } from '../lambda/core/product-config';
import { HOUR_MS, utcHourStart } from '../lambda/core/utc-hour';
import { startLocalApiServer } from '../local/api-gateway-server';
import { createLocalRegistration } from '../local/local-registration';
import { createLocalUsage, LocalUsageOptions } from '../local/local-usage';
import { localClientConfig, startDynamoDbLocal, startLocalSqs } from '../local/services';
import { SimulatorClock, startMarketplaceSimulator } from '../local/simulator';
import { build } from 'esbuild';
import { printFigures } from './figures';

/**
 * Usage metering: (1) validate and bucket on one core (aggregation.bench.ts), bundled by esbuild as
 * the Lambda functions are; (2) usage end to end on the local stack: the producer client to fauxqs,
 * the ingest handler into DynamoDB Local, one metering run against the simulator (its default quota
 * of 10 BatchMeterUsage calls per second on). bench/run.ts runs (1) before any other bench.
 */

/**
 * aggregation.bench.ts bundled by esbuild (as lib/handler-function.ts bundles the Lambda code) and
 * run in a fresh node process: the code as deployed, on a heap of its own.
 */
export async function benchAggregationAsDeployed(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'aggregation-bench-'));
  try {
    const file = path.join(dir, 'aggregation.js');
    await build({ entryPoints: [path.join(__dirname, 'aggregation.bench.ts')], bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile: file, logLevel: 'error' });
    const child = spawnSync(process.execPath, ['--expose-gc', file], { encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'] });
    if (child.status !== 0) throw new Error(`the aggregation benchmark failed (exit ${child.status})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// (2) End to end on the local stack
// ---------------------------------------------------------------------------------------------

const E2E_EVENTS = 20_000;
const LICENSE_CUSTOMERS = 200;
const LEGACY_CUSTOMERS = 50;
const LICENSE_PRODUCT: ProductConfig = { productCode: 'bench-license', identityMode: 'license', dimensions: ['requests', 'storage_gb'] };
const LEGACY_PRODUCT: ProductConfig = { productCode: 'bench-legacy', identityMode: 'legacy', dimensions: ['seats'] };

export async function benchEndToEnd(): Promise<void> {
  // Usage happens in the hour before the real current one; customers subscribe one minute into it
  // (the simulator's clock), and metering runs 15 minutes into the current hour.
  const currentHour = utcHourStart(new Date());
  const usageHour = new Date(currentHour.getTime() - HOUR_MS);
  const meterAt = new Date(currentHour.getTime() + 15 * 60_000);
  const clock = new SimulatorClock({ start: new Date(usageHour.getTime() + 60_000), frozen: true });

  const [dynamoDb, sqs, simulator] = await Promise.all([
    startDynamoDbLocal({ inMemory: true }),
    startLocalSqs(),
    // The default configuration: BatchMeterUsage throttled above 10 calls per second, results shuffled.
    startMarketplaceSimulator({ port: 0, clock }),
  ]);
  const stops: (() => Promise<unknown>)[] = [() => dynamoDb.stop(), () => sqs.stop(), () => simulator.stop()];
  try {
    const admin = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${simulator.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return res.json() as Promise<any>;
    };
    for (const product of [LICENSE_PRODUCT, LEGACY_PRODUCT]) {
      await admin('POST', '/_admin/products', { productCode: product.productCode, identityMode: product.identityMode, dimensions: product.dimensions });
    }
    const registration = await createLocalRegistration({
      simulatorUrl: simulator.url,
      dynamoDbEndpoint: dynamoDb.endpoint,
      products: [LICENSE_PRODUCT, LEGACY_PRODUCT],
      referenceSecret: 'metering-benchmark-reference-secret-0123456789',
    });
    const api = await startLocalApiServer({ routes: registration.routes });
    stops.unshift(() => api.stop());

    // Outside the timed part: customers subscribe on the simulator and register through our endpoint.
    const pairs: { identity: Record<string, unknown>; dimension: string; product: string }[] = [];
    for (const [product, count] of [[LICENSE_PRODUCT, LICENSE_CUSTOMERS], [LEGACY_PRODUCT, LEGACY_CUSTOMERS]] as const) {
      for (let i = 0; i < count; i++) {
        const customer = await admin('POST', '/_admin/customers', { productCode: product.productCode });
        const res = await fetch(`${api.url}/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          body: new URLSearchParams({ 'x-amzn-marketplace-token': customer.registrationToken }).toString(),
        });
        if (res.status !== 200) throw new Error(`registration failed: ${res.status} ${await res.text()}`);
        const identity =
          product.identityMode === 'license'
            ? { licenseArn: customer.licenseArn }
            : { productCode: product.productCode, customerIdentifier: customer.customerIdentifier };
        for (const dimension of product.dimensions) pairs.push({ identity, dimension, product: `${product.productCode} (${product.identityMode})` });
      }
    }
    const events = Array.from({ length: E2E_EVENTS }, (_, i) => ({
      ...pairs[i % pairs.length].identity,
      dimension: pairs[i % pairs.length].dimension,
      quantity: 1 + (i % 10),
      timestamp: new Date(usageHour.getTime() + (i % 3600) * 1000).toISOString(),
    }));
    const totalQuantity = events.reduce((n, e) => n + e.quantity, 0);

    const usageOptions: LocalUsageOptions = {
      sqsEndpoint: sqs.endpoint,
      dynamoDbEndpoint: dynamoDb.endpoint,
      simulatorUrl: simulator.url,
      products: [LICENSE_PRODUCT, LEGACY_PRODUCT],
      customersTableName: registration.tableName,
    };
    // The queues and the ledger table, without a consumer yet: the stages are timed one by one.
    const setup = await createLocalUsage(usageOptions);
    // The stack's previous scheduled run, just before the usage hour began: a deployment in service
    // has folded every earlier hour (the very first run looks back a whole day, once).
    const previousRun = await setup.meter(new Date(usageHour.getTime() - 60_000));
    if (previousRun.sealed + previousRun.metered !== 0) throw new Error(`the previous run found work: ${JSON.stringify(previousRun)}`);
    await setup.stop();

    // Stage 1: the producer client to the usage queue.
    const started = performance.now();
    const producer = new UsageProducer({ queueUrl: setup.usageQueueUrl, client: setup.sqs });
    const sent = await producer.send(events);
    if (sent.failed.length > 0) throw new Error(`${sent.failed.length} events not sent`);
    const sendSeconds = (performance.now() - started) / 1000;

    // Stage 2: ingestion (the background poller and the drain: two consumers, as Lambda would run
    // several), every DynamoDB write's consumed capacity counted.
    const ingestStarted = performance.now();
    const usage = await createLocalUsage(usageOptions);
    stops.unshift(() => usage.stop());
    const capacity = countCapacity(usage.documents);
    await usage.drainUsageQueue();
    const ingestSeconds = (performance.now() - ingestStarted) / 1000;
    const ingestCapacity = capacity.take();

    // Stage 3: one metering run.
    await admin('POST', '/_admin/clock', { now: meterAt.toISOString() });
    const meteringStarted = performance.now();
    const report = await usage.meter(meterAt);
    const meteringSeconds = (performance.now() - meteringStarted) / 1000;
    const totalSeconds = (performance.now() - started) / 1000;
    const meteringCapacity = capacity.take();

    const buckets = await scanBuckets(dynamoDb.endpoint, usage.meteringTableName);
    const counted = buckets.reduce((n, b) => n + Number(b.quantity), 0);
    if (counted !== totalQuantity) throw new Error(`the ledger counted ${counted}, the events carried ${totalQuantity}`);
    const countedEvents = buckets.reduce((n, b) => n + Number(b.usageEvents), 0);
    if (countedEvents !== E2E_EVENTS) throw new Error(`the ledger counted ${countedEvents} events, ${E2E_EVENTS} were sent`);

    const { records } = await admin('GET', '/_admin/metering-records');
    const billedQuantity = (records as { quantity: number }[]).reduce((n, r) => n + r.quantity, 0);
    if (records.length !== pairs.length || billedQuantity !== totalQuantity || report.metered !== pairs.length) {
      throw new Error(`billed ${records.length} records (${billedQuantity}) for ${pairs.length} buckets (${totalQuantity}): ${JSON.stringify(report)}`);
    }
    const { calls } = (await admin('GET', '/_admin/calls?operation=BatchMeterUsage')) as { calls: { outcome: string; recordCount?: number }[] };
    const groups = new Map<string, number>();
    for (const p of pairs) groups.set(p.product, (groups.get(p.product) ?? 0) + 1);
    const minimumCalls = [...groups.values()].reduce((n, records) => n + Math.ceil(records / MarketplaceLimits.maxRecordsPerBatch), 0);

    printFigures(
      `Usage end to end on the local stack: ${E2E_EVENTS.toLocaleString('en')} events of ${LICENSE_CUSTOMERS} license-mode customers (2 dimensions) and ${LEGACY_CUSTOMERS} legacy customers (1 dimension), producer client -> fauxqs -> ingest handler -> DynamoDB Local -> one metering run -> simulator (10 calls/s quota)`,
      {
        'overall (first send to last record billed): events/s': E2E_EVENTS / totalSeconds,
        'overall: seconds': totalSeconds,
        'send (UsageProducer, 25 events a message, 10 messages a SendMessageBatch): events/s': E2E_EVENTS / sendSeconds,
        'send: seconds': sendSeconds,
        'ingest (2 consumers, 10 messages a batch): events/s': E2E_EVENTS / ingestSeconds,
        'ingest: seconds': ingestSeconds,
        'metering run (seal and fold the hour, plan, BatchMeterUsage, store outcomes): seconds': meteringSeconds,
        'metering run: records billed/s': report.metered / meteringSeconds,
        'hour buckets = records billed': report.metered,
        'BatchMeterUsage calls made': calls.length,
        'BatchMeterUsage calls throttled': calls.filter((c) => c.outcome === 'ThrottlingException').length,
        'BatchMeterUsage calls, minimum (sum over product and mode of ceil(records/25))': minimumCalls,
        ...Object.fromEntries([...groups].map(([group, records]) => [`  ${group}: records, minimum calls`, `${records}, ${Math.ceil(records / 25)}`])),
        'records per successful call': report.metered / calls.filter((c) => c.outcome === 'Success').length,
      },
    );
    printFigures(
      'DynamoDB capacity: ingestion counted from the items it writes, the rest as DynamoDB Local reports it (ReturnConsumedCapacity INDEXES)',
      {
        // DynamoDB Local's ConsumedCapacity for transactions is below what DynamoDB bills, so
        // ingestion's units are counted from the items it sends, by the pricing rule: a
        // transactional write costs 2 WCU per KB of the item, a ConditionCheck 2 RCU.
        'ingest: journal items written per usage event (entries + late placeholders; cancelled attempts included)': ingestCapacity.puts / E2E_EVENTS,
        'ingest: usage events per journal entry': E2E_EVENTS / Math.max(1, ingestCapacity.puts),
        'ingest: write capacity units per usage event (2 x KB per entry)': ingestCapacity.putUnits / E2E_EVENTS,
        'ingest: read capacity units per usage event (seal checks, 2 each)': (2 * ingestCapacity.checks) / E2E_EVENTS,
        'ingest: read capacity units per usage event (Customers BatchGetItem, cached 1 s locally)': ingestCapacity.read / E2E_EVENTS,
        'ingest: TransactWriteItems requests per 1,000 usage events': (1000 * ingestCapacity.transactions) / E2E_EVENTS,
        'metering: write capacity units per bucket (fold, attempt, outcome; table + index, as DynamoDB Local reports them)': (meteringCapacity.writeTable + meteringCapacity.writeIndexes) / report.metered,
        'metering: read capacity units per bucket (journal and work index queries, bucket reads)': meteringCapacity.read / report.metered,
      },
    );
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
  }
}

/** Adds ReturnConsumedCapacity to every request of the client and sums what comes back. */
function countCapacity(documents: DynamoDBDocumentClient) {
  const zero = () => ({ writeTable: 0, writeIndexes: 0, read: 0, transactions: 0, puts: 0, putUnits: 0, checks: 0 });
  let sum = zero();
  const writes = new Set(['TransactWriteItemsCommand', 'BatchWriteItemCommand', 'UpdateItemCommand', 'PutItemCommand', 'DeleteItemCommand']);
  documents.middlewareStack.add(
    (next, context) => async (args) => {
      (args.input as { ReturnConsumedCapacity?: string }).ReturnConsumedCapacity = 'INDEXES';
      const result = await next(args);
      const output = result.output as { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] };
      const consumed = output.ConsumedCapacity === undefined ? [] : Array.isArray(output.ConsumedCapacity) ? output.ConsumedCapacity : [output.ConsumedCapacity];
      for (const c of consumed) {
        const indexes = Object.values(c.GlobalSecondaryIndexes ?? {}).reduce((n, i) => n + (i.CapacityUnits ?? 0), 0);
        const table = c.Table?.CapacityUnits ?? (c.CapacityUnits ?? 0) - indexes;
        if (writes.has(context.commandName ?? '')) {
          sum.writeTable += table;
          sum.writeIndexes += indexes;
        } else {
          sum.read += table + indexes;
        }
      }
      if (context.commandName === 'TransactWriteItemsCommand') {
        sum.transactions += 1;
        for (const item of (args.input as { TransactItems: { Put?: { Item: Record<string, unknown> }; ConditionCheck?: unknown }[] }).TransactItems) {
          if (item.Put) {
            sum.puts += 1;
            sum.putUnits += 2 * Math.ceil(itemBytes(item.Put.Item) / 1024);
          }
          if (item.ConditionCheck) sum.checks += 1;
        }
      }
      return result;
    },
    { step: 'initialize', name: 'benchConsumedCapacity' },
  );
  return {
    take: () => {
      const taken = sum;
      sum = zero();
      return taken;
    },
  };
}

/** An item's size as DynamoDB counts it (attribute names plus values), near enough for strings and numbers. */
function itemBytes(item: Record<string, unknown>): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) {
    bytes += Buffer.byteLength(name);
    if (typeof value === 'string') bytes += Buffer.byteLength(value);
    else if (typeof value === 'number') bytes += Math.ceil(String(value).length / 2) + 1;
    else bytes += Buffer.byteLength(JSON.stringify(value));
  }
  return bytes;
}

interface ConsumedCapacity {
  CapacityUnits?: number;
  Table?: { CapacityUnits?: number };
  GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }>;
}

async function scanBuckets(endpoint: string, tableName: string): Promise<Record<string, unknown>[]> {
  const client = DynamoDBDocumentClient.from(new DynamoDBClient(localClientConfig(endpoint)));
  const items: Record<string, unknown>[] = [];
  try {
    for await (const page of paginateScan(
      { client },
      { TableName: tableName, FilterExpression: 'begins_with(pk, :bucket)', ExpressionAttributeValues: { ':bucket': 'bucket#' } },
    )) {
      items.push(...(page.Items ?? []));
    }
  } finally {
    client.destroy();
  }
  return items;
}
