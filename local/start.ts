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
    meteringIntervalSeconds: Number(process.env.METERING_INTERVAL_SECONDS ?? 10),
    finalUsageDelaySeconds: Number(process.env.FINAL_USAGE_DELAY_SECONDS ?? 300),
    lifecycleLog: { info: (message, attributes) => console.log(`[lifecycle] ${message} ${JSON.stringify(attributes)}`) },
    usageLog: {
      info: (message, attributes) => console.log(`[usage] ${message} ${JSON.stringify(attributes)}`),
      warn: (message, attributes) => console.warn(`[usage] ${message} ${JSON.stringify(attributes)}`),
      error: (message, attributes) => console.error(`[usage] ${message} ${JSON.stringify(attributes)}`),
    },
  });

  console.log(`Registration URL: ${env.registrationUrl}`);
  console.log(`Marketplace simulator: ${env.simulator.url}/`);
  console.log(`DynamoDB Local: ${env.dynamoDb.endpoint} (table ${env.registration.tableName})`);
  console.log(`Local SQS endpoint: ${env.sqs.endpoint}`);
  console.log(`Usage queue URL: ${env.usage.usageQueueUrl}`);
  console.log(`Usage dead-letter queue URL: ${env.usage.usageDeadLetterQueueUrl}`);
  console.log(`Metering dead-letter queue URL: ${env.usage.meteringDeadLetterQueueUrl}`);
  console.log(`Run metering now: POST ${env.api.url}/_local/metering/run (body {"now": ISO} to run as if at that time)`);
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
