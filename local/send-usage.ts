import { parseArgs } from 'node:util';
import { SQSClient } from '@aws-sdk/client-sqs';
import { UsageProducer } from '../lambda/adapters/usage-producer';
import { localClientConfig } from './services';

/**
 * `npm run send-usage -- --endpoint URL --queue-url URL --license-arn ARN [--dimension requests]
 * [--quantity 1] [--timestamp ISO]`: reports usage to the local usage queue the way a seller's service
 * does, with the producer client. The endpoint and queue URL are the ones `npm start` prints.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      endpoint: { type: 'string' },
      'queue-url': { type: 'string' },
      'license-arn': { type: 'string' },
      dimension: { type: 'string', default: 'requests' },
      quantity: { type: 'string', default: '1' },
      timestamp: { type: 'string' },
    },
  });
  const missing = ['endpoint', 'queue-url', 'license-arn'].filter((name) => !values[name as keyof typeof values]);
  if (missing.length > 0) throw new Error(`Missing --${missing.join(', --')} (npm start prints the SQS endpoint, the usage queue URL and, on registration, the licence ARN)`);
  const usage = new UsageProducer({ queueUrl: values['queue-url']!, client: new SQSClient(localClientConfig(values.endpoint!)) });
  const result = await usage.send([
    {
      licenseArn: values['license-arn'],
      dimension: values.dimension,
      quantity: Number(values.quantity),
      timestamp: values.timestamp ?? new Date().toISOString(),
    },
  ]);
  console.log(JSON.stringify(result, null, 2));
  if (result.failed.length > 0) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
