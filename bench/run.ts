import { benchMetering } from './metering.bench';
import { benchRegistration } from './registration.bench';
import { benchSimulator } from './simulator.bench';

/** `npm run bench`: every benchmark in turn; each prints its figures. Figures, not pass/fail. */
async function main(): Promise<void> {
  // As in jest.config.js: the SDK's notice that 2027 releases need Node 22 is noise in the figures.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  console.log(`node ${process.version}, ${new Date().toISOString()}`);
  await benchSimulator();
  await benchRegistration();
  await benchMetering();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
