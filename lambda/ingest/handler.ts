import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { CachedCustomerDirectory } from '../adapters/customer-directory';
import { DeadLetterQueue } from '../adapters/dead-letter-queue';
import { DynamoDbUsageJournal } from '../adapters/usage-journal';
import { parseProductList } from '../core/product-config';
import { createIngestHandler } from './ingest-batch';
import { requiredEnv } from '../handler-environment';

/** The ingest Lambda on the usage queue (SQS event source with ReportBatchItemFailures). */

const logger = new Logger({ serviceName: 'marketplace-usage-ingest' });
const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });

const ingest = createIngestHandler({
  ports: {
    journal: new DynamoDbUsageJournal(documents, requiredEnv('USAGE_JOURNAL_TABLE')),
    customers: new CachedCustomerDirectory(documents, requiredEnv('CUSTOMERS_TABLE')),
    products: parseProductList(process.env.PRODUCTS),
    now: () => new Date(),
  },
  deadLetters: new DeadLetterQueue(new SQSClient({}), requiredEnv('USAGE_DEAD_LETTER_QUEUE_URL')),
  log: logger,
});

export const handler = middy(ingest).use(injectLambdaContext(logger));
