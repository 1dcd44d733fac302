import { benchSimulator } from './simulator.bench';

/** `npm run bench`: every benchmark in turn; each prints its figures. Figures, not pass/fail. */
async function main(): Promise<void> {
  console.log(`node ${process.version}, ${new Date().toISOString()}`);
  await benchSimulator();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
