import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { entitlementClient } from '../lambda/adapters/entitlements';
import { DynamoDbMeteringLedger } from '../lambda/adapters/metering-ledger';
import { LifecycleService } from '../lambda/core/lifecycle/lifecycle-service';
import { ProductConfig } from '../lambda/core/product-config';
import { ProvisioningEvent } from '../lambda/core/registration/registration-service';
import { createLifecycleHandler, LifecycleLog } from '../lambda/lifecycle/lifecycle-dispatch';
import { lifecyclePorts } from '../lambda/lifecycle/lifecycle-ports';
import { LocalRoute } from './api-gateway-server';
import { LOCAL_CREDENTIALS } from './services';

/**
 * The lifecycle handler on local services. The simulator POSTs its notifications to
 * `POST /_local/lifecycle` (`{channel: "eventbridge", event}` or `{channel: "sns", envelope}`), which
 * hands them over as EventBridge or as the SQS queue subscribed to the SNS topics would.
 */

export interface LocalLifecycleOptions {
  readonly documents: DynamoDBDocumentClient;
  readonly customersTableName: string;
  readonly ledger: DynamoDbMeteringLedger;
  readonly simulatorUrl: string;
  readonly products: readonly ProductConfig[];
  /** Meters at once (the stack invokes the metering function). */
  readonly meterNow: () => Promise<unknown>;
  /** The local clock (the simulator's time, which the demo can move). */
  readonly now: () => Date;
  /** See LifecycleSettings. @default 300 */
  readonly finalUsageDelaySeconds?: number;
  readonly publish: (event: ProvisioningEvent) => Promise<void>;
  readonly log?: LifecycleLog;
}

export function createLocalLifecycle(options: LocalLifecycleOptions): { routes: LocalRoute[]; handle: (notification: unknown) => Promise<unknown> } {
  const service = new LifecycleService(
    lifecyclePorts({
      documents: options.documents,
      customersTable: options.customersTableName,
      entitlements: entitlementClient({ endpoint: options.simulatorUrl, credentials: { ...LOCAL_CREDENTIALS } }),
      publish: (detailType, detail) => options.publish({ detailType, detail }),
      flushUsage: async (flush) => {
        await options.ledger.journal.scheduleFinalUsage(flush, options.now());
        // The local schedule's runs seal it once due; already due: now, as the stack invokes metering.
        if (Date.parse(flush.dueAt) <= options.now().getTime()) await options.meterNow();
      },
    }),
    options.products,
    { finalUsageDelaySeconds: options.finalUsageDelaySeconds },
  );
  const lifecycle = createLifecycleHandler(service, options.log ?? { info: () => undefined });
  const handle = async (notification: unknown): Promise<unknown> => {
    const n = notification as { channel?: string; event?: unknown; envelope?: unknown };
    if (n.channel === 'eventbridge') return lifecycle(n.event);
    if (n.channel === 'sns') {
      const event: SQSEvent = {
        Records: [
          {
            messageId: crypto.randomUUID(),
            receiptHandle: 'local',
            body: JSON.stringify(n.envelope),
            attributes: {} as SQSEvent['Records'][number]['attributes'],
            messageAttributes: {},
            md5OfBody: '',
            eventSource: 'aws:sqs',
            eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:legacy-notifications',
            awsRegion: 'us-east-1',
          },
        ],
      };
      const response = (await lifecycle(event)) as { batchItemFailures: unknown[] };
      if (response.batchItemFailures.length > 0) throw new Error('the SNS notification could not be handled');
      return response;
    }
    throw new Error('unknown channel: expected eventbridge or sns');
  };
  return {
    handle,
    routes: [
      {
        method: 'POST',
        resource: '/_local/lifecycle',
        handler: async (event) => {
          const text = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : (event.body ?? '');
          try {
            const result = await handle(JSON.parse(text));
            return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(result ?? {}) };
          } catch (error) {
            return { statusCode: 500, body: JSON.stringify({ error: error instanceof Error ? error.message : String(error) }) };
          }
        },
      },
    ],
  };
}
