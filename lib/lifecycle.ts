import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CustomersTableSchema } from '../lambda/core/customers-table-schema';
import { DEFAULT_FINAL_USAGE_DELAY_SECONDS } from '../lambda/core/lifecycle/lifecycle-service';
import { checkedProducts, ProductConfig } from './config';
import { CustomersTable } from './customers-table';
import { handlerFunction } from './handler-function';
import { requireMarketplaceRegion } from './marketplace-region';
import { MeteringEngine } from './metering';
import { MeteringLedgerTable } from './metering-ledger-table';
import { deadLetterQueue, retainedQueue } from './queues';

export interface SubscriptionLifecycleProps {
  readonly products: readonly ProductConfig[];
  readonly customers: CustomersTable;
  readonly ledger: MeteringLedgerTable;
  /** Meters a customer's final usage after its access ended: its scheduled runs, or at once when due. */
  readonly metering: MeteringEngine;
  /**
   * How long after a customer's access ends its final usage is sealed and metered, by the first
   * metering run from then: usage sent just before the end may still be in the usage queue or an
   * ingestion batch (see the usage pipeline's `maxBatchingWindow`). AWS takes final usage for about
   * an hour after the end: the delay plus the metering schedule may be 30 minutes at most. Zero
   * seals at once and invokes the metering function.
   * @default Duration.minutes(5)
   */
  readonly finalUsageDelay?: Duration;
  /** Where provisioning events go. @default the account's default event bus */
  readonly eventBus?: events.IEventBus;
  /** @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Set when the stack is not in us-east-1 and you forward AWS Marketplace's events from
   * us-east-1's default event bus to this region's default bus yourself (a cross-region rule with
   * source `aws.agreement-marketplace`). Without it, a stack in another region is refused: the
   * events are published in us-east-1 only, and the lifecycle rule would never fire. Legacy SNS
   * topics need nothing: the queue is subscribed to them in us-east-1, across regions.
   * @default false
   */
  readonly marketplaceEventsForwarded?: boolean;
}

/** The latest a customer's final usage may be sealed after its access ended (delay plus schedule). */
const MAX_FINAL_USAGE_LATENESS_SECONDS = 30 * 60;

/** The notifications AWS Marketplace sends sellers of SaaS products on EventBridge. */
export const MARKETPLACE_DETAIL_TYPES = [
  'Purchase Agreement Created - Proposer',
  'Purchase Agreement Created - Manufacturer',
  'Purchase Agreement Amended - Proposer',
  'Purchase Agreement Amended - Manufacturer',
  'Purchase Agreement Ended - Proposer',
  'Purchase Agreement Ended - Manufacturer',
  'License Updated - Manufacturer',
  'License Deprovisioned - Manufacturer',
];

/**
 * The subscription lifecycle: an EventBridge rule on the default bus for `aws.agreement-marketplace`,
 * and for legacy products a queue subscribed to their SNS topics, both feeding the lifecycle function
 * that keeps each customer's status and entitlements and triggers the final metering.
 */
export class SubscriptionLifecycle extends Construct {
  public readonly lifecycleFunction: NodejsFunction;
  public readonly rule: events.Rule;
  /**
   * Marketplace events that could not be handled: those EventBridge could not deliver to the
   * function (after its retries), and those the function failed on (after Lambda's asynchronous
   * retries; each message is Lambda's invocation record: the event, and the error as the reason).
   */
  public readonly deadLetterQueue: sqs.Queue;
  /** Legacy SNS notifications, when a product names its topics. */
  public readonly legacyQueue?: sqs.Queue;
  /** Legacy notifications the function still failed on after 5 receives, when a product names its topics. */
  public readonly legacyDeadLetterQueue?: sqs.Queue;

  constructor(scope: Construct, id: string, props: SubscriptionLifecycleProps) {
    super(scope, id);
    requireMarketplaceRegion(this, props.marketplaceEventsForwarded ?? false);
    const products = checkedProducts(props.products);
    const eventBus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');
    const finalUsageDelay = props.finalUsageDelay ?? Duration.minutes(DEFAULT_FINAL_USAGE_DELAY_SECONDS / 60);
    const delaySeconds = finalUsageDelay.toSeconds();
    const latestSeconds = delaySeconds === 0 ? 0 : delaySeconds + props.metering.interval.toSeconds();
    if (latestSeconds > MAX_FINAL_USAGE_LATENESS_SECONDS) {
      throw new Error(
        `finalUsageDelay (${delaySeconds} s) plus the metering schedule (${props.metering.interval.toSeconds()} s) is ${latestSeconds} s: ` +
          `at most ${MAX_FINAL_USAGE_LATENESS_SECONDS} s, so a customer's final usage is sent well within the hour AWS allows after the end`,
      );
    }
    this.deadLetterQueue = deadLetterQueue(this, 'DeadLetterQueue', 'AWS Marketplace events that could not be handled');

    this.lifecycleFunction = handlerFunction(this, 'Lifecycle', {
      handlerFolder: 'lifecycle',
      description: 'Keeps customers\' subscription status and entitlements from AWS Marketplace notifications',
      timeout: Duration.seconds(60),
      logRetention: props.logRetention,
      environment: {
        PRODUCTS: JSON.stringify(products),
        CUSTOMERS_TABLE: props.customers.table.tableName,
        USAGE_JOURNAL_TABLE: props.ledger.journalTable.tableName,
        METERING_FUNCTION_NAME: props.metering.meteringFunction.functionName,
        FINAL_USAGE_DELAY_SECONDS: String(delaySeconds),
        EVENT_BUS_NAME: eventBus.eventBusName,
        POWERTOOLS_SERVICE_NAME: 'marketplace-lifecycle',
      },
    });
    const fn = this.lifecycleFunction;
    fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['aws-marketplace:GetEntitlements'], resources: ['*'] }));
    const table = props.customers.table;
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
        resources: [table.tableArn],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:Query'],
        resources: [`${table.tableArn}/index/${CustomersTableSchema.accountIndex.name}`],
      }),
    );
    props.ledger.grantScheduleFinalUsage(fn);
    fn.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [props.metering.meteringFunction.functionArn] }),
    );
    eventBus.grantPutEventsTo(fn);

    // EventBridge invokes the function asynchronously: its target's retries and dead-letter queue
    // cover only delivering the event to Lambda. An error the function throws (a malformed event, a
    // failing table) is retried by Lambda twice, then goes to the same queue with the error, where
    // the dead-letter alarm sees it; without this it would be dropped.
    fn.configureAsyncInvoke({
      onFailure: new destinations.SqsDestination(this.deadLetterQueue),
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
    });

    this.rule = new events.Rule(this, 'MarketplaceEvents', {
      description: 'AWS Marketplace agreement and licence events for this seller\'s SaaS products',
      eventPattern: { source: ['aws.agreement-marketplace'], detailType: MARKETPLACE_DETAIL_TYPES },
      targets: [
        new targets.LambdaFunction(fn, {
          deadLetterQueue: this.deadLetterQueue,
          retryAttempts: 8,
          maxEventAge: Duration.hours(24),
        }),
      ],
    });

    const topicArns = products.flatMap((p) => [p.subscriptionTopicArn, p.entitlementTopicArn]).filter((a): a is string => !!a);
    if (topicArns.length > 0) {
      this.legacyDeadLetterQueue = deadLetterQueue(this, 'LegacyDeadLetterQueue', 'legacy SNS notifications that could not be handled');
      this.legacyQueue = retainedQueue(this, 'LegacyNotifications', {
        visibilityTimeout: Duration.minutes(6),
        deadLetterQueue: { queue: this.legacyDeadLetterQueue, maxReceiveCount: 5 },
      });
      topicArns.forEach((arn, i) => {
        sns.Topic.fromTopicArn(this, `LegacyTopic${i}`, arn).addSubscription(new subscriptions.SqsSubscription(this.legacyQueue!));
      });
      fn.addEventSource(new SqsEventSource(this.legacyQueue, { batchSize: 10, reportBatchItemFailures: true }));
    }
  }

  /** Marketplace events that could not be handled: each one is a customer whose state may be wrong. */
  public metricDeadLetters(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.deadLetterQueue.metricApproximateNumberOfMessagesVisible(props);
  }

  /** Legacy SNS notifications that could not be handled (undefined when no product names its topics). */
  public metricLegacyDeadLetters(props?: cloudwatch.MetricOptions): cloudwatch.Metric | undefined {
    return this.legacyDeadLetterQueue?.metricApproximateNumberOfMessagesVisible(props);
  }
}
