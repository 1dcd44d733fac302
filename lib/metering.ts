import { CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { handlerFunction } from './handler-function';
import { MeteringLedgerTable } from './metering-ledger-table';
import { deadLetterQueue } from './queues';
import { CustomersTable } from './customers-table';
import { checkedProducts, ProductConfig } from './config';
import { METERING_RUN_METRICS, METERING_SERVICE_NAME } from '../lambda/core/metering/run-metrics';

export interface MeteringEngineProps {
  readonly ledger: MeteringLedgerTable;
  /** Read for each customer's subscription state. */
  readonly customers: CustomersTable;
  /** How often metering runs. @default Duration.minutes(5) */
  readonly schedule?: Duration;
  /** Hour buckets are sealed this long after their hour ends. @default Duration.minutes(10) */
  readonly gracePeriod?: Duration;
  /** @default Duration.minutes(5) */
  readonly timeout?: Duration;
  /**
   * The metering function's memory: folding an hour reads its usage journal a page at a time and
   * holds the buckets and the eventIds (about 70 bytes per event with a 36-character eventId), so
   * 1,024 MB folds several million events an hour.
   * @default 1024
   */
  readonly memorySize?: number;
  /** The products (their dimensions get zero-quantity records). */
  readonly products: readonly ProductConfig[];
  /**
   * Each hour, a quantity-0 record for every subscribed customer and dimension without usage (the
   * Seller Guide's practice; it shows buyers the product is metered).
   * @default true
   */
  readonly sendZeroUsageRecords?: boolean;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The scheduled metering function (one run at a time) that seals hour buckets and bills them through
 * BatchMeterUsage, and the dead-letter queue for records AWS will not bill, each with its reason.
 */
export class MeteringEngine extends Construct {
  public readonly meteringFunction: NodejsFunction;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly schedule: events.Rule;
  /** Time between two scheduled runs. */
  public readonly interval: Duration;
  /** The CloudWatch namespace of each run's counts (metricDeferredBuckets): one per stack. */
  public readonly metricsNamespace: string;

  constructor(scope: Construct, id: string, props: MeteringEngineProps) {
    super(scope, id);
    this.deadLetterQueue = deadLetterQueue(this, 'DeadLetterQueue', 'records AWS Marketplace will not bill');
    this.metricsNamespace = `MarketplaceSaas/${Stack.of(this).stackName}`;

    this.meteringFunction = handlerFunction(this, 'Metering', {
      handlerFolder: 'metering',
      description: 'Seals ended hours, folds their usage journal into hour buckets and bills them through BatchMeterUsage',
      timeout: props.timeout ?? Duration.minutes(5),
      memorySize: props.memorySize ?? 1024,
      logRetention: props.logRetention,
      // One run at a time: two runs would send the same sealed buckets concurrently.
      reservedConcurrentExecutions: 1,
      environment: {
        METERING_TABLE: props.ledger.table.tableName,
        USAGE_JOURNAL_TABLE: props.ledger.journalTable.tableName,
        CUSTOMERS_TABLE: props.customers.table.tableName,
        PRODUCTS: JSON.stringify(checkedProducts(props.products)),
        ZERO_USAGE_RECORDS: String(props.sendZeroUsageRecords ?? true),
        METERING_DEAD_LETTER_QUEUE_URL: this.deadLetterQueue.queueUrl,
        GRACE_PERIOD_SECONDS: String((props.gracePeriod ?? Duration.minutes(10)).toSeconds()),
        POWERTOOLS_SERVICE_NAME: METERING_SERVICE_NAME,
        METRICS_NAMESPACE: this.metricsNamespace,
      },
    });
    this.meteringFunction.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['aws-marketplace:BatchMeterUsage'], resources: ['*'] }),
    );
    props.ledger.grantMetering(this.meteringFunction);
    this.meteringFunction.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['dynamodb:BatchGetItem', 'dynamodb:Scan'], resources: [props.customers.table.tableArn] }),
    );
    this.deadLetterQueue.grantSendMessages(this.meteringFunction);

    // A failed run is not run again by Lambda either (its asynchronous retries): the next scheduled
    // run, minutes later, does the same work, and the failed-runs alarm counts each failure once.
    this.meteringFunction.configureAsyncInvoke({ retryAttempts: 0 });

    this.interval = props.schedule ?? Duration.minutes(5);
    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'Runs AWS Marketplace metering',
      schedule: events.Schedule.rate(this.interval),
      // A missed run is harmless (the next one catches up): do not pile retries onto the next run.
      targets: [new targets.LambdaFunction(this.meteringFunction, { retryAttempts: 0 })],
    });

    new CfnOutput(this, 'MeteringDeadLetterQueueUrl', {
      value: this.deadLetterQueue.queueUrl,
      description: 'Usage AWS Marketplace will not bill, each message with a reason attribute',
    });
  }

  /** Records waiting in the metering dead-letter queue: each one is revenue that was not billed. */
  public metricDeadLetters(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.deadLetterQueue.metricApproximateNumberOfMessagesVisible(props);
  }

  /** Failed metering runs (the function threw). */
  public metricFailedRuns(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.meteringFunction.metricErrors(props);
  }

  /** Metering runs started (the function's invocations): none for a while means nothing is billed. */
  public metricRuns(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.meteringFunction.metricInvocations(props);
  }

  /**
   * Sealed buckets a run left unbilled for the next one (AWS throttling or failing after the run's
   * retries, or more than a run could bill in its time), as each run reports it.
   */
  public metricDeferredBuckets(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.runMetric(METERING_RUN_METRICS.deferred, props);
  }

  /** Buckets a run billed (AWS answered Success), as each run reports it. */
  public metricMeteredBuckets(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.runMetric(METERING_RUN_METRICS.metered, props);
  }

  private runMetric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.metricsNamespace,
      metricName,
      dimensionsMap: { service: METERING_SERVICE_NAME },
      statistic: 'Sum',
      ...props,
    });
  }
}
