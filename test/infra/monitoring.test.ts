import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../lib/app-builder';

/**
 * Alarms on dead letters, failed metering runs, registration server errors and late ingestion,
 * sent to the admin e-mail.
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

const alarmsOf = (t: Template) => Object.values(t.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);

describe('monitoring', () => {
  it('alarms on every dead-letter queue, failed metering runs, registration server errors and late ingestion', () => {
    const t = template();
    const alarms = alarmsOf(t);
    expect(alarms).toHaveLength(6);
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
      expect(alarm.TreatMissingData).toBe('notBreaching');
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
    t.resourceCountIs('AWS::CloudWatch::Alarm', 6);
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
});
