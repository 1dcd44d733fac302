import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { subscribeAndRegister, useLocalEnvironment } from '../support/local-services';

/**
 * The local demo's "meter as if later" (`POST /_local/metering/run` with `{"now": ISO}`), over HTTP on
 * the `npm start` stack: the local clock (ingestion, the schedule, the simulator) moves forward with
 * it, so usage sent after the move is counted in the hour open by the moved clock and billed by the
 * next move, instead of meeting an hour the first run sealed.
 */

const product = { productCode: 'clock-product', identityMode: 'license' as const, dimensions: ['requests'] };
const HOUR_MS = 3_600_000;

const env = useLocalEnvironment({ product });

async function simulator<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${env().simulator.url}${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  expect(response.ok).toBe(true);
  return (await response.json()) as T;
}

async function runMetering(body?: string): Promise<{ status: number; json: any }> {
  const response = await fetch(`${env().api.url}/_local/metering/run`, { method: 'POST', ...(body === undefined ? {} : { body }) });
  return { status: response.status, json: await response.json() };
}

async function sendUsage(licenseArn: string, quantity: number): Promise<void> {
  const event = { licenseArn, dimension: 'requests', quantity, timestamp: new Date().toISOString() };
  await env().usage.sqs.send(new SendMessageCommand({ QueueUrl: env().usage.usageQueueUrl, MessageBody: JSON.stringify(event) }));
  await env().usage.drainUsageQueue();
}

it('moves the local and simulator clocks forward with an "as if" run; usage sent afterwards is billed by the next one', async () => {
  const buyer = await subscribeAndRegister(env(), product.productCode);

  // Not at the very end of an hour: the test's usage must all fall in one real hour.
  const untilHourEnds = HOUR_MS - (Date.now() % HOUR_MS);
  if (untilHourEnds < 30_000) await new Promise((r) => setTimeout(r, untilHourEnds + 1000));
  const realHour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
  await sendUsage(buyer.licenseArn, 5);
  const first = new Date(realHour + HOUR_MS + 15 * 60_000);
  expect((await runMetering(JSON.stringify({ now: first.toISOString() }))).json).toMatchObject({ metered: 1, deadLettered: 0 });
  // Both clocks moved (the simulator's keeps running from there).
  expect(Math.abs(env().usage.clock.now().getTime() - first.getTime())).toBeLessThan(60_000);
  expect(Math.abs(Date.parse((await simulator('GET', '/_admin/clock')).now) - first.getTime())).toBeLessThan(60_000);

  // Sent after the move, stamped with the real time (an hour now sealed): counted in the hour open
  // by the moved clock, not refused.
  await sendUsage(buyer.licenseArn, 7);
  const refused = await env().usage.sqs.send(new ReceiveMessageCommand({ QueueUrl: env().usage.usageDeadLetterQueueUrl, MaxNumberOfMessages: 10 }));
  expect(refused.Messages ?? []).toEqual([]);

  const second = new Date(realHour + 2 * HOUR_MS + 15 * 60_000);
  expect((await runMetering(JSON.stringify({ now: second.toISOString() }))).json).toMatchObject({ metered: 1, deadLettered: 0 });
  const { records } = await simulator<{ records: { licenseArn: string; hour: string; quantity: number }[] }>('GET', '/_admin/metering-records');
  expect(records.filter((r) => r.licenseArn === buyer.licenseArn).map((r) => [r.hour, r.quantity])).toEqual([
    [new Date(realHour).toISOString(), 5],
    [new Date(realHour + HOUR_MS).toISOString(), 7],
  ]);

  // An earlier time runs metering as of then and moves nothing back.
  expect((await runMetering(JSON.stringify({ now: new Date(realHour).toISOString() }))).status).toBe(200);
  expect(Math.abs(env().usage.clock.now().getTime() - second.getTime())).toBeLessThan(60_000);
});

it('answers 400 with a message to a body that is not JSON or a now that is not a time', async () => {
  for (const body of ['{"now": ', '{"now": "tomorrow"}', '{"now": 12}']) {
    const answer = await runMetering(body);
    expect(answer.status).toBe(400);
    expect(answer.json.error).toMatch(/JSON|ISO 8601/);
  }
});
