import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { SubscriptionLifecycle } from './lifecycle';
import { RegistrationEndpoint } from './registration';
import { MeteringEngine } from './metering';
import { UsagePipeline } from './usage-pipeline';

export interface MonitoringProps {
  /** Registration server errors are alarmed on when given. @default no registration alarm */
  readonly registration?: RegistrationEndpoint;
  readonly usage: UsagePipeline;
  readonly metering: MeteringEngine;
  readonly lifecycle: SubscriptionLifecycle;
  /** Where alarms are sent (the admin e-mail topic). @default alarms without actions */
  readonly alarmTopic?: sns.ITopic;
  /** Age of the oldest usage message that means ingestion is stuck. @default Duration.minutes(30) */
  readonly maxUsageAge?: Duration;
}

/**
 * Alarms on what costs the seller money or trust: usage or records in a dead-letter queue, failed
 * metering runs, metering that stopped running or leaves usage unbilled run after run, lifecycle
 * events that could not be applied, and ingestion falling behind.
 */
export class Monitoring extends Construct {
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    if (props.alarmTopic) allowAlarmsToPublish(props.alarmTopic);
    const anyAtAll = (name: string, metric: cloudwatch.IMetric, description: string) =>
      this.alarm(name, metric, 1, description, props.alarmTopic);
    anyAtAll(
      'UsageDeadLetters',
      props.usage.metricDeadLetters({ period: Duration.minutes(5), statistic: 'Maximum' }),
      'Usage events could not be counted: read the reason attribute of the messages in the usage dead-letter queue.',
    );
    anyAtAll(
      'MeteringDeadLetters',
      props.metering.metricDeadLetters({ period: Duration.minutes(5), statistic: 'Maximum' }),
      'AWS Marketplace will not bill some usage: read the reason in the metering dead-letter queue.',
    );
    anyAtAll(
      'MeteringRunsFailing',
      props.metering.metricFailedRuns({ period: Duration.minutes(15), statistic: 'Sum' }),
      'The metering function failed: usage is not being billed until it runs again.',
    );
    anyAtAll(
      'LifecycleDeadLetters',
      props.lifecycle.metricDeadLetters({ period: Duration.minutes(5), statistic: 'Maximum' }),
      'AWS Marketplace notifications could not be applied: some customers\' status or entitlements may be wrong.',
    );
    const legacyDeadLetters = props.lifecycle.metricLegacyDeadLetters({ period: Duration.minutes(5), statistic: 'Maximum' });
    if (legacyDeadLetters) {
      anyAtAll(
        'LegacyNotificationDeadLetters',
        legacyDeadLetters,
        'Legacy SNS notifications (subscribe, unsubscribe, entitlements) could not be applied: some customers\' status may be wrong.',
      );
    }
    if (props.registration) {
      anyAtAll(
        'RegistrationServerErrors',
        props.registration.metricServerErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        'A buyer\'s registration failed with a server error (a product misconfigured, AWS Marketplace unavailable, a function error): read the registration function\'s log.',
      );
    }
    this.alarm(
      'UsageIngestionBehind',
      props.usage.metricOldestMessageAge({ period: Duration.minutes(5), statistic: 'Maximum' }),
      (props.maxUsageAge ?? Duration.minutes(30)).toSeconds(),
      'Usage waits on the queue longer than expected: ingestion is failing or too slow, and late usage may miss its billing window.',
      props.alarmTopic,
    );
    // Metering that does not fail but does not bill either raises no error: no runs at all (the
    // schedule disabled, the function throttled), or runs that leave sealed usage for the next one
    // hour after hour. AWS takes an hour's usage for 24 hours only.
    const interval = props.metering.interval.toSeconds();
    const quietPeriod = Duration.seconds(Math.min(Math.max(3 * interval, 15 * 60), 24 * 3600));
    this.alarm(
      'MeteringNotRunning',
      props.metering.metricRuns({ period: quietPeriod, statistic: 'Sum' }),
      1,
      `The metering function has not run for ${quietPeriod.toMinutes()} minutes (its schedule disabled or deleted, the function throttled): usage is not being billed. Right after the first deployment, until the first scheduled run, this is expected.`,
      props.alarmTopic,
      { comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD, treatMissingData: cloudwatch.TreatMissingData.BREACHING },
    );
    const backlogPeriod = Duration.seconds(Math.max(interval, 3600));
    this.alarm(
      'MeteringBacklog',
      props.metering.metricDeferredBuckets({ period: backlogPeriod, statistic: 'Minimum' }),
      1,
      `Every metering run for ${2 * backlogPeriod.toMinutes()} minutes left sealed usage unbilled (AWS Marketplace throttling or failing, or more buckets than a run can bill): read the metering function's log; AWS takes an hour's usage for 24 hours only.`,
      props.alarmTopic,
      { evaluationPeriods: 2 },
    );
  }

  private alarm(
    id: string,
    metric: cloudwatch.IMetric,
    threshold: number,
    description: string,
    topic?: sns.ITopic,
    when: Partial<Pick<cloudwatch.AlarmProps, 'comparisonOperator' | 'treatMissingData' | 'evaluationPeriods'>> = {},
  ): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      ...when,
      alarmDescription: description,
    });
    if (topic) alarm.addAlarmAction(new actions.SnsAction(topic));
    this.alarms.push(alarm);
  }
}

/**
 * CloudWatch alarms publish as the service, under the topic's resource policy. A topic with a policy
 * of its own (the admin topic's TLS-only statement replaces SNS's default one) must allow them, or
 * no alarm is ever delivered. Only this account's alarms may.
 */
function allowAlarmsToPublish(topic: sns.ITopic): void {
  const stack = Stack.of(topic);
  topic.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchAlarms',
      actions: ['sns:Publish'],
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      resources: [topic.topicArn],
      conditions: {
        ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }) },
        StringEquals: { 'aws:SourceAccount': stack.account },
      },
    }),
  );
}
