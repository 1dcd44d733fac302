#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { SQSClient } from '@aws-sdk/client-sqs';
import { UsageDeadLetterRedrive, UsageDeadLetterRedriveOptions } from '../lambda/adapters/usage-dead-letter-redrive';
import { REDRIVE_REASONS_BY_DEFAULT } from '../lambda/core/usage/dead-letter-redrive';
import { localClientConfig } from '../local/services/aws-local';

/**
 * `npm run redrive-usage -- --dead-letter-queue-url URL --usage-queue-url URL [--reasons a,b]
 * [--skip-originals] [--dry-run] [--max-messages N] [--endpoint URL]`: sends the usage dead-letter
 * queue's messages back to the usage queue once their cause is mended (see the README, "Sending
 * dead letters again"). Credentials and region come from the environment, as for the AWS CLI;
 * `--endpoint` is for the local queue `npm start` prints. Prints the report as JSON; exits 1 when
 * something could not be sent or deleted.
 */

const USAGE = `Usage: npm run redrive-usage -- --dead-letter-queue-url URL --usage-queue-url URL [options]
  --reasons a,b        letters with these reasons are sent again (default: ${REDRIVE_REASONS_BY_DEFAULT.join(',')})
  --skip-originals     leave original usage messages (those without a reason) in the queue
  --dry-run            count what would be sent; send and delete nothing
  --max-messages N     take at most N messages from the dead-letter queue (default 100000)
  --endpoint URL       a local SQS endpoint (npm start prints it)`;

export function redriveOptionsOf(argv: readonly string[]): Omit<UsageDeadLetterRedriveOptions, 'client'> & { readonly endpoint?: string } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'dead-letter-queue-url': { type: 'string' },
      'usage-queue-url': { type: 'string' },
      reasons: { type: 'string' },
      'skip-originals': { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      'max-messages': { type: 'string' },
      endpoint: { type: 'string' },
    },
  });
  const deadLetterQueueUrl = values['dead-letter-queue-url'];
  const usageQueueUrl = values['usage-queue-url'];
  if (!deadLetterQueueUrl || !usageQueueUrl) throw new Error(`--dead-letter-queue-url and --usage-queue-url are required (the stack's UsageDeadLetterQueueUrl and UsageQueueUrl outputs)\n${USAGE}`);
  const maxMessages = values['max-messages'] === undefined ? undefined : Number(values['max-messages']);
  if (maxMessages !== undefined && (!Number.isInteger(maxMessages) || maxMessages < 1)) throw new Error(`--max-messages is a positive integer, not ${values['max-messages']}`);
  const reasons = values.reasons?.split(',').map((r) => r.trim()).filter((r) => r.length > 0);
  if (reasons !== undefined && reasons.length === 0) throw new Error('--reasons names at least one reason');
  return {
    deadLetterQueueUrl,
    usageQueueUrl,
    ...(reasons ? { reasons } : {}),
    originals: !values['skip-originals'],
    dryRun: values['dry-run'],
    ...(maxMessages === undefined ? {} : { maxMessages }),
    ...(values.endpoint ? { endpoint: values.endpoint } : {}),
  };
}

async function main(): Promise<void> {
  const { endpoint, ...options } = redriveOptionsOf(process.argv.slice(2));
  const client = new SQSClient(endpoint ? localClientConfig(endpoint) : {});
  const report = await new UsageDeadLetterRedrive({ ...options, client }).run();
  console.log(JSON.stringify(report, null, 2));
  if (report.failed.length > 0) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  });
}
