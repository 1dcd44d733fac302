import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { entitlementClient } from '../adapters/entitlements';
import { eventBridgePublisher } from '../adapters/event-publisher';
import { DynamoDbUsageJournal } from '../adapters/usage-journal';
import { DEFAULT_FINAL_USAGE_DELAY_SECONDS, LifecycleService } from '../core/lifecycle/lifecycle-service';
import { parseProductList } from '../core/product-config';
import { createLifecycleHandler } from './lifecycle-dispatch';
import { lifecyclePorts } from './lifecycle-ports';
import { requiredEnv } from '../handler-environment';

/**
 * The lifecycle Lambda: EventBridge events from `aws.agreement-marketplace`, and SQS batches from the
 * queue subscribed to the legacy SNS topics. When a customer's access ends, its final usage is
 * scheduled: the metering runs seal and send it from FINAL_USAGE_DELAY_SECONDS after the end (usage
 * sent just before the end may still be on its way), within the final hour.
 */

const logger = new Logger({ serviceName: 'marketplace-lifecycle' });
const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });
const journal = new DynamoDbUsageJournal(documents, requiredEnv('USAGE_JOURNAL_TABLE'));
const lambda = new LambdaClient({});
const publishEvent = eventBridgePublisher(new EventBridgeClient({}), process.env.EVENT_BUS_NAME || 'default');

const service = new LifecycleService(
  lifecyclePorts({
    documents,
    customersTable: requiredEnv('CUSTOMERS_TABLE'),
    entitlements: entitlementClient({ endpoint: process.env.MARKETPLACE_ENTITLEMENT_ENDPOINT || undefined }),
    publish: (detailType, detail) => publishEvent({ detailType, detail }),
    flushUsage: async (flush) => {
      const { customerKey, dueAt } = flush;
      await journal.scheduleFinalUsage(flush, new Date());
      logger.info('final usage scheduled for metering', { customerKey, dueAt });
      // The scheduled runs seal it from dueAt on. Already due (the notification came late, or no delay
      // is configured): run now, asynchronously; the metering function runs one at a time, and Lambda
      // queues this run if one is going.
      if (Date.parse(dueAt) <= Date.now()) {
        await lambda.send(
          new InvokeCommand({
            FunctionName: requiredEnv('METERING_FUNCTION_NAME'),
            InvocationType: 'Event',
            Payload: JSON.stringify({ reason: 'final-usage', customerKey }),
          }),
        );
      }
    },
  }),
  parseProductList(process.env.PRODUCTS),
  { finalUsageDelaySeconds: Number(process.env.FINAL_USAGE_DELAY_SECONDS || DEFAULT_FINAL_USAGE_DELAY_SECONDS) },
);

export const handler = middy(createLifecycleHandler(service, logger)).use(injectLambdaContext(logger));
