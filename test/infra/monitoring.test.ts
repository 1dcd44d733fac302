import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../lib/app-builder';

/** Alarms on dead letters, failed metering runs and late ingestion, sent to the admin e-mail. */

const products = [{ productCode: 'prod-license', identityMode: 'license', dimensions: ['requests'] }];

function template(context: Record<string, unknown> = {}): Template {
  const app = new App({ context: { products, 'aws:cdk:bundling-stacks': [], ...context } });
  return Template.fromStack(buildApp(app));
}

describe('monitoring', () => {
  it('alarms on every dead-letter queue, failed metering runs and late ingestion', () => {
    const t = template();
    const alarms = Object.values(t.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);
    expect(alarms).toHaveLength(5);
    const byMetric = (name: string) => alarms.filter((a) => a.MetricName === name);
    expect(byMetric('ApproximateNumberOfMessagesVisible')).toHaveLength(3);
    expect(byMetric('Errors')).toHaveLength(1);
    expect(byMetric('ApproximateAgeOfOldestMessage')).toEqual([expect.objectContaining({ Threshold: 1800 })]);
    for (const alarm of alarms) {
      expect(alarm.TreatMissingData).toBe('notBreaching');
      expect(alarm.AlarmActions).toBeUndefined();
    }
  });

  it('sends the alarms to the admin e-mail topic when one is given', () => {
    const t = template({ adminEmail: 'ops@example.com' });
    const topic = Object.keys(t.findResources('AWS::SNS::Topic'))[0];
    t.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: [{ Ref: topic }] });
    t.resourceCountIs('AWS::CloudWatch::Alarm', 5);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmDescription: Match.stringLikeRegexp('metering function failed') });
  });
});
