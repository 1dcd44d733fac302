import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { subscribeAndRegister, useLocalEnvironment } from '../support/local-services';
import { simulatorAdmin } from '../support/metering-environment';

/**
 * The README's local demo moves the clock with `POST /_local/metering/run {"now": ISO}` (ingestion,
 * the metering schedule and the simulator). Registration is on the same clock: a buyer who
 * subscribes after a move is registered at the moved time, as the simulator starts its licence, so
 * its first hour is stamped inside the licence and billed (it used to be InvalidLicenseException).
 */

const product = { productCode: 'clock-move-product', identityMode: 'license' as const, dimensions: ['requests'] };
const MINUTE = 60_000;

const env = useLocalEnvironment({ product });

const simulator = <T = any>(method: string, path: string, body?: unknown) => simulatorAdmin<T>(env().simulator.url, method, path, body);

async function runMeteringAsOf(now: Date): Promise<any> {
  const response = await fetch(`${env().api.url}/_local/metering/run`, { method: 'POST', body: JSON.stringify({ now: now.toISOString() }) });
  expect(response.status).toBe(200);
  return response.json();
}

it('a buyer who subscribes after the demo moved the clock has its usage billed, not dead-lettered', async () => {
  // The README's first move: "+75 min".
  const start = Date.now();
  await runMeteringAsOf(new Date(start + 75 * MINUTE));

  // A buyer subscribes on the simulator (its clock was moved) and registers, as the buyer page does.
  const buyer = await subscribeAndRegister(env(), product.productCode);

  // Usage, as `npm run send-usage` sends it (stamped with the real time): counted in the hour open by the moved clock.
  const event = { licenseArn: buyer.licenseArn, dimension: 'requests', quantity: 42, timestamp: new Date().toISOString() };
  await env().usage.sqs.send(new SendMessageCommand({ QueueUrl: env().usage.usageQueueUrl, MessageBody: JSON.stringify(event) }));
  await env().usage.drainUsageQueue();

  // The README's next move bills it.
  const report = await runMeteringAsOf(new Date(start + 150 * MINUTE));
  const deadLetters = await env().usage.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: env().usage.meteringDeadLetterQueueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }),
  );
  const reasons = (deadLetters.Messages ?? []).map((m) => m.MessageAttributes?.reason?.StringValue ?? JSON.parse(m.Body ?? '{}').reason);
  const { records } = await simulator<{ records: { licenseArn: string; quantity: number }[] }>('GET', '/_admin/metering-records');
  expect({
    deadLettered: report.deadLettered,
    reasons,
    billed: records.filter((r) => r.licenseArn === buyer.licenseArn && r.quantity > 0).map((r) => r.quantity),
  }).toEqual({ deadLettered: 0, reasons: [], billed: [42] });
}, 120_000);
