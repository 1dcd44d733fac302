import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../lib/app-builder';
import { MARKETPLACE_DETAIL_TYPES } from '../../lib/lifecycle';
import { MarketplaceSaasIntegration } from '../../lib/marketplace-saas-integration';

/**
 * The subscription lifecycle as CloudFormation sees it: the EventBridge rule on the default bus for
 * `aws.agreement-marketplace` with a dead-letter queue and retries; for legacy products that name
 * their SNS topics (and only then), a queue subscribed to them with its own dead-letter queue feeding
 * the function with partial batch responses; least-privilege IAM (GetEntitlements, invoking only the
 * metering function, never billing itself); and cdk-nag clean with legacy topics.
 */

const SUBSCRIPTION_TOPIC = 'arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-prodlegacy';
const ENTITLEMENT_TOPIC = 'arn:aws:sns:us-east-1:287250355862:aws-mp-entitlement-notification-prodlegacy';

const LICENSE_PRODUCT = { productCode: 'prod-license', identityMode: 'license', dimensions: ['requests'] };
const LEGACY_PRODUCT = { productCode: 'prod-legacy', identityMode: 'legacy', dimensions: ['seats'] };
const LEGACY_WITH_TOPICS = { ...LEGACY_PRODUCT, subscriptionTopicArn: SUBSCRIPTION_TOPIC, entitlementTopicArn: ENTITLEMENT_TOPIC };

function template(products: unknown[]): Template {
  const app = new App({ context: { products, 'aws:cdk:bundling-stacks': [] } });
  return Template.fromStack(buildApp(app));
}

/** The logical id of the one resource of `type` whose id matches `pattern`. */
function idOf(t: Template, type: string, pattern: RegExp): string {
  const ids = Object.keys(t.findResources(type)).filter((id) => pattern.test(id));
  if (ids.length !== 1) throw new Error(`expected one ${type} matching ${pattern}, found ${JSON.stringify(ids)}`);
  return ids[0];
}

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}
const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

/** Every statement granted to a role, from its attached IAM::Policy resources and its inline policies. */
function statementsOf(t: Template, roleId: string): Statement[] {
  const attached = Object.values(t.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles ?? []).some((r: { Ref?: string }) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
  const inline = (t.findResources('AWS::IAM::Role')[roleId]?.Properties.Policies ?? []).flatMap(
    (p: { PolicyDocument: { Statement: Statement[] } }) => p.PolicyDocument.Statement,
  );
  return [...attached, ...inline];
}

const lifecycleFunctionId = (t: Template) => idOf(t, 'AWS::Lambda::Function', /^MarketplaceLifecycle[0-9A-F]{8}$/);
const lifecycleRoleId = (t: Template) => t.findResources('AWS::Lambda::Function')[lifecycleFunctionId(t)].Properties.Role['Fn::GetAtt'][0] as string;
const meteringFunctionId = (t: Template) => idOf(t, 'AWS::Lambda::Function', /^MarketplaceMetering[0-9A-F]{8}$/);

/** The lifecycle role's SQS statements, but for sending to its dead-letter queue (what it fails on). */
function queueStatementsBeyondDeadLetters(t: Template): Statement[] {
  const dlq = { 'Fn::GetAtt': [idOf(t, 'AWS::SQS::Queue', /^MarketplaceLifecycleDeadLetterQueue/), 'Arn'] };
  return statementsOf(t, lifecycleRoleId(t)).filter(
    (s) => actionsOf(s).some((a) => a.startsWith('sqs:')) && !(JSON.stringify(s.Resource) === JSON.stringify(dlq) && !actionsOf(s).includes('sqs:ReceiveMessage')),
  );
}

/** The lifecycle function's event source mappings (SQS queues feeding it). */
function lifecycleEventSources(t: Template) {
  const fn = lifecycleFunctionId(t);
  return Object.values(t.findResources('AWS::Lambda::EventSourceMapping')).filter((m) => m.Properties.FunctionName?.Ref === fn);
}

describe('the EventBridge rule for AWS Marketplace events', () => {
  const t = template([LICENSE_PRODUCT, LEGACY_PRODUCT]);

  test('listens on the default bus to aws.agreement-marketplace, for exactly the eight agreement and licence detail-types', () => {
    const rules = Object.values(t.findResources('AWS::Events::Rule')).filter((r) => r.Properties.EventPattern?.source);
    expect(rules).toHaveLength(1);
    const { EventPattern, EventBusName, State } = rules[0].Properties;
    expect(EventBusName).toBeUndefined();
    expect(State).toBe('ENABLED');
    expect(EventPattern.source).toEqual(['aws.agreement-marketplace']);
    expect([...EventPattern['detail-type']].sort()).toEqual(
      [
        'Purchase Agreement Created - Proposer',
        'Purchase Agreement Created - Manufacturer',
        'Purchase Agreement Amended - Proposer',
        'Purchase Agreement Amended - Manufacturer',
        'Purchase Agreement Ended - Proposer',
        'Purchase Agreement Ended - Manufacturer',
        'License Updated - Manufacturer',
        'License Deprovisioned - Manufacturer',
      ].sort(),
    );
    expect(MARKETPLACE_DETAIL_TYPES).toHaveLength(8);
    // Nothing else: no filter on detail fields that could drop an event.
    expect(Object.keys(EventPattern).sort()).toEqual(['detail-type', 'source']);
  });

  test('targets the lifecycle function with retries for a day and a dead-letter queue for what still fails', () => {
    const dlq = idOf(t, 'AWS::SQS::Queue', /^MarketplaceLifecycleDeadLetterQueue/);
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: Match.objectLike({ source: ['aws.agreement-marketplace'] }),
      Targets: [
        {
          Arn: { 'Fn::GetAtt': [lifecycleFunctionId(t), 'Arn'] },
          Id: Match.anyValue(),
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlq, 'Arn'] } },
          RetryPolicy: { MaximumRetryAttempts: Match.anyValue(), MaximumEventAgeInSeconds: 86400 },
        },
      ],
    });
    const target = Object.values(t.findResources('AWS::Events::Rule')).find((r) => r.Properties.EventPattern?.source)!.Properties.Targets[0];
    expect(target.RetryPolicy.MaximumRetryAttempts).toBeGreaterThanOrEqual(3);
    // EventBridge may invoke the function, and write to the dead-letter queue only from this rule.
    t.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [lifecycleFunctionId(t), 'Arn'] },
    });
    t.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: dlq }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'sqs:SendMessage', Principal: { Service: 'events.amazonaws.com' }, Condition: { ArnEquals: { 'aws:SourceArn': Match.anyValue() } } }),
        ]),
      },
    });
  });

  test('an event the function itself fails on (invoked asynchronously) goes to the same dead-letter queue after Lambda\'s two retries, and the function may send it there', () => {
    const dlq = idOf(t, 'AWS::SQS::Queue', /^MarketplaceLifecycleDeadLetterQueue/);
    const configs = Object.values(t.findResources('AWS::Lambda::EventInvokeConfig')).filter((c) => c.Properties.FunctionName?.Ref === lifecycleFunctionId(t));
    expect(configs.map((c) => c.Properties)).toEqual([
      expect.objectContaining({
        MaximumRetryAttempts: 2,
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [dlq, 'Arn'] } } },
      }),
    ]);
    const sends = statementsOf(t, lifecycleRoleId(t)).filter((s) => actionsOf(s).includes('sqs:SendMessage'));
    expect(sends.map((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': [dlq, 'Arn'] }]);
  });

  test('the dead-letter queue keeps failed notifications 14 days, encrypted, and is kept if the stack is deleted', () => {
    const dlq = idOf(t, 'AWS::SQS::Queue', /^MarketplaceLifecycleDeadLetterQueue/);
    const resource = t.findResources('AWS::SQS::Queue')[dlq];
    expect(resource.Properties).toMatchObject({ MessageRetentionPeriod: 14 * 24 * 3600, SqsManagedSseEnabled: true });
    expect(resource.DeletionPolicy).toBe('Retain');
  });

  test('the function gets the products, the Customers table and the Usage journal, the metering function, the event bus and the final usage delay (5 minutes)', () => {
    const fn = t.findResources('AWS::Lambda::Function')[lifecycleFunctionId(t)];
    expect(fn.Properties).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'], Timeout: 60, TracingConfig: { Mode: 'Active' } });
    expect(fn.Properties.Environment.Variables).toMatchObject({
      PRODUCTS: JSON.stringify([LICENSE_PRODUCT, LEGACY_PRODUCT]),
      CUSTOMERS_TABLE: { Ref: idOf(t, 'AWS::DynamoDB::Table', /^MarketplaceCustomersTable/) },
      USAGE_JOURNAL_TABLE: { Ref: idOf(t, 'AWS::DynamoDB::Table', /^MarketplaceMeteringLedgerJournalTable/) },
      METERING_FUNCTION_NAME: { Ref: meteringFunctionId(t) },
      EVENT_BUS_NAME: 'default',
      FINAL_USAGE_DELAY_SECONDS: '300',
    });
    expect(fn.Properties.Environment.Variables.METERING_TABLE).toBeUndefined();
  });
});

describe('finalUsageDelay', () => {
  const integration = (props: { finalUsageDelay?: Duration; schedule?: Duration }) => {
    const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Seller', { env: { region: 'us-east-1' } });
    new MarketplaceSaasIntegration(stack, 'Marketplace', {
      products: [{ ...LICENSE_PRODUCT, identityMode: 'license' }],
      lifecycle: { finalUsageDelay: props.finalUsageDelay },
      metering: { schedule: props.schedule },
    });
    return Template.fromStack(stack);
  };
  const delayOf = (t: Template) =>
    Object.values(t.findResources('AWS::Lambda::Function')).find((f) => f.Properties.Environment?.Variables?.FINAL_USAGE_DELAY_SECONDS)?.Properties.Environment
      .Variables.FINAL_USAGE_DELAY_SECONDS;

  test.each([
    [Duration.minutes(2), Duration.minutes(5), '120'],
    [Duration.seconds(0), Duration.hours(1), '0'],
    [Duration.minutes(15), Duration.minutes(15), '900'],
  ])('%s with a schedule of %s: the function is told %s seconds', (finalUsageDelay, schedule, expected) => {
    expect(delayOf(integration({ finalUsageDelay, schedule }))).toBe(expected);
  });

  test('a delay and schedule that could seal final usage more than 30 minutes after the end are refused', () => {
    expect(() => integration({ finalUsageDelay: Duration.minutes(10), schedule: Duration.minutes(30) })).toThrow(/finalUsageDelay \(600 s\) plus the metering schedule \(1800 s\)/);
  });
});

/**
 * AWS Marketplace publishes its events in us-east-1 only: a stack elsewhere would never hear of an
 * unsubscribe. Refused at synthesis when the region is known, by a template rule when it is not.
 */
describe('the region: us-east-1, where AWS Marketplace publishes its events', () => {
  const embedded = (env: { region?: string }, marketplaceEventsForwarded?: boolean) => {
    const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Seller', { env });
    new MarketplaceSaasIntegration(stack, 'Marketplace', { products: [{ ...LICENSE_PRODUCT, identityMode: 'license' }], lifecycle: { marketplaceEventsForwarded } });
    return Template.fromStack(stack).toJSON();
  };
  /** The template's rules but CDK's own bootstrap version check. */
  const regionRules = (t: { Rules?: Record<string, unknown> }) =>
    Object.entries(t.Rules ?? {}).filter(([id]) => id !== 'CheckBootstrapVersion').map(([, rule]) => rule as { Assertions: unknown[] });

  test('a stack in another region is refused, with what to do', () => {
    expect(() => embedded({ region: 'eu-west-1' })).toThrow(
      /The stack is in eu-west-1\. AWS Marketplace sends its EventBridge events in us-east-1 only: deploy this stack there, or forward them .* marketplaceEventsForwarded/,
    );
  });

  test('in us-east-1, or elsewhere with the events forwarded: no refusal and no template rule; the lifecycle rule is there', () => {
    for (const t of [embedded({ region: 'us-east-1' }), embedded({ region: 'eu-west-1' }, true)]) {
      expect(regionRules(t)).toEqual([]);
      const rules = Object.values(t.Resources as Record<string, { Type: string; Properties: { EventPattern?: { source?: string[] } } }>).filter((r) => r.Type === 'AWS::Events::Rule');
      expect(rules.map((r) => r.Properties.EventPattern?.source)).toContainEqual(['aws.agreement-marketplace']);
    }
  });

  test('elsewhere with the events forwarded, legacy SNS topics are still subscribed to in us-east-1', () => {
    const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Seller', { env: { region: 'eu-west-1' } });
    new MarketplaceSaasIntegration(stack, 'Marketplace', { products: [{ ...LEGACY_WITH_TOPICS, identityMode: 'legacy' }], lifecycle: { marketplaceEventsForwarded: true } });
    const subscriptions = Object.values(Template.fromStack(stack).findResources('AWS::SNS::Subscription')).map((s) => [s.Properties.TopicArn, s.Properties.Region]);
    expect(subscriptions.sort()).toEqual([
      [ENTITLEMENT_TOPIC, 'us-east-1'],
      [SUBSCRIPTION_TOPIC, 'us-east-1'],
    ]);
  });

  test('an environment-agnostic stack: CloudFormation is told to refuse a deployment outside us-east-1', () => {
    const rules = regionRules(embedded({}));
    expect(rules).toHaveLength(1);
    expect(rules[0].Assertions).toEqual([
      { Assert: { 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'us-east-1'] }, AssertDescription: expect.stringContaining('marketplaceEventsForwarded') },
    ]);
  });
});

describe('legacy SNS topics: a subscribed queue only when a product names its topics', () => {
  test('no topic ARNs (even with a legacy product): no legacy queue, no SNS subscription, no event source for the lifecycle function', () => {
    const t = template([LICENSE_PRODUCT, LEGACY_PRODUCT]);
    expect(Object.keys(t.findResources('AWS::SQS::Queue')).filter((id) => /Legacy/.test(id))).toEqual([]);
    expect(t.findResources('AWS::SNS::Subscription')).toEqual({});
    expect(lifecycleEventSources(t)).toEqual([]);
    // SQS: only sending what it fails on to its dead-letter queue.
    expect(queueStatementsBeyondDeadLetters(t).flatMap(actionsOf)).toEqual([]);
  });

  describe('a legacy product with both topics', () => {
    const t = template([LICENSE_PRODUCT, LEGACY_WITH_TOPICS]);
    const queueId = () => idOf(t, 'AWS::SQS::Queue', /^MarketplaceLifecycleLegacyNotifications/);
    const dlqId = () => idOf(t, 'AWS::SQS::Queue', /^MarketplaceLifecycleLegacyDeadLetterQueue/);

    test('the queue subscribes to both topics, in us-east-1, with the SNS envelope kept (no raw delivery)', () => {
      const subscriptions = Object.values(t.findResources('AWS::SNS::Subscription')).map((s) => s.Properties);
      expect(subscriptions.map((s) => s.TopicArn).sort()).toEqual([ENTITLEMENT_TOPIC, SUBSCRIPTION_TOPIC]);
      for (const s of subscriptions) {
        expect(s).toMatchObject({ Protocol: 'sqs', Endpoint: { 'Fn::GetAtt': [queueId(), 'Arn'] }, Region: 'us-east-1' });
        // The handler parses the SNS envelope (MessageId, Timestamp): raw delivery would drop it.
        expect(s.RawMessageDelivery).not.toBe(true);
      }
    });

    test('only those two topics may send to the queue, over TLS only', () => {
      const policy = Object.values(t.findResources('AWS::SQS::QueuePolicy')).find((p) => p.Properties.Queues[0].Ref === queueId())!;
      const statements = policy.Properties.PolicyDocument.Statement as (Statement & { Principal: unknown; Condition?: Record<string, Record<string, unknown>> })[];
      const sends = statements.filter((s) => s.Effect === 'Allow');
      expect(sends.map((s) => [s.Action, s.Principal, s.Condition?.ArnEquals?.['aws:SourceArn']]).sort()).toEqual(
        [
          ['sqs:SendMessage', { Service: 'sns.amazonaws.com' }, ENTITLEMENT_TOPIC],
          ['sqs:SendMessage', { Service: 'sns.amazonaws.com' }, SUBSCRIPTION_TOPIC],
        ].sort(),
      );
      expect(statements.filter((s) => s.Effect === 'Deny')).toEqual([
        expect.objectContaining({ Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      ]);
    });

    test('the queue redrives to its dead-letter queue after 5 receives; visibility 6 x the function timeout; both kept 14 days', () => {
      const queues = t.findResources('AWS::SQS::Queue');
      expect(queues[queueId()].Properties).toMatchObject({
        RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId(), 'Arn'] }, maxReceiveCount: 5 },
        VisibilityTimeout: 6 * 60,
        MessageRetentionPeriod: 14 * 24 * 3600,
        SqsManagedSseEnabled: true,
      });
      expect(queues[dlqId()].Properties).toMatchObject({ MessageRetentionPeriod: 14 * 24 * 3600, SqsManagedSseEnabled: true });
      expect(queues[dlqId()].Properties.RedrivePolicy).toBeUndefined();
    });

    test('the queue feeds the lifecycle function with partial batch responses', () => {
      expect(lifecycleEventSources(t).map((m) => m.Properties)).toEqual([
        expect.objectContaining({
          EventSourceArn: { 'Fn::GetAtt': [queueId(), 'Arn'] },
          BatchSize: 10,
          FunctionResponseTypes: ['ReportBatchItemFailures'],
        }),
      ]);
      const sqsActions = queueStatementsBeyondDeadLetters(t);
      expect(sqsActions).toHaveLength(1);
      expect(sqsActions[0].Resource).toEqual({ 'Fn::GetAtt': [queueId(), 'Arn'] });
      expect(actionsOf(sqsActions[0])).toEqual(expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage']));
    });
  });

  test('a product with only its subscription topic: one subscription', () => {
    const t = template([{ ...LEGACY_PRODUCT, subscriptionTopicArn: SUBSCRIPTION_TOPIC }]);
    expect(Object.values(t.findResources('AWS::SNS::Subscription')).map((s) => s.Properties.TopicArn)).toEqual([SUBSCRIPTION_TOPIC]);
    expect(lifecycleEventSources(t)).toHaveLength(1);
  });

  test('topics of two legacy products: one queue subscribed to all four', () => {
    const other = (kind: string) => `arn:aws:sns:us-east-1:287250355862:aws-mp-${kind}-notification-prodother`;
    const t = template([
      LEGACY_WITH_TOPICS,
      { productCode: 'prod-other', identityMode: 'legacy', dimensions: ['seats'], subscriptionTopicArn: other('subscription'), entitlementTopicArn: other('entitlement') },
    ]);
    expect(Object.keys(t.findResources('AWS::SQS::Queue')).filter((id) => /LegacyNotifications/.test(id))).toHaveLength(1);
    expect(Object.values(t.findResources('AWS::SNS::Subscription')).map((s) => s.Properties.TopicArn).sort()).toEqual(
      [SUBSCRIPTION_TOPIC, ENTITLEMENT_TOPIC, other('subscription'), other('entitlement')].sort(),
    );
  });
});

describe('IAM of the lifecycle function', () => {
  const t = template([LICENSE_PRODUCT, LEGACY_WITH_TOPICS]);
  const statements = () => statementsOf(t, lifecycleRoleId(t));

  test('from AWS Marketplace only GetEntitlements (no resource-level permissions exist: *); never BatchMeterUsage or ResolveCustomer', () => {
    const marketplace = statements().filter((s) => actionsOf(s).some((a) => a.startsWith('aws-marketplace:')));
    expect(marketplace).toEqual([expect.objectContaining({ Effect: 'Allow', Action: 'aws-marketplace:GetEntitlements', Resource: '*' })]);
  });

  test('may invoke the metering function and no other', () => {
    const invoke = statements().filter((s) => actionsOf(s).some((a) => a.startsWith('lambda:')));
    expect(invoke).toEqual([
      expect.objectContaining({ Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: { 'Fn::GetAtt': [meteringFunctionId(t), 'Arn'] } }),
    ]);
  });

  test('Customers table: read, conditional updates and deleting kept events on the table, Query only on the account index; no Scan', () => {
    const customers = idOf(t, 'AWS::DynamoDB::Table', /^MarketplaceCustomersTable/);
    const onCustomers = statements().filter((s) => JSON.stringify(s.Resource).includes(customers));
    expect(onCustomers.map((s) => [actionsOf(s).sort(), s.Resource])).toEqual([
      [['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem'], { 'Fn::GetAtt': [customers, 'Arn'] }],
      [['dynamodb:Query'], { 'Fn::Join': ['', [{ 'Fn::GetAtt': [customers, 'Arn'] }, '/index/byCustomerAWSAccountId']] }],
    ]);
  });

  test('Usage journal: PutItem only, to schedule a customer\'s final usage; nothing on the Metering ledger', () => {
    const ledger = idOf(t, 'AWS::DynamoDB::Table', /^MarketplaceMeteringLedgerTable/);
    const journal = idOf(t, 'AWS::DynamoDB::Table', /^MarketplaceMeteringLedgerJournalTable/);
    const on = (id: string) => statements().filter((s) => JSON.stringify(s.Resource).includes(id));
    expect(on(ledger)).toEqual([]);
    expect(on(journal).map((s) => [actionsOf(s), s.Resource])).toEqual([[['dynamodb:PutItem'], { 'Fn::GetAtt': [journal, 'Arn'] }]]);
  });

  test('no wildcard action, nothing beyond what the function does', () => {
    const actions = statements().flatMap(actionsOf);
    expect(actions.filter((a) => a === '*' || a.endsWith(':*'))).toEqual([]);
    const services = [...new Set(actions.map((a) => a.split(':')[0]))].sort();
    expect(services).toEqual(['aws-marketplace', 'dynamodb', 'events', 'lambda', 'sqs', 'xray']);
    expect(actions.filter((a) => a.startsWith('dynamodb:')).sort()).not.toContain('dynamodb:Scan');
  });

  test('the metering function is the only one that may bill', () => {
    const billers = Object.keys(t.findResources('AWS::IAM::Role')).filter((role) =>
      statementsOf(t, role).some((s) => actionsOf(s).includes('aws-marketplace:BatchMeterUsage')),
    );
    const meteringRole = t.findResources('AWS::Lambda::Function')[meteringFunctionId(t)].Properties.Role['Fn::GetAtt'][0];
    expect(billers).toEqual([meteringRole]);
  });
});

describe('cdk-nag (AwsSolutions) over the whole app with legacy topics', () => {
  let outdir: string | undefined;
  afterEach(() => {
    jest.restoreAllMocks();
    if (outdir) rmSync(outdir, { recursive: true, force: true });
  });

  test('synthesizes with no finding', () => {
    jest.spyOn(console, 'error').mockImplementation(() => undefined);
    outdir = mkdtempSync(path.join(tmpdir(), 'lifecycle-synth-'));
    const app = new App({
      outdir,
      context: { products: JSON.stringify([LICENSE_PRODUCT, LEGACY_WITH_TOPICS]), adminEmail: 'ops@example.com', 'aws:cdk:bundling-stacks': [] },
    });
    const stack = buildApp(app);

    const assembly = app.synth();

    const report = path.join(outdir, 'validation-report.json');
    expect(existsSync(report)).toBe(true);
    const findings = (JSON.parse(readFileSync(report, 'utf8')) as {
      pluginReports: { pluginName: string; violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[] }[];
    }).pluginReports
      .filter((r) => r.pluginName === 'AwsSolutions')
      .flatMap((r) => r.violations.flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} at ${c.constructPath}`)));
    expect(findings).toEqual([]);
    // The synthesized stack really has the legacy queue and its subscriptions.
    const resources = Object.values(assembly.getStackByName(stack.stackName).template.Resources as Record<string, { Type: string }>);
    expect(resources.filter((r) => r.Type === 'AWS::SNS::Subscription' && JSON.stringify(r).includes('aws-mp-'))).toHaveLength(2);
  });
});
