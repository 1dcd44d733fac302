import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startMarketplaceSimulator } from './index';

/** `npm run simulator [-- --seed FILE] [--state FILE] [--port N]`: the AWS Marketplace simulator on its own. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seed: { type: 'string' }, state: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' } },
  });
  const port = Number(values.port ?? process.env.SIMULATOR_PORT ?? 3001);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`Invalid port ${values.port ?? process.env.SIMULATOR_PORT}`);
  const seed = values.seed ? JSON.parse(readFileSync(values.seed, 'utf8')) : undefined;

  const simulator = await startMarketplaceSimulator({ port, host: values.host, seed, stateFile: values.state });
  console.log(`AWS Marketplace simulator listening on ${simulator.url}`);
  for (const c of simulator.seededCustomers) {
    // A simulator token is test data, not a buyer's secret: printing it is what makes it usable.
    console.log(`Seeded customer ${c.licenseArn} (${c.productCode}): registration token ${c.registrationToken}`);
  }
  const stop = () => simulator.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error) => {
  console.error(`Simulator failed to start: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
});
