import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { LocalEnvironment, startLocalEnvironment } from '../../local/local-environment';
import { requireJava, subscribeAndRegister } from '../support/local-services';
import { simulatorAdmin } from '../support/metering-environment';

/**
 * `PERSIST_DATA=true npm start`: the tables and the simulator's state outlive a restart. A buyer
 * registered in one run is billed in the next (the simulator still knows its licence), and a clock
 * the first run moved forward stays moved (or the kept hours would be sealed ahead of the clock and
 * new usage refused as already billed).
 */

requireJava();

const product = { productCode: 'persisted-product', identityMode: 'license' as const, dimensions: ['requests'] };
const MINUTE = 60_000;

let dataDirectory: string;
let env: LocalEnvironment | undefined;

beforeAll(async () => {
  dataDirectory = await mkdtemp(path.join(tmpdir(), 'persist-data-'));
});
afterAll(async () => {
  await env?.stop();
  await rm(dataDirectory, { recursive: true, force: true });
}, 60_000);

const start = () => startLocalEnvironment({ apiPort: 0, simulatorPort: 0, product, persistData: true, dataDirectory });

async function runMeteringAsOf(now: Date): Promise<{ deadLettered: number }> {
  const response = await fetch(`${env!.api.url}/_local/metering/run`, { method: 'POST', body: JSON.stringify({ now: now.toISOString() }) });
  expect(response.status).toBe(200);
  return response.json() as Promise<{ deadLettered: number }>;
}

it('a buyer registered before a restart is billed after it, on the clock the first run moved', async () => {
  env = await start();
  const buyer = await subscribeAndRegister(env, product.productCode);
  const movedTo = new Date(Date.now() + 75 * MINUTE);
  await runMeteringAsOf(movedTo);
  await env.stop();
  env = undefined;
  const saved = JSON.parse(await readFile(path.join(dataDirectory, 'simulator.json'), 'utf8')) as { customers: { licenseArn: string }[] };
  expect(saved.customers.map((c) => c.licenseArn)).toEqual([buyer.licenseArn]);

  env = await start();
  // The clocks stand where the first run left them, both.
  expect(env.usage.clock.now().getTime()).toBeGreaterThanOrEqual(movedTo.getTime());
  const simulatorNow = await simulatorAdmin<{ now: string }>(env.simulator.url, 'GET', '/_admin/clock');
  expect(new Date(simulatorNow.now).getTime()).toBeGreaterThanOrEqual(movedTo.getTime());
  const { customers } = await simulatorAdmin<{ customers: { licenseArn: string; state: string }[] }>(env.simulator.url, 'GET', '/_admin/customers');
  expect(customers.map((c) => [c.licenseArn, c.state])).toEqual([[buyer.licenseArn, 'subscribed']]);

  // Usage stamped with the real time counts in the hour open by the kept clock, and is billed.
  const event = { licenseArn: buyer.licenseArn, dimension: 'requests', quantity: 17, timestamp: new Date().toISOString() };
  await env.usage.sqs.send(new SendMessageCommand({ QueueUrl: env.usage.usageQueueUrl, MessageBody: JSON.stringify(event) }));
  expect(await env.usage.drainUsageQueue()).toBe(1);
  const report = await runMeteringAsOf(new Date(movedTo.getTime() + 75 * MINUTE));
  const { records } = await simulatorAdmin<{ records: { licenseArn: string; quantity: number }[] }>(env.simulator.url, 'GET', '/_admin/metering-records');
  expect({ deadLettered: report.deadLettered, billed: records.filter((r) => r.licenseArn === buyer.licenseArn && r.quantity > 0).map((r) => r.quantity) }).toEqual({
    deadLettered: 0,
    billed: [17],
  });
}, 180_000);
