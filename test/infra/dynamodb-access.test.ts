import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CachedCustomerDirectory, CustomerSubscriptions } from '../../lambda/adapters/customer-directory';
import { CustomerRepository } from '../../lambda/adapters/customer-repository';
import { LifecycleStore } from '../../lambda/adapters/lifecycle-store';
import { encodeUsage } from '../../lambda/adapters/journal-usage-codec';
import { DynamoDbMeteringLedger } from '../../lambda/adapters/metering-ledger';
import { DynamoDbUsageJournal } from '../../lambda/adapters/usage-journal';
import { ZeroUsageFiller } from '../../lambda/adapters/zero-usage';
import { bucketKeyOf } from '../../lambda/core/metering/hour-bucket';
import { runMetering } from '../../lambda/core/metering/metering-run';
import { ingestMessages } from '../../lambda/core/usage/ingest';
import { buildApp } from '../../lib/app-builder';

/**
 * The DynamoDB actions each function's code performs, recorded by running the production adapters
 * (ingestion, a whole metering run, early metering, the lifecycle store, registration) against a
 * client that answers every command,
 * then checked against what the stack grants each function's role, table by table. A new DynamoDB
 * call in an adapter without its permission fails here, not with AccessDenied after a deploy.
 */

const PRODUCT = { productCode: 'prod-license', identityMode: 'license' as const, dimensions: ['requests'] };
const LICENSE_ARN = 'arn:aws:license-manager::111122223333:license:l-0123456789abcdef';
const CUSTOMER = {
  customerKey: 'license#l-0123456789abcdef',
  productCode: PRODUCT.productCode,
  identityMode: 'license',
  customerAWSAccountId: '111122223333',
  licenseArn: LICENSE_ARN,
  status: 'subscribed',
  statusEventTime: '2026-11-01T00:00:00.000Z',
};
/** A customer whose access ended: its final usage is due. */
const LEAVING = { ...CUSTOMER, customerKey: 'license#l-leaving', status: 'unsubscribe-pending', statusVersion: 'ended' };
const NOW = new Date('2026-11-02T10:20:00.000Z');
const LAST_HOUR = '2026-11-02T09:00:00.000Z';
/** The tables as the functions' environment names them. */
const TABLES = { journal: 'Journal', ledger: 'Ledger', customers: 'Customers' } as const;

type Access = `${string} on ${string}`;

/**
 * A document client that answers each command with something plausible (one usage entry in the last
 * hour, one sealed bucket, one subscribed customer) and records the IAM action and table of each.
 */
function recordingClient(): { client: DynamoDBDocumentClient; accesses: Set<Access> } {
  const accesses = new Set<Access>();
  const record = (action: string, table: string, index?: string) => accesses.add(`dynamodb:${action} on ${table}${index ? `/index/${index}` : ''}`);
  const bucket = { pk: `bucket#${bucketKeyOf(CUSTOMER.customerKey, 'requests', LAST_HOUR)}`, bucketKey: bucketKeyOf(CUSTOMER.customerKey, 'requests', LAST_HOUR), ...CUSTOMER, dimension: 'requests', hourStart: LAST_HOUR, quantity: 3, status: 'sealed', meteringState: 'sealed#0' };
  const client = Object.create(DynamoDBDocumentClient.prototype) as DynamoDBDocumentClient;
  Object.defineProperty(client, 'send', {
    value: async (command: { constructor: { name: string }; input: any }) => {
      const input = command.input;
      switch (command.constructor.name) {
        case 'GetCommand':
          record('GetItem', input.TableName);
          // The journal has folded up to the hour before the last one.
          return input.Key?.pk === 'folded' ? { Item: { hourStart: '2026-11-02T08:00:00.000Z' } } : {};
        case 'PutCommand':
          record('PutItem', input.TableName);
          return {};
        case 'UpdateCommand':
          record('UpdateItem', input.TableName);
          return {};
        case 'DeleteCommand':
          record('DeleteItem', input.TableName);
          return {};
        case 'QueryCommand': {
          record('Query', input.TableName, input.IndexName);
          const pk = input.ExpressionAttributeValues?.[':pk'];
          if (typeof pk === 'string' && pk.startsWith(`entry#${LAST_HOUR}#0`)) {
            const entry = { customers: [CUSTOMER], events: [{ c: 0, d: 'requests', q: 3, p: 0, id: 'e-1' }] };
            return { Items: [{ pk, sk: 'm-1', messageId: 'm-1', hourStart: LAST_HOUR, usage: encodeUsage(entry as never), writtenAt: LAST_HOUR }] };
          }
          if (input.IndexName && input.ExpressionAttributeValues?.[':state'] === 'sealed#0') return { Items: [bucket] };
          // A customer whose final usage is due.
          if (pk === 'final-usage') return { Items: [{ pk, sk: `${LAST_HOUR}#${LEAVING.customerKey}`, customerKey: LEAVING.customerKey, dueAt: LAST_HOUR, statusVersion: LEAVING.statusVersion }] };
          return { Items: [] };
        }
        case 'ScanCommand':
          record('Scan', input.TableName, input.IndexName);
          return { Items: input.TableName === TABLES.customers ? [CUSTOMER] : [] };
        case 'BatchGetCommand': {
          const responses: Record<string, unknown[]> = {};
          for (const [table, request] of Object.entries(input.RequestItems as Record<string, { Keys: Record<string, unknown>[] }>)) {
            record('BatchGetItem', table);
            const customerOf = (key: Record<string, unknown>) => (key.customerKey === LEAVING.customerKey ? LEAVING : CUSTOMER);
            responses[table] = table === TABLES.customers ? request.Keys.map(customerOf) : table === TABLES.ledger ? [bucket] : [];
          }
          return { Responses: responses };
        }
        case 'BatchWriteCommand':
          for (const table of Object.keys(input.RequestItems)) record('BatchWriteItem', table);
          return {};
        case 'TransactWriteCommand':
          for (const item of input.TransactItems as Record<string, { TableName: string }>[]) {
            const [kind, operation] = Object.entries(item)[0];
            record({ Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem' }[kind]!, operation.TableName);
          }
          return {};
        default:
          throw new Error(`the recording client does not know ${command.constructor.name}`);
      }
    },
  });
  return { client, accesses };
}

async function ingestionAccesses(): Promise<Set<Access>> {
  const { client, accesses } = recordingClient();
  const leaving = { ...CUSTOMER, customerKey: 'license#l-leaving', licenseArn: 'arn:aws:license-manager::111122223333:license:l-leaving', status: 'unsubscribe-pending' };
  await ingestMessages(
    {
      journal: new DynamoDbUsageJournal(client, TABLES.journal),
      customers: {
        // The real directory, so its own reads are recorded; plus one customer whose access is ending.
        find: async (keys) => {
          const found = new Map(await new CachedCustomerDirectory(client, TABLES.customers).find(keys));
          if (keys.includes(leaving.customerKey)) found.set(leaving.customerKey, { ...leaving, identityMode: 'license', subscription: { status: 'unsubscribe-pending' } as never });
          return found;
        },
      },
      products: [PRODUCT],
      now: () => NOW,
    },
    [
      { messageId: 'm-1', body: JSON.stringify([{ licenseArn: LICENSE_ARN, dimension: 'requests', quantity: 1, timestamp: NOW.toISOString() }]) },
      { messageId: 'm-2', body: JSON.stringify({ licenseArn: leaving.licenseArn, dimension: 'requests', quantity: 1, timestamp: NOW.toISOString() }) },
      // Redelivered: what its earlier deliveries counted is read first.
      { messageId: 'm-3', receiveCount: 2, body: JSON.stringify({ licenseArn: LICENSE_ARN, dimension: 'requests', quantity: 1, timestamp: NOW.toISOString() }) },
    ],
  );
  return accesses;
}

async function meteringAccesses(): Promise<Set<Access>> {
  const { client, accesses } = recordingClient();
  const ledger = new DynamoDbMeteringLedger(client, TABLES.ledger, TABLES.journal);
  const report = await runMetering(
    {
      ledger,
      subscriptions: new CustomerSubscriptions(client, TABLES.customers),
      zeroUsage: new ZeroUsageFiller(client, TABLES.customers, ledger, [PRODUCT]),
      deadLetters: { send: async () => undefined, sendUsage: async () => undefined },
      api: {
        batchMeterUsage: async ({ records }) => ({
          results: records.map((record, i) => ({ record, status: i === 0 ? 'Success' : 'CustomerNotSubscribed', meteringRecordId: `r-${i}` })),
          unprocessed: [],
        }),
      },
      clock: { now: () => NOW.getTime(), sleep: async () => undefined },
    },
    { now: NOW, deadline: new Date(NOW.getTime() + 60_000) },
  );
  // The run did fold, seal final usage, meter and record outcomes: every kind of write happened.
  expect(report.sealed).toBeGreaterThan(0);
  expect(report.finalUsage).toBe(1);
  expect(report.metered).toBeGreaterThan(0);
  return accesses;
}

async function finalUsageSchedulingAccesses(): Promise<Set<Access>> {
  const { client, accesses } = recordingClient();
  await new DynamoDbUsageJournal(client, TABLES.journal).scheduleFinalUsage({ customerKey: CUSTOMER.customerKey, dueAt: NOW.toISOString(), statusVersion: 'v' }, NOW);
  return accesses;
}

/** Every call of the lifecycle store, as the lifecycle function makes them. */
async function lifecycleStoreAccesses(): Promise<Set<Access>> {
  const { client, accesses } = recordingClient();
  const store = new LifecycleStore(client, TABLES.customers);
  const version = '2026-11-02T10:00:00.000Z|1|e-1';
  await store.applyStatus(CUSTOMER.customerKey, { status: 'subscribed', version, eventTime: '2026-11-02T10:00:00.000Z', freeTrial: true }, { productCode: PRODUCT.productCode });
  await store.rememberIdentity(CUSTOMER.customerKey, { productCode: PRODUCT.productCode, licenseArn: LICENSE_ARN }, '2026-11-02T10:00:01.000Z');
  await store.saveEntitlements(CUSTOMER.customerKey, [{ dimension: 'seats', value: { IntegerValue: 5 } }], version);
  await store.customer(CUSTOMER.customerKey);
  await store.customerKeyForAgreement('agmt-1');
  await store.customerKeysOfAccount(CUSTOMER.customerAWSAccountId);
  await store.rememberAgreement('agmt-1', CUSTOMER.customerKey);
  await store.keepForLater({ kind: 'agreement', change: 'created', agreementId: 'agmt-2', eventId: 'e-2', eventTime: '2026-11-02T10:00:00.000Z' });
  await store.takeKeptSignals('agmt-2');
  return accesses;
}

/** Registration's writes: the customer, its contact details, and its entitlements. */
async function registrationAccesses(): Promise<Set<Access>> {
  const { client, accesses } = recordingClient();
  const repository = new CustomerRepository(client, TABLES.customers);
  await repository.saveRegistration({ identity: { ...CUSTOMER, identityMode: 'license' }, freeTrial: false, registeredAt: NOW });
  await repository.saveContactDetails(CUSTOMER.customerKey, { company: 'Example Co', name: 'A Buyer', email: 'buyer@example.com', phone: undefined }, NOW);
  await new LifecycleStore(client, TABLES.customers).saveEntitlements(CUSTOMER.customerKey, [{ dimension: 'seats', value: { IntegerValue: 5 } }], NOW.toISOString());
  return accesses;
}

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

/** What a function's role may do, as `action on table[/index/name]`, tables by their environment name. */
function granted(t: Template, functionPattern: RegExp): Set<Access> {
  const functions = Object.entries(t.findResources('AWS::Lambda::Function')).filter(([id]) => functionPattern.test(id));
  if (functions.length !== 1) throw new Error(`expected one function matching ${functionPattern}`);
  const [, fn] = functions[0];
  const roleId = fn.Properties.Role['Fn::GetAtt'][0] as string;
  // The tables' logical ids, by the environment variable that names each for the function.
  const env = fn.Properties.Environment.Variables as Record<string, { Ref?: string }>;
  const tableOf = new Map<string, string>();
  if (env.USAGE_JOURNAL_TABLE?.Ref) tableOf.set(env.USAGE_JOURNAL_TABLE.Ref, TABLES.journal);
  if (env.METERING_TABLE?.Ref) tableOf.set(env.METERING_TABLE.Ref, TABLES.ledger);
  if (env.CUSTOMERS_TABLE?.Ref) tableOf.set(env.CUSTOMERS_TABLE.Ref, TABLES.customers);
  const statements = Object.values(t.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles ?? []).some((r: { Ref?: string }) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[])
    .filter((s) => s.Effect === 'Allow');
  const accesses = new Set<Access>();
  for (const s of statements) {
    const actions = Array.isArray(s.Action) ? s.Action : [s.Action];
    for (const resource of Array.isArray(s.Resource) ? s.Resource : [s.Resource]) {
      const target = resourceName(resource as Record<string, unknown>, tableOf);
      if (target) for (const action of actions) accesses.add(`${action} on ${target}`);
    }
  }
  return accesses;
}

/** `Journal`, `Ledger/index/byMeteringState`, ... for a table (or index) ARN in the template. */
function resourceName(resource: Record<string, unknown>, tableOf: Map<string, string>): string | undefined {
  const getAtt = resource['Fn::GetAtt'] as [string, string] | undefined;
  if (getAtt) return tableOf.get(getAtt[0]);
  const join = resource['Fn::Join'] as [string, unknown[]] | undefined;
  if (join) {
    const [first, suffix] = join[1] as [{ 'Fn::GetAtt'?: [string, string] }, string];
    const table = first?.['Fn::GetAtt'] ? tableOf.get(first['Fn::GetAtt'][0]) : undefined;
    return table && typeof suffix === 'string' ? `${table}${suffix}` : undefined;
  }
  return undefined;
}

const missing = (needed: Set<Access>, allowed: Set<Access>) => [...needed].filter((a) => !allowed.has(a)).sort();

describe('DynamoDB access: what the functions do is what they are granted', () => {
  const t = Template.fromStack(buildApp(new App({ context: { products: [PRODUCT], 'aws:cdk:bundling-stacks': [] } })));

  test('ingestion', async () => {
    const needed = await ingestionAccesses();
    expect([...needed].sort()).toEqual([
      'dynamodb:BatchGetItem on Customers',
      'dynamodb:ConditionCheckItem on Journal',
      'dynamodb:PutItem on Journal',
      'dynamodb:Query on Journal',
    ]);
    expect(missing(needed, granted(t, /^MarketplaceUsageIngest[0-9A-F]{8}$/))).toEqual([]);
  });

  test('a metering run (fold, final usage, zero records, metering, outcomes)', async () => {
    const needed = await meteringAccesses();
    expect(needed.size).toBeGreaterThan(5);
    expect(needed).toContain('dynamodb:DeleteItem on Journal');
    expect(missing(needed, granted(t, /^MarketplaceMetering[0-9A-F]{8}$/))).toEqual([]);
  });

  test('scheduling the final usage of a customer whose access ends (the lifecycle function)', async () => {
    const needed = await finalUsageSchedulingAccesses();
    expect([...needed]).toEqual(['dynamodb:PutItem on Journal']);
    expect(missing(needed, granted(t, /^MarketplaceLifecycle[0-9A-F]{8}$/))).toEqual([]);
  });

  test('the lifecycle store (the lifecycle function)', async () => {
    const needed = await lifecycleStoreAccesses();
    expect([...needed].sort()).toEqual([
      'dynamodb:DeleteItem on Customers',
      'dynamodb:GetItem on Customers',
      'dynamodb:Query on Customers/index/byCustomerAWSAccountId',
      'dynamodb:UpdateItem on Customers',
    ]);
    expect(missing(needed, granted(t, /^MarketplaceLifecycle[0-9A-F]{8}$/))).toEqual([]);
  });

  test('registration', async () => {
    const needed = await registrationAccesses();
    expect([...needed].sort()).toEqual(['dynamodb:UpdateItem on Customers']);
    expect(missing(needed, granted(t, /^MarketplaceRegistrationHandler[0-9A-F]{8}$/))).toEqual([]);
  });

  test('the check catches a missing permission', () => {
    expect(missing(new Set<Access>(['dynamodb:DeleteItem on Journal']), granted(t, /^MarketplaceUsageIngest[0-9A-F]{8}$/))).toEqual(['dynamodb:DeleteItem on Journal']);
  });
});
