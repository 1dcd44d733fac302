import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { CustomerSubscriptions } from '../adapters/customer-directory';
import { DeadLetterQueue } from '../adapters/dead-letter-queue';
import { meteringEngineClient, sdkMeteringApi } from '../adapters/metering-api';
import { DynamoDbMeteringLedger } from '../adapters/metering-ledger';
import { ZeroUsageFiller } from '../adapters/zero-usage';
import { parseProductList } from '../core/product-config';
import { MeteringReport } from '../core/metering/metering-run';
import { METERING_SERVICE_NAME } from '../core/metering/run-metrics';
import { failIfStopped, meteringDeadLetters, meterNow, recordRunMetrics } from './metering-job';
import { requiredEnv } from '../handler-environment';

/** The scheduled metering Lambda (one run at a time: reserved concurrency 1). */

/** Time kept back from the Lambda timeout to store the last outcomes. */
const SAFETY_MARGIN_MS = 30_000;

const logger = new Logger({ serviceName: METERING_SERVICE_NAME });
// Each run's counts, for the alarms on runs that succeed without billing (published by logMetrics).
const metrics = new Metrics({ namespace: requiredEnv('METRICS_NAMESPACE'), serviceName: METERING_SERVICE_NAME });
const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } });
const ledger = new DynamoDbMeteringLedger(documents, requiredEnv('METERING_TABLE'), requiredEnv('USAGE_JOURNAL_TABLE'));
const ports = {
  ledger,
  // Zero-quantity records for idle subscribed customers, unless turned off.
  zeroUsage:
    process.env.ZERO_USAGE_RECORDS === 'false'
      ? undefined
      : new ZeroUsageFiller(documents, requiredEnv('CUSTOMERS_TABLE'), ledger, parseProductList(process.env.PRODUCTS)),
  deadLetters: meteringDeadLetters(new DeadLetterQueue(new SQSClient({}), requiredEnv('METERING_DEAD_LETTER_QUEUE_URL'))),
  subscriptions: new CustomerSubscriptions(documents, requiredEnv('CUSTOMERS_TABLE')),
  api: sdkMeteringApi(meteringEngineClient({ endpoint: process.env.MARKETPLACE_ENDPOINT || undefined })),
  clock: { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) },
};
const gracePeriodSeconds = Number(process.env.GRACE_PERIOD_SECONDS || 600);

async function metering(_event: unknown, context: Context): Promise<MeteringReport> {
  const now = new Date();
  const deadline = new Date(now.getTime() + context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS);
  const report = await meterNow(ports, logger, { now, deadline, settings: { gracePeriodSeconds } });
  recordRunMetrics(metrics, report);
  return failIfStopped(report);
}

export const handler = middy(metering).use(injectLambdaContext(logger)).use(logMetrics(metrics));
