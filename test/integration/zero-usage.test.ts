import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { awayFromTheHourEnd, useLocalEnvironment } from '../support/local-services';

/**
 * Zero-quantity records, end to end on the local environment: the simulator's lifecycle notifications
 * make customers subscribed (or not), and metering sends 0 for each idle subscribed customer's
 * dimensions of an ended hour, never for a customer who left, and never twice.
 */

const product = { productCode: 'zero-product', identityMode: 'license' as const, dimensions: ['requests', 'seats'] };

const env = useLocalEnvironment({ product });

async function admin(path: string, body?: unknown) {
  const response = await fetch(`${env().simulator.url}${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
  expect(response.ok).toBe(true);
  return response.json() as Promise<any>;
}

async function records(): Promise<{ licenseArn: string; dimension: string; hour: string; quantity: number }[]> {
  return (await admin('/_admin/metering-records')).records;
}

it('bills 0 for each dimension of an idle subscribed customer, not for one who left, and only once', async () => {
  // The simulator's licences start now. Only customers subscribed when an hour started get zero
  // records for it (a record stamped before the licence was active is refused), so the hour to fill
  // is the next one: meter as if 15 minutes after that hour has ended (past the 10-minute grace).
  // Created in the hour the next one is counted from: not in its last minute (created at 07:59:59
  // and counted from 08:00:01, they would be subscribed when 08:00 started, and 08:00 filled too).
  await awayFromTheHourEnd(60_000);
  const createdIn = Date.now();
  const idle = await admin('/_admin/customers', { productCode: product.productCode });
  const gone = await admin('/_admin/customers', { productCode: product.productCode });
  await admin('/_admin/customers/subscription', { licenseArn: gone.licenseArn, state: 'unsubscribed' });
  const status = async (licenseArn: string) =>
    (
      await env().registration.documents.send(
        new GetCommand({ TableName: env().registration.tableName, Key: { customerKey: `license#${licenseArn.split(':').pop()}` } }),
      )
    ).Item?.status;
  expect(await status(idle.licenseArn)).toBe('subscribed');
  expect(await status(gone.licenseArn)).toBe('unsubscribed');

  // Both derived from the hour the customers were created in. (Metering 135 minutes after "now", as
  // this test once did, fills the hour after next when run in the last quarter of an hour.)
  const nextHour = new Date((Math.floor(createdIn / 3_600_000) + 1) * 3_600_000);
  const later = new Date(nextHour.getTime() + 75 * 60_000);

  await admin('/_admin/clock', { now: later.toISOString() });
  const report = await env().usage.meter(later);
  expect(report).toMatchObject({ zeroRecords: 2, metered: 2, deadLettered: 0 });

  const billed = await records();
  expect(billed.filter((r) => r.licenseArn === idle.licenseArn).map((r) => [r.dimension, r.hour, r.quantity]).sort()).toEqual([
    ['requests', nextHour.toISOString(), 0],
    ['seats', nextHour.toISOString(), 0],
  ]);
  expect(billed.filter((r) => r.licenseArn === gone.licenseArn)).toEqual([]);

  // A second run for the same hour creates nothing new and sends nothing.
  const again = await env().usage.meter(later);
  expect(again).toMatchObject({ zeroRecords: 0, metered: 0, calls: 0 });
  expect(await records()).toHaveLength(billed.length);
}, 120_000);
