import { BatchMeterUsageCommand, MarketplaceMeteringClient, ResolveCustomerCommand } from '@aws-sdk/client-marketplace-metering';
import { SimulatorClock, startMarketplaceSimulator } from '../local/simulator';
import { percentile, printFigures } from './figures';

/**
 * The simulator under the real SDK client: how fast ResolveCustomer answers, and how many
 * BatchMeterUsage records per second it takes, so later benchmarks know it is not their bottleneck.
 */
const CUSTOMERS = 500;

export async function benchSimulator(): Promise<void> {
  // Customers subscribe a day ago, so the last 20 hours can all be billed.
  // The simulator's time is set mid-month: the records reach back 20 hours, which on the first
  // day of a month would cross into a billing month AWS has closed.
  const real = new Date();
  const now = new Date(Date.UTC(real.getUTCFullYear(), real.getUTCMonth(), 15, 12));
  const clock = new SimulatorClock({ start: new Date(now.getTime() - 26 * 3_600_000) });
  const simulator = await startMarketplaceSimulator({
    clock,
    config: { rateLimitPerSecond: 0, resultOrder: 'request' },
    seed: { products: [{ productCode: 'bench', dimensions: ['requests'], identityMode: 'license' }] },
  });
  try {
    const client = new MarketplaceMeteringClient({
      endpoint: simulator.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const customers: { licenseArn: string; customerAWSAccountId: string }[] = [];
    for (let i = 0; i < CUSTOMERS; i++) {
      const res = await fetch(`${simulator.url}/_admin/customers`, {
        method: 'POST',
        body: JSON.stringify({ productCode: 'bench' }),
      });
      customers.push((await res.json()) as { licenseArn: string; customerAWSAccountId: string });
    }

    clock.set(now);
    const tokens: string[] = [];
    for (const customer of customers.slice(0, 100)) {
      const res = await fetch(`${simulator.url}/_admin/tokens`, {
        method: 'POST',
        body: JSON.stringify({ licenseArn: customer.licenseArn }),
      });
      tokens.push(((await res.json()) as { registrationToken: string }).registrationToken);
    }
    const resolveMs: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const started = performance.now();
      await client.send(new ResolveCustomerCommand({ RegistrationToken: tokens[i % tokens.length] }));
      resolveMs.push(performance.now() - started);
    }

    const lastHour = Math.floor(now.getTime() / 3_600_000) * 3600 - 3600;
    const calls = 400;
    const started = performance.now();
    for (let call = 0; call < calls; call++) {
      const records = Array.from({ length: 25 }, (_, i) => {
        const customer = customers[(call * 25 + i) % customers.length];
        return {
          Timestamp: new Date((lastHour - 3600 * Math.floor((call * 25 + i) / CUSTOMERS)) * 1000),
          Dimension: 'requests',
          Quantity: 1 + i,
          LicenseArn: customer.licenseArn,
          CustomerAWSAccountId: customer.customerAWSAccountId,
        };
      });
      await client.send(new BatchMeterUsageCommand({ UsageRecords: records }));
    }
    const seconds = (performance.now() - started) / 1000;
    printFigures('Marketplace simulator (real SDK client, one connection at a time)', {
      'ResolveCustomer p50 (ms)': percentile(resolveMs, 50),
      'ResolveCustomer p99 (ms)': percentile(resolveMs, 99),
      'BatchMeterUsage calls/s (25 records each)': calls / seconds,
      'BatchMeterUsage records/s': (calls * 25) / seconds,
    });
  } finally {
    await simulator.stop();
  }
}
