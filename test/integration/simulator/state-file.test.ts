/**
 * The simulator's state file (`stateFile`, used by `PERSIST_DATA=true npm start`): what one run
 * knew (products, customers and their subscription states, billed records) the next run knows, so
 * a kept customer is billed and a record billed before a restart is still a duplicate after it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BatchMeterUsageCommand } from '@aws-sdk/client-marketplace-metering';
import { SimulatorClock, startMarketplaceSimulator } from '../../../local/simulator';
import { AdminClient, licenseRecord, meteringClient, resultFor, seedWorld, T0, TEST_CONFIG } from './helpers';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'simulator-state-'));
});
afterAll(() => rm(directory, { recursive: true, force: true }));

const startWith = (stateFile: string) =>
  startMarketplaceSimulator({ port: 0, clock: new SimulatorClock({ start: T0, frozen: true }), config: TEST_CONFIG, stateFile });

test('a restarted simulator knows the customers, their states and what it billed', async () => {
  const stateFile = path.join(directory, 'state.json');
  const first = await startWith(stateFile);
  const admin = new AdminClient(first.url);
  const world = await seedWorld(admin);
  await admin.setSubscription({ customerIdentifier: world.carol.customerIdentifier! }, 'unsubscribe-pending');
  const record = licenseRecord(world.alice, { Quantity: 12 });
  const metering = meteringClient(first.url, 'none');
  const billed = await metering.send(new BatchMeterUsageCommand({ UsageRecords: [record] }));
  expect(resultFor(billed.Results, record).Status).toBe('Success');
  metering.destroy();
  const before = { customers: await admin.customers(), records: await admin.meteringRecords(), products: await admin.products() };
  await first.stop();

  const second = await startWith(stateFile);
  try {
    const again = new AdminClient(second.url);
    expect({ customers: await again.customers(), records: await again.meteringRecords(), products: await again.products() }).toEqual(before);
    const client = meteringClient(second.url, 'none');
    const otherQuantity = licenseRecord(world.alice, { Quantity: 13 });
    const [resent, changed] = [
      await client.send(new BatchMeterUsageCommand({ UsageRecords: [record] })),
      await client.send(new BatchMeterUsageCommand({ UsageRecords: [otherQuantity] })),
    ];
    client.destroy();
    // AWS de-duplicates on customer x dimension x hour, and the restart did not forget the first
    // record: sent again it is the same billing (same MeteringRecordId), another quantity a duplicate.
    expect(resultFor(resent.Results, record)).toMatchObject({ Status: 'Success', MeteringRecordId: resultFor(billed.Results, record).MeteringRecordId });
    expect(resultFor(changed.Results, otherQuantity).Status).toBe('DuplicateRecord');
    expect(await again.meteringRecords()).toEqual(before.records);
  } finally {
    await second.stop();
  }
});

test('a state file that is not the simulator\'s is refused with what to do, not half loaded', async () => {
  const stateFile = path.join(directory, 'broken.json');
  await writeFile(stateFile, JSON.stringify({ version: 1, products: 'nope' }));
  await expect(startWith(stateFile)).rejects.toThrow(/broken\.json: not a simulator state file .*delete it to start the simulator empty/s);
  await writeFile(stateFile, '{"version": 1,');
  await expect(startWith(stateFile)).rejects.toThrow(/broken\.json is not JSON/);
});
