import { CfnOutput, Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { checkedProducts, ProductConfig } from './config';
import { CustomersTable } from './customers-table';
import { handlerFunction } from './handler-function';
import { MeteringLedgerTable } from './metering-ledger-table';
import { deadLetterQueue, retainedQueue } from './queues';

export interface UsagePipelineProps {
  readonly products: readonly ProductConfig[];
  readonly customers: CustomersTable;
  readonly ledger: MeteringLedgerTable;
  /** Receives of a message before SQS moves it to the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
  /** Messages per ingest invocation. @default 100 */
  readonly batchSize?: number;
  /** How long the event source gathers messages before invoking. @default Duration.seconds(5) */
  readonly maxBatchingWindow?: Duration;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The usage queue the seller's services send usage events to, its dead-letter queue (which also
 * receives invalid events, each with a `reason` attribute), and the ingest function that appends
 * usage to the Usage journal (metering folds it into hour buckets in the Metering ledger).
 */
export class UsagePipeline extends Construct {
  public readonly queue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly ingestFunction: NodejsFunction;

  constructor(scope: Construct, id: string, props: UsagePipelineProps) {
    super(scope, id);
    const ingestTimeout = Duration.seconds(60);
    this.deadLetterQueue = deadLetterQueue(this, 'DeadLetterQueue', 'usage that could not be counted');
    this.queue = retainedQueue(this, 'Queue', {
      // AWS's advice: six times the function timeout, so a throttled batch is not redriven early.
      visibilityTimeout: Duration.seconds(ingestTimeout.toSeconds() * 6),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount ?? 5 },
    });

    this.ingestFunction = handlerFunction(this, 'Ingest', {
      handlerFolder: 'ingest',
      description: 'Appends usage events from the usage queue to the Usage journal',
      timeout: ingestTimeout,
      logRetention: props.logRetention,
      environment: {
        PRODUCTS: JSON.stringify(checkedProducts(props.products)),
        CUSTOMERS_TABLE: props.customers.table.tableName,
        METERING_TABLE: props.ledger.table.tableName,
        USAGE_JOURNAL_TABLE: props.ledger.journalTable.tableName,
        USAGE_DEAD_LETTER_QUEUE_URL: this.deadLetterQueue.queueUrl,
        POWERTOOLS_SERVICE_NAME: 'marketplace-usage-ingest',
      },
    });
    this.ingestFunction.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: props.batchSize ?? 100,
        maxBatchingWindow: props.maxBatchingWindow ?? Duration.seconds(5),
        reportBatchItemFailures: true,
      }),
    );
    props.customers.grantLookup(this.ingestFunction);
    props.ledger.grantAppendUsage(this.ingestFunction);
    this.deadLetterQueue.grantSendMessages(this.ingestFunction);

    new CfnOutput(this, 'UsageQueueUrl', { value: this.queue.queueUrl, description: 'Send usage events here' });
    new CfnOutput(this, 'UsageDeadLetterQueueUrl', {
      value: this.deadLetterQueue.queueUrl,
      description: 'Usage that could not be counted, each message with a reason attribute',
    });
  }

  /** Lets the seller's services (their roles) send usage events. */
  public grantSendUsage(grantee: iam.IGrantable): iam.Grant {
    return this.queue.grantSendMessages(grantee);
  }

  /**
   * Lets an operator (a role, or a function) send the dead-letter queue's messages back to the usage
   * queue with UsageDeadLetterRedrive (`npm run redrive-usage`): receive, delete and release messages
   * of the dead-letter queue, send to the usage queue.
   */
  public grantRedriveDeadLetters(grantee: iam.IGrantable): iam.Grant {
    this.queue.grantSendMessages(grantee);
    return this.deadLetterQueue.grant(grantee, 'sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl');
  }

  /** Messages waiting in the usage dead-letter queue: anything above 0 needs a look. */
  public metricDeadLetters(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.deadLetterQueue.metricApproximateNumberOfMessagesVisible(props);
  }

  /** Age of the oldest usage message: growing means ingestion is stuck. */
  public metricOldestMessageAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.queue.metricApproximateAgeOfOldestMessage(props);
  }
}
