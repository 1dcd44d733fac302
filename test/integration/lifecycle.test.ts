import { lifecyclePorts } from '../../lambda/lifecycle/lifecycle-ports';
/**
 * The subscription lifecycle on real components. The whole local environment, as `npm start` runs
 * it (startLocalEnvironment: the AWS Marketplace simulator, whose notifications reach our lifecycle
 * handler at POST /_local/lifecycle; DynamoDB Local; fauxqs; our registration, ingest and metering
 * code), once for a Concurrent Agreements product (EventBridge events) and once for a legacy product
 * (SNS envelopes through the queue path):
 * - after the licence is deprovisioned (or unsubscribe-pending), the customer's usage of the current
 *   hour is billed at once, and later usage is dead-lettered with the reason when its hour is folded;
 * - GetEntitlements pagination through the entitlements adapter, empty pages with a NextToken included.
 * And the real LifecycleStore on DynamoDB Local: random delivery orders of a customer's history end
 * in the same items as the in-memory ports of the unit tests (so those 2,000 orders speak for the
 * store), registration anywhere among them.
 */
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, paginateScan } from '@aws-sdk/lib-dynamodb';
import { CustomerRepository } from '../../lambda/adapters/customer-repository';
import { entitlementClient, entitlementReader } from '../../lambda/adapters/entitlements';
import { LIFECYCLE_EVENTS, LifecyclePorts, LifecycleService } from '../../lambda/core/lifecycle/lifecycle-service';
import { ProductConfig } from '../../lambda/core/product-config';
import { ProvisioningEvent } from '../../lambda/core/registration/registration-service';
import { utcHourStart } from '../../lambda/core/utc-hour';
import { createLifecycleHandler } from '../../lambda/lifecycle/lifecycle-dispatch';
import { createCustomersTable } from '../../local/local-tables';
import { LocalEnvironment, startLocalEnvironment } from '../../local/local-environment';
import { LOCAL_CREDENTIALS, localClientConfig } from '../../local/services';
import { awayFromTheHourEnd, requireJava } from '../support/local-services';
import { simulatorAdmin, type BilledRecord } from '../support/metering-environment';
import { deliverStep, deliveryOrder, describeOrder, History, HistoryStep, legacyHistory, licenseHistory, seededRandom } from '../unit/lifecycle/event-history';
import { FakeLifecyclePorts } from '../unit/lifecycle/fake-lifecycle-ports';
import { PRODUCTS } from '../unit/lifecycle/fixtures';

requireJava();

const LICENSE_PRODUCT: ProductConfig = { productCode: 'lifecycle-license-product', identityMode: 'license', dimensions: ['requests'] };
const LEGACY_PRODUCT: ProductConfig = { productCode: 'lifecycle-legacy-product', identityMode: 'legacy', dimensions: ['users'] };

let license: LocalEnvironment | undefined;
let legacy: LocalEnvironment | undefined;

beforeAll(async () => {
  const started = await Promise.allSettled([
    startLocalEnvironment({ apiPort: 0, simulatorPort: 0, product: LICENSE_PRODUCT }),
    // The legacy environment seals final usage at once; the licence one after the stack's default delay.
    startLocalEnvironment({ apiPort: 0, simulatorPort: 0, product: LEGACY_PRODUCT, finalUsageDelaySeconds: 0 }),
  ]);
  [license, legacy] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}, 120_000);

afterAll(async () => {
  await Promise.allSettled([license?.stop(), legacy?.stop()]);
}, 60_000);

const running = (env: LocalEnvironment | undefined): LocalEnvironment => {
  if (!env) throw new Error('the local environment did not start (see beforeAll)');
  return env;
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const admin = <T = any>(env: LocalEnvironment, method: string, path: string, body?: unknown) => simulatorAdmin<T>(env.simulator.url, method, path, body);

interface SimCustomer {
  customerAWSAccountId: string;
  licenseArn: string;
  customerIdentifier?: string;
  registrationToken: string;
}

/** The buyer, coming from AWS Marketplace, form-POSTs the token to the registration URL. */
async function register(env: LocalEnvironment, token: string, freeTrial = false): Promise<void> {
  const fields: Record<string, string> = { 'x-amzn-marketplace-token': token };
  if (freeTrial) fields['x-amzn-marketplace-offer-type'] = 'free-trial';
  const response = await fetch(env.registrationUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(fields).toString(),
  });
  if (response.status !== 200) throw new Error(`registration answered ${response.status}: ${await response.text()}`);
}

async function customerItem(env: LocalEnvironment, customerKey: string): Promise<Record<string, any> | undefined> {
  const { Item } = await env.registration.documents.send(
    new GetCommand({ TableName: env.registration.tableName, Key: { customerKey }, ConsistentRead: true }),
  );
  return Item;
}

/** Sends usage events to the usage queue as a seller's service would, and has them ingested. */
async function sendUsage(env: LocalEnvironment, events: Record<string, unknown>[]): Promise<void> {
  await env.usage.sqs.send(new SendMessageCommand({ QueueUrl: env.usage.usageQueueUrl, MessageBody: JSON.stringify(events) }));
  await env.usage.drainUsageQueue();
}

/** Every message on the usage dead-letter queue: reason and the event's id. */
async function usageDeadLetters(env: LocalEnvironment): Promise<{ reason?: string; eventId?: string }[]> {
  const letters: { reason?: string; eventId?: string }[] = [];
  for (let i = 0; i < 10; i++) {
    const { Messages = [] } = await env.usage.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: env.usage.usageDeadLetterQueueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], VisibilityTimeout: 300 }),
    );
    if (Messages.length === 0) break;
    for (const m of Messages) {
      const body = JSON.parse(m.Body ?? '{}') as { reason?: string; event?: { eventId?: string } };
      letters.push({ reason: m.MessageAttributes?.reason?.StringValue ?? body.reason, eventId: body.event?.eventId });
    }
  }
  return letters;
}

/** Every usage event a fold refused, on the metering dead-letter queue: reason and the event's id. */
async function foldDeadLetters(env: LocalEnvironment): Promise<{ reason?: string; eventId?: string }[]> {
  const letters: { reason?: string; eventId?: string }[] = [];
  for (let i = 0; i < 10; i++) {
    const { Messages = [] } = await env.usage.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: env.usage.meteringDeadLetterQueueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], VisibilityTimeout: 300 }),
    );
    if (Messages.length === 0) break;
    for (const m of Messages) {
      const body = JSON.parse(m.Body ?? '{}') as { kind?: string; eventId?: string };
      if (body.kind === 'usage-event') letters.push({ reason: m.MessageAttributes?.reason?.StringValue, eventId: body.eventId });
    }
  }
  return letters;
}

const billed = async (env: LocalEnvironment) => (await admin<{ records: BilledRecord[] }>(env, 'GET', '/_admin/metering-records')).records;

const eventsFor = (env: LocalEnvironment, customerKey: string): ProvisioningEvent[] =>
  env.registration.events.filter((e) => e.detail.customerKey === customerKey);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let accounts = 0;
const newAccountId = () => String(600000000000 + (process.pid % 1000) * 1000 + ++accounts);

// ---------------------------------------------------------------------------------------------
// The whole local environment
// ---------------------------------------------------------------------------------------------

describe('licence mode (EventBridge) on the whole local environment', () => {
  test('subscribe, register, use; License Deprovisioned bills the hour 5 minutes later, with usage still on its way then; later usage is dead-lettered (hour-already-billed)', async () => {
    const env = running(license);
    // The final-flush checks need "later usage" to fall in the same UTC hour as the flush.
    await awayFromTheHourEnd();
    // Subscribing on AWS Marketplace: Purchase Agreement Created and License Updated reach our handler.
    const buyer = await admin<SimCustomer>(env, 'POST', '/_admin/customers', { productCode: LICENSE_PRODUCT.productCode, customerAWSAccountId: newAccountId() });
    const customerKey = `license#${/(l-[0-9a-f]+)$/.exec(buyer.licenseArn)![1]}`;
    expect(await customerItem(env, customerKey)).toMatchObject({
      status: 'subscribed',
      productCode: LICENSE_PRODUCT.productCode,
      licenseArn: buyer.licenseArn,
      customerAWSAccountId: buyer.customerAWSAccountId,
      agreementId: expect.stringMatching(/^agmt-/),
      entitlements: [],
    });
    await register(env, buyer.registrationToken);
    expect(await customerItem(env, customerKey)).toMatchObject({ status: 'subscribed', registrationCount: 1 });

    const hour = utcHourStart(new Date());
    const minute = (m: number) => new Date(hour.getTime() + m * 60_000).toISOString();
    await sendUsage(env, [
      { eventId: 'u1', licenseArn: buyer.licenseArn, dimension: 'requests', quantity: 7, timestamp: minute(0) },
      { eventId: 'u2', licenseArn: buyer.licenseArn, dimension: 'requests', quantity: 5, timestamp: new Date().toISOString() },
    ]);
    expect(await billed(env)).toEqual([]);

    // Unsubscribing: License Deprovisioned. The hour has not ended, yet its usage is billed within
    // the final hour: 5 minutes after the end (the default delay), so that usage sent just before
    // the end and still in the queue is counted.
    const beforeTheEnd = new Date().toISOString();
    await admin(env, 'POST', '/_admin/customers/subscription', { licenseArn: buyer.licenseArn, state: 'unsubscribed' });
    const billedToBuyer = async () => (await billed(env)).filter((r) => r.licenseArn === buyer.licenseArn);
    expect(await billedToBuyer()).toEqual([]);

    await sendUsage(env, [{ eventId: 'in-flight', licenseArn: buyer.licenseArn, dimension: 'requests', quantity: 4, timestamp: beforeTheEnd }]);
    expect(await usageDeadLetters(env)).toEqual([]);
    expect(await env.usage.meter()).toMatchObject({ finalUsage: 0 });
    expect(await billedToBuyer()).toEqual([]);

    const ended = Date.parse((await customerItem(env, customerKey))!.statusEventTime);
    await env.usage.clock.moveForwardTo(new Date(ended + 300_000));
    expect(await env.usage.meter()).toMatchObject({ finalUsage: 1 });
    expect(await billedToBuyer()).toEqual([expect.objectContaining({ dimension: 'requests', hour: hour.toISOString(), quantity: 16 })]);
    const item = await customerItem(env, customerKey);
    expect(item).toMatchObject({ status: 'unsubscribed' });
    expect(Date.parse(item!.finalUsageUntil) - env.usage.clock.now().getTime()).toBeGreaterThan(50 * 60_000);
    expect(eventsFor(env, customerKey).map((e) => e.detailType)).toEqual([
      LIFECYCLE_EVENTS.entitlements,
      LIFECYCLE_EVENTS.subscribed,
      'Marketplace Customer Registered',
      LIFECYCLE_EVENTS.unsubscribed,
    ]);
    expect(eventsFor(env, customerKey).at(-1)!.detail).toMatchObject({ productCode: LICENSE_PRODUCT.productCode, licenseArn: buyer.licenseArn });

    // Later usage of that hour cannot be billed any more: not counted, and dead-lettered with the
    // reason when the hour is folded (ingestion writes it like any other usage: see ingest.ts).
    await sendUsage(env, [{ eventId: 'late', licenseArn: buyer.licenseArn, dimension: 'requests', quantity: 3, timestamp: new Date().toISOString() }]);
    expect(await usageDeadLetters(env)).toEqual([]);
    await env.usage.meter();
    expect((await billedToBuyer()).map((r) => r.quantity)).toEqual([16]);
    await env.usage.clock.moveForwardTo(new Date(hour.getTime() + 75 * 60_000));
    await env.usage.meter();
    expect(await foldDeadLetters(env)).toEqual([{ reason: 'hour-already-billed', eventId: 'late' }]);
    expect((await billedToBuyer()).map((r) => r.quantity)).toEqual([16]);
    // Every notification the simulator sent was handled.
    const notifications = (await admin<{ notifications: { delivery: string }[] }>(env, 'GET', '/_admin/notifications')).notifications;
    expect(notifications.map((n) => n.delivery)).toEqual(notifications.map(() => 'delivered'));
  });

  test('a customer billed before it registers (from the Subscribed event): its first hour is stamped when the licence notification showed it active, and billed', async () => {
    const env = running(license);
    await awayFromTheHourEnd();
    const buyer = await admin<SimCustomer>(env, 'POST', '/_admin/customers', { productCode: LICENSE_PRODUCT.productCode, customerAWSAccountId: newAccountId() });
    const customerKey = `license#${/(l-[0-9a-f]+)$/.exec(buyer.licenseArn)![1]}`;
    const item = await customerItem(env, customerKey);
    // License Updated's time is whole seconds: a second later, the licence was surely active.
    expect(item).toMatchObject({ status: 'subscribed', activeSince: expect.any(String) });
    expect(item!.firstRegisteredAt).toBeUndefined();

    const hour = utcHourStart(env.usage.clock.now());
    await sendUsage(env, [{ eventId: 'first-hour', licenseArn: buyer.licenseArn, dimension: 'requests', quantity: 9, timestamp: env.usage.clock.now().toISOString() }]);
    await admin(env, 'POST', '/_admin/customers/subscription', { licenseArn: buyer.licenseArn, state: 'unsubscribed' });
    const ended = Date.parse((await customerItem(env, customerKey))!.statusEventTime);
    await env.usage.clock.moveForwardTo(new Date(ended + 300_000));
    expect(await env.usage.meter()).toMatchObject({ finalUsage: 1, metered: 1, deadLettered: 0 });

    const records = (await billed(env)).filter((r) => r.licenseArn === buyer.licenseArn);
    expect(records).toEqual([expect.objectContaining({ hour: hour.toISOString(), quantity: 9 })]);
  });

  test('GetEntitlements through the adapter: 30 entitlements over two pages after two empty pages that carry a NextToken', async () => {
    const env = running(license);
    const buyer = await admin<SimCustomer>(env, 'POST', '/_admin/customers', { productCode: LICENSE_PRODUCT.productCode, customerAWSAccountId: newAccountId() });
    const other = await admin<SimCustomer>(env, 'POST', '/_admin/customers', { productCode: LICENSE_PRODUCT.productCode, customerAWSAccountId: newAccountId() });
    const thirty = Array.from({ length: 30 }, (_, i) => ({ dimension: `feature_${String(i).padStart(2, '0')}`, integerValue: i }));
    await admin(env, 'POST', '/_admin/entitlements', { licenseArn: buyer.licenseArn, entitlements: thirty });
    await admin(env, 'POST', '/_admin/entitlements', { licenseArn: other.licenseArn, entitlements: [{ dimension: 'not_mine', booleanValue: true }] });
    await admin(env, 'DELETE', '/_admin/faults');
    const callsBefore = (await admin<{ calls: unknown[] }>(env, 'GET', '/_admin/calls?operation=GetEntitlements')).calls.length;
    await admin(env, 'POST', '/_admin/faults', { operation: 'GetEntitlements', emptyPage: true, count: 2 });

    const client = entitlementClient({ endpoint: env.simulator.url, credentials: { ...LOCAL_CREDENTIALS } });
    const entitlements = await entitlementReader(client)({ productCode: LICENSE_PRODUCT.productCode, licenseArn: buyer.licenseArn });
    client.destroy();

    expect(entitlements).toHaveLength(30);
    expect(entitlements.map((e) => e.dimension)).toEqual(thirty.map((e) => e.dimension));
    expect(entitlements[29]).toEqual({ dimension: 'feature_29', value: { IntegerValue: 29 }, expirationDate: undefined });
    // Two empty pages, then 25 and 5.
    const calls = (await admin<{ calls: { outcome: string }[] }>(env, 'GET', '/_admin/calls?operation=GetEntitlements')).calls.slice(callsBefore);
    expect(calls.map((c) => c.outcome)).toEqual(['Success', 'Success', 'Success', 'Success']);
    expect((await admin<{ faults: unknown[] }>(env, 'GET', '/_admin/faults')).faults).toEqual([]);
  });

  test('License Updated (entitlements set on AWS Marketplace) stores every page on the customer, also past empty pages', async () => {
    const env = running(license);
    const buyer = await admin<SimCustomer>(env, 'POST', '/_admin/customers', { productCode: LICENSE_PRODUCT.productCode, customerAWSAccountId: newAccountId() });
    const customerKey = `license#${/(l-[0-9a-f]+)$/.exec(buyer.licenseArn)![1]}`;
    await admin(env, 'POST', '/_admin/faults', { operation: 'GetEntitlements', emptyPage: true, count: 2 });
    const thirty = Array.from({ length: 30 }, (_, i) => ({ dimension: `seat_tier_${i}`, integerValue: 100 + i, expirationDate: '2027-11-02T10:00:00Z' }));
    await admin(env, 'POST', '/_admin/entitlements', { licenseArn: buyer.licenseArn, entitlements: thirty });

    const item = await customerItem(env, customerKey);
    expect(item?.entitlements).toHaveLength(30);
    expect(item?.entitlements[0]).toEqual({ dimension: 'seat_tier_0', value: { IntegerValue: 100 }, expirationDate: '2027-11-02T10:00:00.000Z' });
    const updated = eventsFor(env, customerKey).filter((e) => e.detailType === LIFECYCLE_EVENTS.entitlements).at(-1);
    expect((updated?.detail.entitlements as unknown[]).length).toBe(30);
  });
});

describe('legacy product (SNS topics through the queue) on the whole local environment', () => {
  test('subscribe-success (free trial "true"), entitlement-updated, unsubscribe-pending bills the hour at once, unsubscribe-success closes metering', async () => {
    const env = running(legacy);
    await awayFromTheHourEnd();
    const buyer = await admin<SimCustomer>(env, 'POST', '/_admin/customers', {
      productCode: LEGACY_PRODUCT.productCode,
      customerAWSAccountId: newAccountId(),
      freeTrial: true,
    });
    const customerKey = `legacy#${LEGACY_PRODUCT.productCode}#${buyer.customerIdentifier}`;
    expect(await customerItem(env, customerKey)).toMatchObject({
      status: 'subscribed',
      freeTrial: true,
      identityMode: 'legacy',
      productCode: LEGACY_PRODUCT.productCode,
      customerIdentifier: buyer.customerIdentifier,
    });
    await register(env, buyer.registrationToken, true);
    await admin(env, 'POST', '/_admin/entitlements', { customerIdentifier: buyer.customerIdentifier, entitlements: [{ dimension: 'users', integerValue: 25 }] });
    expect((await customerItem(env, customerKey))?.entitlements).toEqual([{ dimension: 'users', value: { IntegerValue: 25 } }]);

    const identity = { productCode: LEGACY_PRODUCT.productCode, customerIdentifier: buyer.customerIdentifier };
    const hour = utcHourStart(new Date());
    await sendUsage(env, [
      { eventId: 'l1', ...identity, dimension: 'users', quantity: 4, timestamp: hour.toISOString() },
      { eventId: 'l2', ...identity, dimension: 'users', quantity: 6, timestamp: new Date().toISOString() },
    ]);

    // unsubscribe-pending: about an hour left to meter; the usage so far is billed now.
    await admin(env, 'POST', '/_admin/customers/subscription', { customerIdentifier: buyer.customerIdentifier, state: 'unsubscribe-pending' });
    expect((await billed(env)).filter((r) => r.customerIdentifier === buyer.customerIdentifier)).toEqual([
      expect.objectContaining({ productCode: LEGACY_PRODUCT.productCode, dimension: 'users', hour: hour.toISOString(), quantity: 10 }),
    ]);
    expect(await customerItem(env, customerKey)).toMatchObject({ status: 'unsubscribe-pending', freeTrial: true });
    await sendUsage(env, [{ eventId: 'l3', ...identity, dimension: 'users', quantity: 1, timestamp: new Date().toISOString() }]);

    // unsubscribe-success: no more metering at all.
    await admin(env, 'POST', '/_admin/customers/subscription', { customerIdentifier: buyer.customerIdentifier, state: 'unsubscribed' });
    expect(await customerItem(env, customerKey)).toMatchObject({ status: 'unsubscribed' });
    await sleep(1100); // the ingest's customer cache (one second locally)
    await sendUsage(env, [{ eventId: 'l4', ...identity, dimension: 'users', quantity: 2, timestamp: new Date().toISOString() }]);

    expect(await usageDeadLetters(env)).toEqual([{ reason: 'customer-not-subscribed', eventId: 'l4' }]);
    expect((await billed(env)).filter((r) => r.customerIdentifier === buyer.customerIdentifier).map((r) => r.quantity)).toEqual([10]);
    // l3 came after the hour was billed: refused when the hour is folded.
    await env.usage.clock.moveForwardTo(new Date(hour.getTime() + 75 * 60_000));
    await env.usage.meter();
    expect(await foldDeadLetters(env)).toEqual([{ reason: 'hour-already-billed', eventId: 'l3' }]);
    expect(eventsFor(env, customerKey).map((e) => e.detailType)).toEqual([
      LIFECYCLE_EVENTS.subscribed,
      'Marketplace Customer Registered',
      LIFECYCLE_EVENTS.entitlements,
      LIFECYCLE_EVENTS['unsubscribe-pending'],
      LIFECYCLE_EVENTS.unsubscribed,
    ]);
    const notifications = (await admin<{ notifications: { notification: { channel: string; topic?: string }; delivery: string }[] }>(env, 'GET', '/_admin/notifications')).notifications;
    expect(notifications.map((n) => [n.notification.channel, n.notification.topic, n.delivery])).toEqual([
      ['sns', 'subscription', 'delivered'],
      ['sns', 'entitlement', 'delivered'],
      ['sns', 'subscription', 'delivered'],
      ['sns', 'subscription', 'delivered'],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// The real LifecycleStore: delivery orders
// ---------------------------------------------------------------------------------------------

describe('the real LifecycleStore (DynamoDB Local): any delivery order ends in the same items', () => {
  const SEED = Number(process.env.LIFECYCLE_SEED ?? 20261103);
  const ENTITLEMENTS = [{ dimension: 'seats', value: { IntegerValue: 10 } }];
  let tables = 0;

  /** Delivers `order` to the real store in a fresh Customers table; returns its items and what was published. */
  async function deliverToStore(order: readonly HistoryStep[]) {
    const env = running(license);
    const documents: DynamoDBDocumentClient = env.registration.documents;
    const dynamoDb = new DynamoDBClient(localClientConfig(env.dynamoDb.endpoint));
    const tableName = `LifecycleOrders${++tables}`;
    await createCustomersTable(dynamoDb, tableName);
    const published: string[] = [];
    // The production wiring, on a fresh table, with fixed entitlements and no metering.
    const ports: LifecyclePorts = lifecyclePorts({
      documents,
      customersTable: tableName,
      entitlements: async () => ENTITLEMENTS,
      publish: async (detailType) => void published.push(detailType),
      flushUsage: async () => undefined,
    });
    const lifecycle = createLifecycleHandler(new LifecycleService(ports, PRODUCTS), { info: () => undefined });
    const repository = new CustomerRepository(documents, tableName);
    for (const step of order) {
      await deliverStep(step, lifecycle, async (r) => {
        await repository.saveRegistration({ identity: r.identity, freeTrial: r.freeTrial, registeredAt: new Date(r.at) });
      });
    }
    const items: Record<string, Record<string, unknown>> = {};
    for await (const page of paginateScan({ client: documents }, { TableName: tableName, ConsistentRead: true })) {
      for (const item of page.Items ?? []) items[String(item.customerKey)] = item;
    }
    await dynamoDb.send(new DeleteTableCommand({ TableName: tableName }));
    dynamoDb.destroy();
    return { items: Object.fromEntries(Object.entries(items).sort(([a], [b]) => a.localeCompare(b))), published };
  }

  async function deliverToFake(order: readonly HistoryStep[]) {
    const ports = new FakeLifecyclePorts();
    ports.entitlements = () => ENTITLEMENTS;
    const lifecycle = createLifecycleHandler(new LifecycleService(ports, PRODUCTS), { info: () => undefined });
    for (const step of order) await deliverStep(step, lifecycle, (r) => ports.register(r.identity, { freeTrial: r.freeTrial, at: r.at }));
    return ports.snapshot();
  }

  test.each([
    ['licence mode', licenseHistory, 0],
    ['legacy mode', legacyHistory, 1],
  ] as const)('%s: 25 orders of 5 histories, each equal to the in-memory ports and to the order it happened in', async (_, generate, offset) => {
    const random = seededRandom(SEED + offset);
    let checked = 0;
    for (let h = 0; h < 5; h++) {
      const history: History = generate(random);
      const reference = await deliverToStore(history.steps);
      expect(reference.items[history.customerKey]).toMatchObject({ status: expect.any(String), statusVersion: expect.any(String) });
      for (let o = 0; o < 5; o++) {
        const order = deliveryOrder(history, random);
        const [real, fake] = await Promise.all([deliverToStore(order), deliverToFake(order)]);
        try {
          expect(real.items).toEqual(fake);
          expect(real.items).toEqual(reference.items);
        } catch (error) {
          if (error instanceof Error) error.message = `LIFECYCLE_SEED=${SEED}, history ${h}, order:\n${describeOrder(order)}\n\n${error.message}`;
          throw error;
        }
        checked += 1;
      }
    }
    expect(checked).toBe(25);
  }, 60_000);

  test('registration before or after the lifecycle notifications: the same customer item', async () => {
    const random = seededRandom(7);
    let history: History;
    do history = licenseHistory(random);
    while (!history.steps.some((s) => s.kind === 'registration') || !history.steps.some((s) => s.label.startsWith('License Deprovisioned')));
    const registration = history.steps.filter((s) => s.kind === 'registration');
    const notifications = history.steps.filter((s) => s.kind !== 'registration');

    const first = await deliverToStore([...registration, ...notifications]);
    const last = await deliverToStore([...notifications, ...registration]);

    expect(last.items).toEqual(first.items);
    expect(first.items[history.customerKey]).toMatchObject({ status: 'unsubscribed', registrationCount: 1, customerAWSAccountId: expect.any(String) });
  });
});
