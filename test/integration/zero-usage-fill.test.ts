/**
 * ZeroUsageFiller on DynamoDB Local, at scale: many customers are filled with writes in flight
 * together, each zero bucket exactly once; a fill stopped by its deadline resumes where it stopped
 * in the next call (not from the start) and only then marks the hour done; a customer who
 * subscribed during the hour gets no zero record for it; a bucket with usage is never overwritten.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient, GetCommand, paginateScan } from '@aws-sdk/lib-dynamodb';
import { DynamoDbMeteringLedger } from '../../lambda/adapters/metering-ledger';
import { ZeroUsageFiller, ZeroUsageFillerOptions } from '../../lambda/adapters/zero-usage';
import { bucketKeyOf, HourBucket } from '../../lambda/core/metering/hour-bucket';
import { ProductConfig } from '../../lambda/core/product-config';
import { createCustomersTable, createMeteringTable } from '../../local/local-tables';
import { localClientConfig } from '../../local/services';
import { requireJava, useDynamoDbLocal } from '../support/local-services';

requireJava();
const dynamoDb = useDynamoDbLocal();

const HOUR = new Date('2026-11-02T10:00:00.000Z');
const RUN_AT = new Date('2026-11-02T11:15:00.000Z');
const LONG_AGO = '2026-10-01T08:00:00.000Z';
const PRODUCT = { productCode: 'prod-zero', identityMode: 'license', dimensions: ['requests', 'seats'] } as ProductConfig;
const never = () => false;

interface Customer {
  readonly id: string;
  readonly status?: string;
  readonly statusEventTime?: string;
}

const customerKeyOf = (id: string) => `license#${id}`;
const customerItem = ({ id, status = 'subscribed', statusEventTime = LONG_AGO }: Customer) => ({
  customerKey: customerKeyOf(id),
  productCode: PRODUCT.productCode,
  customerAWSAccountId: '111122223333',
  licenseArn: `arn:aws:license-manager::111122223333:license:${id}`,
  status,
  statusEventTime,
});
const manyCustomers = (count: number): Customer[] => Array.from({ length: count }, (_, i) => ({ id: `l-${String(i).padStart(5, '0')}` }));
const expectedKeys = (customers: readonly Customer[], hour = HOUR) =>
  customers.flatMap((c) => PRODUCT.dimensions.map((d) => bucketKeyOf(customerKeyOf(c.id), d, hour.toISOString()))).sort();

let tables = 0;

async function setup(customers: readonly Customer[], options: ZeroUsageFillerOptions = {}) {
  const n = ++tables;
  const customersTable = `ZeroCustomers${n}`;
  const ledgerTable = `ZeroLedger${n}`;
  await createCustomersTable(dynamoDb.client, customersTable);
  await createMeteringTable(dynamoDb.client, ledgerTable);
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient(localClientConfig(dynamoDb.endpoint)), {
    marshallOptions: { removeUndefinedValues: true },
  });
  for (let i = 0; i < customers.length; i += 25) {
    await documents.send(
      new BatchWriteCommand({ RequestItems: { [customersTable]: customers.slice(i, i + 25).map((c) => ({ PutRequest: { Item: customerItem(c) } })) } }),
    );
  }
  /** Bucket PutItem requests (zero buckets) sent, and the most in flight at once. */
  const puts = { sent: 0, inFlight: 0, maxInFlight: 0 };
  documents.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { TableName?: string; Item?: { pk?: string | { S?: string } } };
      const pk = typeof input.Item?.pk === 'object' ? input.Item.pk.S : input.Item?.pk;
      const bucketPut = context.commandName === 'PutItemCommand' && input.TableName === ledgerTable && String(pk).startsWith('bucket#');
      if (!bucketPut) return next(args);
      puts.sent += 1;
      puts.maxInFlight = Math.max(puts.maxInFlight, ++puts.inFlight);
      try {
        return await next(args);
      } finally {
        puts.inFlight -= 1;
      }
    },
    { step: 'initialize', name: 'countBucketPuts' },
  );
  const ledger = new DynamoDbMeteringLedger(documents, ledgerTable, `ZeroJournal${n}`);
  const filler = new ZeroUsageFiller(documents, customersTable, ledger, [PRODUCT], options);

  /** Every bucket item in the ledger. */
  const bucketItems = async (): Promise<Record<string, any>[]> => {
    const items: Record<string, any>[] = [];
    for await (const page of paginateScan({ client: documents }, { TableName: ledgerTable, ConsistentRead: true })) {
      items.push(...(page.Items ?? []).filter((item) => String(item.pk).startsWith('bucket#')));
    }
    return items;
  };
  const bucketItem = async (bucketKey: string) =>
    (await documents.send(new GetCommand({ TableName: ledgerTable, Key: { pk: `bucket#${bucketKey}` }, ConsistentRead: true }))).Item;
  return { documents, ledger, filler, puts, bucketItems, bucketItem };
}

const keysOf = (buckets: readonly HourBucket[]) => buckets.map((b) => b.bucketKey).sort();

it('fills 500 customers x 2 dimensions with writes in flight together, each zero bucket exactly once', async () => {
  const customers = manyCustomers(500);
  const { filler, ledger, puts, bucketItems } = await setup(customers);

  const created = await filler.fillHour(HOUR, RUN_AT, never);

  expect(created).toHaveLength(1000);
  expect(keysOf(created)).toEqual(expectedKeys(customers));
  expect(puts.sent).toBe(1000);
  expect(puts.maxInFlight).toBeGreaterThan(1);
  const items = await bucketItems();
  expect(items.map((item) => item.bucketKey).sort()).toEqual(expectedKeys(customers));
  expect(items.every((item) => item.zeroUsage === true && item.quantity === 0 && item.status === 'sealed')).toBe(true);
  expect(await ledger.zeroFillDone(HOUR.toISOString())).toBe(true);

  // The hour is done: a later call writes nothing.
  expect(await filler.fillHour(HOUR, RUN_AT, never)).toEqual([]);
  expect(puts.sent).toBe(1000);
}, 120_000);

it('stops at its deadline part-way, resumes where it stopped in the next calls, and marks the hour done only at the end', async () => {
  const customers = manyCustomers(1000);
  const pageSize = 100;
  const { filler, ledger, puts, bucketItems } = await setup(customers, { pageSize });
  /** A deadline reached after `writes` more bucket writes. */
  const after = (writes: number) => {
    const until = puts.sent + writes;
    return () => puts.sent >= until;
  };

  const first = await filler.fillHour(HOUR, RUN_AT, after(700));
  expect(first.length).toBeGreaterThan(0);
  expect(first.length).toBeLessThan(2000);
  expect(await ledger.zeroFillDone(HOUR.toISOString())).toBe(false);
  const progress = await ledger.zeroFillProgress(HOUR.toISOString());
  expect(progress.resumeKey).toBeDefined();

  const second = await filler.fillHour(HOUR, RUN_AT, after(700));
  expect(second.length).toBeGreaterThan(0);
  expect(await ledger.zeroFillDone(HOUR.toISOString())).toBe(false);

  const third = await filler.fillHour(HOUR, RUN_AT, never);
  expect(await ledger.zeroFillDone(HOUR.toISOString())).toBe(true);

  // Every zero bucket created exactly once over the three calls, and stored once.
  const all = [...first, ...second, ...third];
  expect(keysOf(all)).toEqual(expectedKeys(customers));
  expect((await bucketItems()).map((item) => item.bucketKey).sort()).toEqual(expectedKeys(customers));
  // Resumed, not restarted: each resume redoes at most the page it stopped in (those writes find
  // their bucket and create nothing), where starting over would write all 2,000 again.
  expect(puts.sent).toBeLessThanOrEqual(2000 + 2 * pageSize * PRODUCT.dimensions.length);

  expect(await filler.fillHour(HOUR, RUN_AT, never)).toEqual([]);
}, 120_000);

it('gives no zero record to a customer who subscribed during the hour, nor to one who is not subscribed', async () => {
  const before = { id: 'l-before' };
  const atStart = { id: 'l-at-start', statusEventTime: HOUR.toISOString() };
  const midHour = { id: 'l-mid-hour', statusEventTime: new Date(HOUR.getTime() + 20 * 60_000).toISOString() };
  const lastSecond = { id: 'l-last-second', statusEventTime: new Date(HOUR.getTime() + 3_600_000 - 1).toISOString() };
  const left = { id: 'l-left', status: 'unsubscribed' };
  const pending = { id: 'l-pending', status: 'pending' };
  const { filler, bucketItems } = await setup([before, atStart, midHour, lastSecond, left, pending]);

  const created = await filler.fillHour(HOUR, RUN_AT, never);

  expect(keysOf(created)).toEqual(expectedKeys([before, atStart]));
  expect((await bucketItems()).map((item) => item.bucketKey).sort()).toEqual(expectedKeys([before, atStart]));
  // The mid-hour subscriber's first full hour is filled.
  const nextHour = new Date(HOUR.getTime() + 3_600_000);
  expect(keysOf(await filler.fillHour(nextHour, RUN_AT, never))).toEqual(expectedKeys([before, atStart, midHour, lastSecond], nextHour));
});

it('never overwrites a bucket that has usage', async () => {
  const busy = { id: 'l-busy' };
  const idle = { id: 'l-idle' };
  const { filler, ledger, bucketItem } = await setup([busy, idle]);
  const hour = HOUR.toISOString();
  const usageKey = bucketKeyOf(customerKeyOf(busy.id), 'requests', hour);
  await ledger.putSealedBuckets(
    [
      {
        bucketKey: usageKey,
        customerKey: customerKeyOf(busy.id),
        productCode: PRODUCT.productCode,
        identityMode: 'license',
        customerAWSAccountId: '111122223333',
        licenseArn: customerItem(busy).licenseArn,
        dimension: 'requests',
        hourStart: hour,
        quantity: 7,
        allocations: {},
        usageEvents: 3,
        firstUsageAt: '2026-11-02T10:05:00.000Z',
        lastUsageAt: '2026-11-02T10:45:00.000Z',
      },
    ],
    new Date('2026-11-02T11:10:00.000Z'),
  );
  const withUsage = await bucketItem(usageKey);

  const created = await filler.fillHour(HOUR, RUN_AT, never);

  expect(keysOf(created)).toEqual([bucketKeyOf(customerKeyOf(busy.id), 'seats', hour), ...expectedKeys([idle])].sort());
  expect(await bucketItem(usageKey)).toEqual(withUsage);
  expect(withUsage).toMatchObject({ quantity: 7, usageEvents: 3 });
  expect(withUsage?.zeroUsage).toBeUndefined();
});
