import { Metrics } from '@aws-lambda-powertools/metrics';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../lib/app-builder';
import { MarketplaceSaasIntegration } from '../../lib/marketplace-saas-integration';
import { recordRunMetrics } from '../../lambda/metering/metering-job';
import { MeteringReport } from '../../lambda/core/metering/metering-run';

/**
 * Alarms on dead letters, failed metering runs, metering that stopped or leaves usage unbilled,
 * registration server errors and late ingestion, sent to the admin e-mail.
 */

const products = [{ productCode: 'prod-license', identityMode: 'license', dimensions: ['requests'] }];
const LEGACY_WITH_TOPICS = {
  productCode: 'prod-legacy',
  identityMode: 'legacy',
  dimensions: ['seats'],
  subscriptionTopicArn: 'arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-prodlegacy',
  entitlementTopicArn: 'arn:aws:sns:us-east-1:287250355862:aws-mp-entitlement-notification-prodlegacy',
};

function template(context: Record<string, unknown> = {}): Template {
  const app = new App({ context: { products, 'aws:cdk:bundling-stacks': [], ...context } });
  return Template.fromStack(buildApp(app));
}

/** The construct embedded in a seller's stack, with its own metering schedule. */
function templateWithSchedule(schedule: Duration): Template {
  const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Seller', { env: { region: 'us-east-1' } });
  new MarketplaceSaasIntegration(stack, 'Marketplace', { products: [{ ...products[0], identityMode: 'license' }], metering: { schedule } });
  return Template.fromStack(stack);
}

const alarmsOf = (t: Template) => Object.values(t.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);

describe('monitoring', () => {
  it('alarms on every dead-letter queue, failed metering runs, registration server errors and late ingestion', () => {
    const t = template();
    const alarms = alarmsOf(t);
    expect(alarms).toHaveLength(8);
    const byMetric = (name: string) => alarms.filter((a) => a.MetricName === name);
    expect(byMetric('ApproximateNumberOfMessagesVisible')).toHaveLength(3);
    expect(byMetric('Errors')).toHaveLength(1);
    expect(byMetric('ApproximateAgeOfOldestMessage')).toEqual([expect.objectContaining({ Threshold: 1800 })]);
    // Any 5xx answer of the registration API (its own name, not a shared default): a buyer who could not register.
    const api = Object.values(t.findResources('AWS::ApiGateway::RestApi'))[0].Properties.Name;
    expect(api).toMatch(/registration/);
    expect(byMetric('5XXError')).toEqual([
      expect.objectContaining({ Namespace: 'AWS/ApiGateway', Statistic: 'Sum', Threshold: 1, Dimensions: [{ Name: 'ApiName', Value: api }] }),
    ]);
    for (const alarm of alarms) {
      // No data is good news but for the runs themselves (see below).
      expect(alarm.TreatMissingData).toBe(alarm.MetricName === 'Invocations' ? 'breaching' : 'notBreaching');
      expect(alarm.AlarmActions).toBeUndefined();
    }
  });

  it('every dead-letter queue of the stack has an alarm, the legacy notifications one included', () => {
    const t = template({ products: [...products, LEGACY_WITH_TOPICS] });
    const deadLetterQueues = Object.keys(t.findResources('AWS::SQS::Queue'))
      .filter((id) => /DeadLetterQueue/.test(id))
      .sort();
    const alarmed = alarmsOf(t)
      .filter((a) => a.MetricName === 'ApproximateNumberOfMessagesVisible')
      .map((a) => a.Dimensions.find((d: { Name: string }) => d.Name === 'QueueName').Value['Fn::GetAtt'][0])
      .sort();
    expect(deadLetterQueues).toHaveLength(4);
    expect(alarmed).toEqual(deadLetterQueues);
  });

  it('sends the alarms to the admin e-mail topic when one is given, whose policy lets this account\'s alarms publish', () => {
    const t = template({ adminEmail: 'ops@example.com' });
    const topic = Object.keys(t.findResources('AWS::SNS::Topic'))[0];
    t.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: [{ Ref: topic }] });
    t.resourceCountIs('AWS::CloudWatch::Alarm', 8);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmDescription: Match.stringLikeRegexp('metering function failed') });
    // The topic has a policy of its own (TLS only), which replaces SNS's default one: it must allow the alarms.
    t.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topic }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({
            Effect: 'Allow',
            Action: 'sns:Publish',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Condition: { ArnLike: { 'aws:SourceArn': Match.anyValue() }, StringEquals: { 'aws:SourceAccount': Match.anyValue() } },
          }),
        ]),
      },
    });
  });

  describe('metering that does not fail but does not bill', () => {
    const alarmNamed = (t: Template, id: RegExp) => {
      const [alarm, ...more] = Object.entries(t.findResources('AWS::CloudWatch::Alarm')).filter(([logicalId]) => id.test(logicalId));
      expect(more).toEqual([]);
      return alarm[1].Properties;
    };

    it('no run for three schedule intervals (at least 15 minutes): the invocations alarm, missing data counting as none', () => {
      for (const [schedule, seconds] of [
        [undefined, 900],
        [Duration.minutes(10), 1800],
        [Duration.minutes(25), 4500],
      ] as const) {
        const t = schedule === undefined ? template() : templateWithSchedule(schedule);
        const alarm = alarmNamed(t, /MeteringNotRunning/);
        expect(alarm).toMatchObject({
          MetricName: 'Invocations',
          Namespace: 'AWS/Lambda',
          Statistic: 'Sum',
          Period: seconds,
          Threshold: 1,
          ComparisonOperator: 'LessThanThreshold',
          TreatMissingData: 'breaching',
          EvaluationPeriods: 1,
        });
      }
    });

    it("every run for two hours left buckets deferred: the alarm reads the count the metering function publishes (Powertools' EMF), under the names it publishes", () => {
      const t = template();
      const alarm = alarmNamed(t, /MeteringBacklog/);
      expect(alarm).toMatchObject({ Statistic: 'Minimum', Period: 3600, EvaluationPeriods: 2, Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' });
      const variables = Object.values(t.findResources('AWS::Lambda::Function')).find((f) => f.Properties.Environment?.Variables?.METRICS_NAMESPACE)!.Properties.Environment.Variables;
      expect(alarm.Namespace).toBe(variables.METRICS_NAMESPACE);
      // What the function publishes after a run that left 3 buckets for the next one.
      const metrics = new Metrics({ namespace: variables.METRICS_NAMESPACE, serviceName: variables.POWERTOOLS_SERVICE_NAME });
      const report: MeteringReport = { sealed: 5, usageRejected: 6, duplicates: 0, metered: 2, deadLettered: 7, deferred: 3, held: 8, zeroRecords: 0, finalUsage: 0, finalUsageWithdrawn: 0, calls: 4 };
      recordRunMetrics(metrics, report);
      const emf = metrics.serializeMetrics() as unknown as Record<string, unknown> & { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] } };
      const [directive] = emf._aws.CloudWatchMetrics;
      expect(directive.Namespace).toBe(alarm.Namespace);
      expect(directive.Metrics.map((m) => m.Name)).toContain(alarm.MetricName);
      expect(emf[alarm.MetricName]).toBe(3);
      // The alarm's dimensions are exactly the ones the function's metrics carry.
      expect(directive.Dimensions).toEqual([alarm.Dimensions.map((d: { Name: string }) => d.Name)]);
      for (const { Name, Value } of alarm.Dimensions) expect(emf[Name]).toBe(Value);
      // And the run's other counts, each under its own name.
      expect(Object.fromEntries(directive.Metrics.map((m) => [m.Name, emf[m.Name]]))).toEqual({
        SealedBuckets: 5,
        MeteredBuckets: 2,
        DeadLetteredBuckets: 7,
        DeferredBuckets: 3,
        HeldBuckets: 8,
        RejectedUsageEvents: 6,
        BatchMeterUsageCalls: 4,
      });
    });
  });
});
