/**
 * A legacy buyer who re-subscribes during unsubscribe-pending (AWS then sends subscribe-success
 * instead of unsubscribe-success, marketplace-facts.md), on the whole local environment with the
 * stack's default final usage delay: the flush unsubscribe-pending scheduled is withdrawn, so the
 * hour is not metered early and the rest of its usage is billed with it.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { ProductConfig } from '../../lambda/core/product-config';
import { utcHourStart } from '../../lambda/core/utc-hour';
import { useLocalEnvironment } from '../support/local-services';
import { simulatorAdmin } from '../support/metering-environment';

const PRODUCT: ProductConfig = { productCode: 'resubscribe-legacy-product', identityMode: 'legacy', dimensions: ['users'] };

// The stack's default final usage delay (300 s).
const env = useLocalEnvironment({ product: PRODUCT });

const admin = <T = any>(method: string, path: string, body?: unknown) => simulatorAdmin<T>(env().simulator.url, method, path, body);

async function sendUsage(events: Record<string, unknown>[]): Promise<void> {
  await env().usage.sqs.send(new SendMessageCommand({ QueueUrl: env().usage.usageQueueUrl, MessageBody: JSON.stringify(events) }));
  await env().usage.drainUsageQueue();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('unsubscribe-pending then subscribe-success (re-subscribed) before the flush is due: the whole hour is billed once, nothing refused', async () => {
  const e = env();
  const buyer = await admin<{ customerIdentifier: string; registrationToken: string; customerAWSAccountId: string }>('POST', '/_admin/customers', {
    productCode: PRODUCT.productCode,
    customerAWSAccountId: '610000000001',
  });
  const registered = await fetch(e.registrationUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ 'x-amzn-marketplace-token': buyer.registrationToken }).toString(),
  });
  expect(registered.status).toBe(200);
  const customerKey = `legacy#${PRODUCT.productCode}#${buyer.customerIdentifier}`;

  // One minute into the next hour (the licence was active long before).
  const hour = new Date(utcHourStart(e.usage.clock.now()).getTime() + 3_600_000);
  await e.usage.clock.moveForwardTo(new Date(hour.getTime() + 60_000));
  const identity = { productCode: PRODUCT.productCode, customerIdentifier: buyer.customerIdentifier };
  await sendUsage([{ eventId: 'before', ...identity, dimension: 'users', quantity: 5, timestamp: e.usage.clock.now().toISOString() }]);

  // The buyer cancels, then re-subscribes before unsubscribe-success: AWS sends subscribe-success.
  await admin('POST', '/_admin/customers/subscription', { customerIdentifier: buyer.customerIdentifier, state: 'unsubscribe-pending' });
  await sleep(50);
  await admin('POST', '/_admin/customers/subscription', { customerIdentifier: buyer.customerIdentifier, state: 'subscribed' });
  const { Item } = await e.registration.documents.send(new GetCommand({ TableName: e.registration.tableName, Key: { customerKey }, ConsistentRead: true }));
  expect(Item).toMatchObject({ status: 'subscribed' });

  // A scheduled run after the final usage delay, then more usage of the same hour, then the hour's own fold.
  await e.usage.clock.moveForwardTo(new Date(hour.getTime() + 7 * 60_000));
  const flushRun = await e.usage.meter();
  await sleep(1100); // the ingest's customer cache
  await sendUsage([{ eventId: 'after', ...identity, dimension: 'users', quantity: 3, timestamp: e.usage.clock.now().toISOString() }]);
  await e.usage.clock.moveForwardTo(new Date(hour.getTime() + 75 * 60_000));
  const hourRun = await e.usage.meter();

  const records = (await admin<{ records: { customerIdentifier?: string; hour: string; quantity: number }[] }>('GET', '/_admin/metering-records')).records.filter(
    (r) => r.customerIdentifier === buyer.customerIdentifier,
  );
  // The customer never left: no early flush, one record for the hour with all its usage.
  expect(records.map((r) => [r.hour, r.quantity])).toEqual([[hour.toISOString(), 8]]);
  expect({ flushed: flushRun.finalUsage, refused: hourRun.usageRejected }).toEqual({ flushed: 0, refused: 0 });
}, 60_000);
