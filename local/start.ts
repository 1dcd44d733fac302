import { startLocalEnvironment } from './local-environment';

/**
 * `npm start`: the whole flow on this machine, no AWS account. Prints one line per endpoint and
 * stops every child process on Ctrl-C.
 */
async function main(): Promise<void> {
  console.log('Starting the local AWS Marketplace SaaS integration…');
  const env = await startLocalEnvironment({
    apiPort: Number(process.env.PORT ?? 3000),
    simulatorPort: Number(process.env.SIMULATOR_PORT ?? 3001),
    persistData: process.env.PERSIST_DATA === 'true',
    log: {
      info: (message, attributes) => console.log(`[registration] ${message} ${JSON.stringify(attributes)}`),
      error: (message, attributes) => console.error(`[registration] ${message} ${JSON.stringify(attributes)}`),
    },
    onEvent: (event) => console.log(`[eventbridge] ${event.detailType} ${JSON.stringify(event.detail)}`),
  });

  console.log(`Registration URL: ${env.registrationUrl}`);
  console.log(`Marketplace simulator: ${env.simulator.url}/`);
  console.log(`DynamoDB Local: ${env.dynamoDb.endpoint} (table ${env.registration.tableName})`);
  console.log(`Local SQS endpoint: ${env.sqs.endpoint}`);
  console.log(`Open ${env.simulator.url}/ and choose Subscribe to register as a buyer. Ctrl-C stops everything.`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping…`);
    await env.stop().catch((error) => console.error('Some local services did not stop cleanly:', error));
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error) => {
  console.error(`npm start failed: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
});
