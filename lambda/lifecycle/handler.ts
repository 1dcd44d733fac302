import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { entitlementClient } from '../adapters/entitlements';
import { eventBridgePublisher } from '../adapters/event-publisher';
import { DynamoDbMeteringLedger } from '../adapters/metering-ledger';
import { LifecycleService } from '../core/lifecycle/lifecycle-service';
import { parseProductList } from '../core/product-config';
import { createLifecycleHandler } from './lifecycle-dispatch';
import { lifecyclePorts } from './lifecycle-ports';
import { requiredEnv } from '../handler-environment';

/**
 * The lifecycle Lambda: EventBridge events from `aws.agreement-marketplace`, and SQS batches from the
 * queue subscribed to the legacy SNS topics. When a customer's access ends, its open usage is sealed
 * here and the metering function is invoked at once to send it within the final hour.
 */

const logger = new Logger({ serviceName: 'marketplace-lifecycle' });
const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });
const ledger = new DynamoDbMeteringLedger(documents, requiredEnv('METERING_TABLE'), requiredEnv('USAGE_JOURNAL_TABLE'));
const lambda = new LambdaClient({});
const publishEvent = eventBridgePublisher(new EventBridgeClient({}), process.env.EVENT_BUS_NAME || 'default');

const service = new LifecycleService(
  lifecyclePorts({
    documents,
    customersTable: requiredEnv('CUSTOMERS_TABLE'),
    entitlements: entitlementClient({ endpoint: process.env.MARKETPLACE_ENTITLEMENT_ENDPOINT || undefined }),
    publish: (detailType, detail) => publishEvent({ detailType, detail }),
    flushUsage: async (customerKey) => {
      const sealed = await ledger.sealCustomerBuckets(customerKey, new Date());
      // Asynchronous: the metering function runs one at a time; Lambda queues this run if one is going.
      await lambda.send(
        new InvokeCommand({
          FunctionName: requiredEnv('METERING_FUNCTION_NAME'),
          InvocationType: 'Event',
          Payload: JSON.stringify({ reason: 'final-usage', customerKey }),
        }),
      );
      logger.info('final usage sealed for metering', { customerKey, buckets: sealed.buckets.length, duplicates: sealed.duplicates });
      // Dead-lettered with their reason when the hour is folded.
      if (sealed.rejected.length > 0) logger.warn('final usage events refused', { customerKey, reasons: sealed.rejected.map((r) => r.reason) });
    },
  }),
  parseProductList(process.env.PRODUCTS),
);

export const handler = middy(createLifecycleHandler(service, logger)).use(injectLambdaContext(logger));
