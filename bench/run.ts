import { benchAggregationAsDeployed, benchEndToEnd } from './metering.bench';
import { benchRegistration } from './registration.bench';
import { benchSimulator } from './simulator.bench';

/** `npm run bench`: every benchmark in turn; each prints its figures. Figures, not pass/fail. */
async function main(): Promise<void> {
  // As in jest.config.js: the SDK's notice that 2027 releases need Node 22 is noise in the figures.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  console.log(`node ${process.version}, ${new Date().toISOString()}`);
  // First, while nothing else runs: no JVM or simulator of another bench is still winding down on
  // the second of 2 cores (one run after the others measured 477,000 events/s, three alone
  // 550,000-594,000; the machine's own swings are as large, so this only removes one cause).
  await benchAggregationAsDeployed();
  await benchSimulator();
  await benchRegistration();
  await benchEndToEnd();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
