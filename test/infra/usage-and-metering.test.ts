import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { buildApp } from '../../lib/app-builder';
import { MarketplaceSaasIntegration } from '../../lib/marketplace-saas-integration';
import { UsageJournalSchema } from '../../lambda/core/usage-journal-schema';

/**
 * The usage pipeline, the Metering ledger, the Usage journal and the metering engine as
 * CloudFormation sees them: queues that keep usage safe, the ingest event source, the schedule, both
 * tables' protection, and least-privilege IAM (ingestion only appends to the journal, only the
 * metering function may bill). cdk-nag over the whole app is test/infra/stack.test.ts.
 */

const products = [
  { productCode: 'prod-license', identityMode: 'license', dimensions: ['requests'] },
  { productCode: 'prod-legacy', identityMode: 'legacy', dimensions: ['seats'] },
];

function template(): Template {
  const app = new App({ context: { products, 'aws:cdk:bundling-stacks': [] } });
  return Template.fromStack(buildApp(app));
}

/** The construct embedded in a seller's own stack. */
function embedded(props: Partial<ConstructorParameters<typeof MarketplaceSaasIntegration>[2]> = {}) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'SellerStack');
  const integration = new MarketplaceSaasIntegration(stack, 'Marketplace', {
    products: [{ productCode: 'p', identityMode: 'license', dimensions: ['d'] }],
    ...props,
  });
  return { stack, integration };
}

/** The logical id of the one resource of `type` whose id matches `pattern`. */
function idOf(t: Template, type: string, pattern: RegExp): string {
  const ids = Object.keys(t.findResources(type)).filter((id) => pattern.test(id));
  if (ids.length !== 1) throw new Error(`expected one ${type} matching ${pattern}, found ${JSON.stringify(ids)}`);
  return ids[0];
}

const QUEUE = 'AWS::SQS::Queue';
const FUNCTION = 'AWS::Lambda::Function';
const TABLE = 'AWS::DynamoDB::Table';

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}
const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resourcesOf = (s: Statement) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);

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

/** The role of a function, by the function's logical id. */
function roleOf(t: Template, functionId: string): string {
  return t.findResources(FUNCTION)[functionId].Properties.Role['Fn::GetAtt'][0];
}

const getAtt = (id: string, attribute = 'Arn') => ({ 'Fn::GetAtt': [id, attribute] });

describe('usage pipeline, Metering ledger and metering engine', () => {
  const t = template();
  const usageQueue = idOf(t, QUEUE, /^MarketplaceUsageQueue[0-9A-F]{8}$/);
  const usageDlq = idOf(t, QUEUE, /^MarketplaceUsageDeadLetterQueue[0-9A-F]{8}$/);
  const meteringDlq = idOf(t, QUEUE, /^MarketplaceMeteringDeadLetterQueue[0-9A-F]{8}$/);
  const ingest = idOf(t, FUNCTION, /^MarketplaceUsageIngest[0-9A-F]{8}$/);
  const metering = idOf(t, FUNCTION, /^MarketplaceMetering[0-9A-F]{8}$/);
  const registration = idOf(t, FUNCTION, /^MarketplaceRegistrationHandler[0-9A-F]{8}$/);
  const ledger = idOf(t, TABLE, /^MarketplaceMeteringLedgerTable[0-9A-F]{8}$/);
  const journal = idOf(t, TABLE, /^MarketplaceMeteringLedgerJournalTable[0-9A-F]{8}$/);
  const customers = idOf(t, TABLE, /^MarketplaceCustomersTable[0-9A-F]{8}$/);

  describe('queues', () => {
    it('the usage queue redrives to the usage dead-letter queue; nothing else redrives to either dead-letter queue', () => {
      const redriving = Object.entries(t.findResources(QUEUE)).filter(([, q]) => q.Properties.RedrivePolicy);
      const into = (dlq: string) => redriving.filter(([, q]) => JSON.stringify(q.Properties.RedrivePolicy.deadLetterTargetArn) === JSON.stringify(getAtt(dlq)));
      expect(into(usageDlq).map(([id]) => id)).toEqual([usageQueue]);
      expect(into(meteringDlq)).toEqual([]);
    });

    it('usage queue: SSE, 14 days retention, redrive to its dead-letter queue after 5 receives, visibility 6 x the ingest timeout', () => {
      const queue = t.findResources(QUEUE)[usageQueue].Properties;
      expect(queue).toEqual({
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: 14 * 24 * 3600,
        RedrivePolicy: { deadLetterTargetArn: getAtt(usageDlq), maxReceiveCount: 5 },
        VisibilityTimeout: 6 * t.findResources(FUNCTION)[ingest].Properties.Timeout,
      });
    });

    it('the usage journal keeps what a message counted longer than the usage queue keeps the message', () => {
      expect(UsageJournalSchema.lifetimeSeconds).toBeGreaterThan(t.findResources(QUEUE)[usageQueue].Properties.MessageRetentionPeriod);
    });

    it.each([
      ['usage dead-letter queue', () => usageDlq],
      ['metering dead-letter queue', () => meteringDlq],
    ])('%s: SSE, 14 days retention, no redrive of its own', (_name, id) => {
      expect(t.findResources(QUEUE)[id()].Properties).toEqual({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
    });

    it('every queue refuses requests that are not over TLS', () => {
      for (const queue of [usageQueue, usageDlq, meteringDlq]) {
        t.hasResourceProperties('AWS::SQS::QueuePolicy', {
          Queues: [{ Ref: queue }],
          PolicyDocument: {
            Statement: Match.arrayWith([
              {
                Effect: 'Deny',
                Principal: { AWS: '*' },
                Action: 'sqs:*',
                Condition: { Bool: { 'aws:SecureTransport': 'false' } },
                Resource: getAtt(queue),
              },
            ]),
          },
        });
      }
    });

    it('outputs the usage queue URL and both dead-letter queue URLs', () => {
      const outputs = t.findOutputs('*');
      const valueOf = (name: RegExp) => Object.entries(outputs).find(([id]) => name.test(id))?.[1].Value;
      expect(valueOf(/^MarketplaceUsageUsageQueueUrl/)).toEqual({ Ref: usageQueue });
      expect(valueOf(/^MarketplaceUsageUsageDeadLetterQueueUrl/)).toEqual({ Ref: usageDlq });
      expect(valueOf(/^MarketplaceMeteringMeteringDeadLetterQueueUrl/)).toEqual({ Ref: meteringDlq });
    });
  });

  describe('ingest', () => {
    it('is fed by the usage queue with partial batch responses, 100 messages or 5 seconds a batch', () => {
      const mappings = Object.values(t.findResources('AWS::Lambda::EventSourceMapping'));
      expect(mappings).toHaveLength(1);
      expect(mappings[0].Properties).toEqual({
        EventSourceArn: getAtt(usageQueue),
        FunctionName: { Ref: ingest },
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BatchSize: 100,
        MaximumBatchingWindowInSeconds: 5,
      });
    });

    it('knows the products, the Customers table, the Usage journal and the usage dead-letter queue', () => {
      expect(t.findResources(FUNCTION)[ingest].Properties.Environment.Variables).toMatchObject({
        PRODUCTS: JSON.stringify(products),
        CUSTOMERS_TABLE: { Ref: customers },
        USAGE_JOURNAL_TABLE: { Ref: journal },
        METERING_TABLE: { Ref: ledger },
        USAGE_DEAD_LETTER_QUEUE_URL: { Ref: usageDlq },
      });
    });

    it('takes batch size, batching window and maxReceiveCount from props', () => {
      const { stack } = embedded({ usage: { batchSize: 10, maxBatchingWindow: Duration.seconds(1), maxReceiveCount: 3 } });
      const e = Template.fromStack(stack);
      e.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: 10, MaximumBatchingWindowInSeconds: 1 });
      e.hasResourceProperties(QUEUE, { RedrivePolicy: Match.objectLike({ maxReceiveCount: 3 }) });
    });
  });

  describe('metering', () => {
    it('runs every 5 minutes, no retries onto the next run, invoking the metering function', () => {
      const rules = t.findResources('AWS::Events::Rule', { Properties: { ScheduleExpression: Match.anyValue() } });
      expect(Object.values(rules)).toHaveLength(1);
      const [ruleId, rule] = Object.entries(rules)[0];
      expect(rule.Properties).toMatchObject({
        ScheduleExpression: 'rate(5 minutes)',
        State: 'ENABLED',
        Targets: [{ Arn: getAtt(metering), Id: expect.any(String), RetryPolicy: { MaximumRetryAttempts: 0 } }],
      });
      t.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        FunctionName: getAtt(metering),
        Principal: 'events.amazonaws.com',
        SourceArn: getAtt(ruleId),
      });
    });

    it('one run at a time (reserved concurrency 1), 5 minutes timeout, 1,024 MB to fold an hour, 10 minutes grace', () => {
      expect(t.findResources(FUNCTION)[metering].Properties).toMatchObject({
        ReservedConcurrentExecutions: 1,
        Timeout: 300,
        MemorySize: 1024,
        Environment: {
          Variables: expect.objectContaining({
            METERING_TABLE: { Ref: ledger },
            USAGE_JOURNAL_TABLE: { Ref: journal },
            CUSTOMERS_TABLE: { Ref: customers },
            METERING_DEAD_LETTER_QUEUE_URL: { Ref: meteringDlq },
            GRACE_PERIOD_SECONDS: '600',
          }),
        },
      });
      // No other function is limited to one.
      expect(t.findResources(FUNCTION)[ingest].Properties.ReservedConcurrentExecutions).toBeUndefined();
    });

    it('a failed run is not run again by Lambda (no asynchronous retries): the next scheduled run does its work', () => {
      const configs = Object.values(t.findResources('AWS::Lambda::EventInvokeConfig')).filter((c) => c.Properties.FunctionName?.Ref === metering);
      expect(configs.map((c) => c.Properties.MaximumRetryAttempts)).toEqual([0]);
    });

    it('takes its schedule and grace period from props', () => {
      const { stack } = embedded({ metering: { schedule: Duration.minutes(1), gracePeriod: Duration.minutes(20) } });
      const e = Template.fromStack(stack);
      e.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 minute)' });
      e.hasResourceProperties(FUNCTION, {
        ReservedConcurrentExecutions: 1,
        Environment: { Variables: Match.objectLike({ GRACE_PERIOD_SECONDS: '1200' }) },
      });
    });
  });

  describe('IAM', () => {
    const roles = () => ({ ingest: roleOf(t, ingest), metering: roleOf(t, metering), registration: roleOf(t, registration) });
    const marketplaceActions = (roleId: string) =>
      statementsOf(t, roleId)
        .flatMap(actionsOf)
        .filter((a) => a.startsWith('aws-marketplace:'));

    it('only the metering role may call BatchMeterUsage, on * (it has no resource-level permissions), and nothing else of AWS Marketplace', () => {
      const { ingest: ingestRole, metering: meteringRole, registration: registrationRole } = roles();
      const billing = statementsOf(t, meteringRole).filter((s) => actionsOf(s).some((a) => a.startsWith('aws-marketplace:')));
      expect(billing).toEqual([{ Effect: 'Allow', Action: 'aws-marketplace:BatchMeterUsage', Resource: '*' }]);
      expect(marketplaceActions(ingestRole)).toEqual([]);
      expect(marketplaceActions(registrationRole)).not.toContain('aws-marketplace:BatchMeterUsage');
      // No policy anywhere else in the template grants it, nor a wildcard over AWS Marketplace.
      const everywhere = [
        ...Object.values(t.findResources('AWS::IAM::Policy')).map((p) => ({ roles: p.Properties.Roles, doc: p.Properties.PolicyDocument })),
        ...Object.values(t.findResources('AWS::IAM::ManagedPolicy')).map((p) => ({ roles: p.Properties.Roles, doc: p.Properties.PolicyDocument })),
      ];
      const granting = everywhere.filter(({ doc }) =>
        (doc.Statement as Statement[]).some((s) => actionsOf(s).some((a) => a === 'aws-marketplace:BatchMeterUsage' || a === 'aws-marketplace:*' || a === '*')),
      );
      expect(granting.map((g) => g.roles)).toEqual([[{ Ref: meteringRole }]]);
    });

    it('ingest: appends entries to the journal (PutItem, ConditionCheckItem; Query for redelivered messages; no updates, deletes), nothing on the ledger, customer lookups, usage dead letters', () => {
      const statements = statementsOf(t, roles().ingest);
      const onJournal = statements.filter((s) => JSON.stringify(s.Resource).includes(journal));
      expect(onJournal).toEqual([
        { Effect: 'Allow', Action: ['dynamodb:PutItem', 'dynamodb:ConditionCheckItem', 'dynamodb:Query'], Resource: getAtt(journal) },
      ]);
      expect(statements.filter((s) => JSON.stringify(s.Resource).includes(ledger))).toEqual([]);
      // Every DynamoDB action it has is on the journal or the Customers table.
      const dynamodb = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
      expect(dynamodb.flatMap(resourcesOf)).toEqual(expect.arrayContaining([getAtt(journal), getAtt(customers)]));
      expect(dynamodb.flatMap(resourcesOf)).toHaveLength(2);
      const onCustomers = statements.filter((s) => JSON.stringify(s.Resource).includes(customers));
      expect(onCustomers).toEqual([{ Effect: 'Allow', Action: 'dynamodb:BatchGetItem', Resource: getAtt(customers) }]);
      const sends = statements.filter((s) => actionsOf(s).includes('sqs:SendMessage'));
      expect(sends.flatMap(resourcesOf)).toEqual([getAtt(usageDlq)]);
      expect(statements.flatMap(actionsOf).filter((a) => a.endsWith(':*') || a === '*')).toEqual([]);
    });

    it('metering: query the work index, update and create buckets in the ledger; seal, query and write the journal; nothing more; read customers; metering dead letters', () => {
      const statements = statementsOf(t, roles().metering);
      const onLedger = statements.filter((s) => JSON.stringify(s.Resource).includes(ledger));
      expect(onLedger).toEqual([
        {
          Effect: 'Allow',
          // PutItem: the zero-quantity buckets of idle customers.
          Action: ['dynamodb:Query', 'dynamodb:UpdateItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:BatchWriteItem', 'dynamodb:BatchGetItem'],
          Resource: [getAtt(ledger), { 'Fn::Join': ['', [getAtt(ledger), '/index/byMeteringState']] }],
        },
      ]);
      expect(statements.filter((s) => JSON.stringify(s.Resource).includes(journal))).toEqual([
        // DeleteItem: a customer's final usage flush, once done.
        {
          Effect: 'Allow',
          Action: ['dynamodb:Query', 'dynamodb:UpdateItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:BatchWriteItem', 'dynamodb:BatchGetItem', 'dynamodb:DeleteItem'],
          Resource: getAtt(journal),
        },
      ]);
      expect(statements.filter((s) => JSON.stringify(s.Resource).includes(customers))).toEqual([
        // Subscription states (BatchGetItem) and the subscribed customers for zero-quantity records (Scan).
        { Effect: 'Allow', Action: ['dynamodb:BatchGetItem', 'dynamodb:Scan'], Resource: getAtt(customers) },
      ]);
      const sends = statements.filter((s) => actionsOf(s).includes('sqs:SendMessage'));
      expect(sends.flatMap(resourcesOf)).toEqual([getAtt(meteringDlq)]);
      expect(statements.flatMap(actionsOf).filter((a) => a.endsWith(':*') || a === '*')).toEqual([]);
    });

    it('registration may not touch the ledger, the journal or the usage queues', () => {
      const text = JSON.stringify(statementsOf(t, roles().registration));
      for (const id of [ledger, journal, usageQueue, usageDlq, meteringDlq]) expect(text).not.toContain(id);
    });

    it("grantAppendUsage gives a role the journal's PutItem, ConditionCheckItem and Query, and nothing else", () => {
      const { stack, integration } = embedded();
      const role = new iam.Role(stack, 'Appender', { assumedBy: new iam.AccountRootPrincipal() });
      integration.meteringLedger.grantAppendUsage(role);
      const e = Template.fromStack(stack);
      const journalId = idOf(e, TABLE, /^MarketplaceMeteringLedgerJournalTable[0-9A-F]{8}$/);
      expect(statementsOf(e, idOf(e, 'AWS::IAM::Role', /^Appender[0-9A-F]{8}$/))).toEqual([
        { Effect: 'Allow', Action: ['dynamodb:PutItem', 'dynamodb:ConditionCheckItem', 'dynamodb:Query'], Resource: getAtt(journalId) },
      ]);
    });
  });

  describe('Metering ledger table', () => {
    it('keeps billing data: point-in-time recovery, encryption, deletion protection, retained on delete and replace', () => {
      t.hasResource(TABLE, {
        Properties: Match.objectLike({
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          SSESpecification: { SSEEnabled: true },
          DeletionProtectionEnabled: true,
          BillingMode: 'PAY_PER_REQUEST',
        }),
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
      });
      expect(t.findResources(TABLE)[ledger]).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    });

    it('expires de-duplication markers through TTL on expiresAt, and indexes open and sealed buckets by state and hour', () => {
      expect(t.findResources(TABLE)[ledger].Properties).toMatchObject({
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        GlobalSecondaryIndexes: [
          {
            IndexName: 'byMeteringState',
            KeySchema: [
              { AttributeName: 'meteringState', KeyType: 'HASH' },
              { AttributeName: 'hourStart', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      });
    });
  });

  describe('Usage journal table', () => {
    it('is its own table next to the ledger and the Customers table, with pk + sk string keys, TTL on expiresAt, and no index', () => {
      expect(Object.keys(t.findResources(TABLE)).sort()).toEqual([customers, journal, ledger].sort());
      const properties = t.findResources(TABLE)[journal].Properties;
      expect(properties.KeySchema).toEqual([
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ]);
      expect(properties.AttributeDefinitions).toEqual([
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ]);
      expect(properties.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
      expect(properties.GlobalSecondaryIndexes).toBeUndefined();
      expect(properties.LocalSecondaryIndexes).toBeUndefined();
    });

    it('keeps usage not yet billed: on-demand, point-in-time recovery, AWS-managed encryption, deletion protection, retained on delete and replace', () => {
      const resource = t.findResources(TABLE)[journal];
      expect(resource).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
      expect(resource.Properties).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        // SSEEnabled without a key: the AWS managed KMS key (aws/dynamodb), not the owned default.
        SSESpecification: { SSEEnabled: true },
        DeletionProtectionEnabled: true,
      });
      expect(resource.Properties.SSESpecification.KMSMasterKeyId).toBeUndefined();
    });

    it("follows the ledger's removalPolicy prop", () => {
      const { stack } = embedded({ meteringLedger: { removalPolicy: RemovalPolicy.DESTROY } });
      const tables = Template.fromStack(stack).findResources(TABLE);
      const policies = Object.entries(tables)
        .filter(([id]) => /^MarketplaceMeteringLedger(Journal)?Table[0-9A-F]{8}$/.test(id))
        .map(([, r]) => [r.DeletionPolicy, r.UpdateReplacePolicy]);
      expect(policies).toEqual([
        ['Delete', 'Delete'],
        ['Delete', 'Delete'],
      ]);
    });
  });

  describe('grantSendUsage', () => {
    it("lets a seller's role send to the usage queue, and nothing else", () => {
      const { stack, integration } = embedded();
      const role = new iam.Role(stack, 'SellerService', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
      integration.grantSendUsage(role);
      const e = Template.fromStack(stack);
      const roleId = idOf(e, 'AWS::IAM::Role', /^SellerService[0-9A-F]{8}$/);
      const queueId = idOf(e, QUEUE, /^MarketplaceUsageQueue[0-9A-F]{8}$/);
      const statements = statementsOf(e, roleId);
      expect(statements).toHaveLength(1);
      expect(actionsOf(statements[0])).toContain('sqs:SendMessage');
      expect(actionsOf(statements[0]).filter((a) => !['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'].includes(a))).toEqual([]);
      expect(statements[0].Resource).toEqual(getAtt(queueId));
    });

    it('is also on the usage pipeline construct', () => {
      const { stack, integration } = embedded();
      const role = new iam.Role(stack, 'Producer', { assumedBy: new iam.AccountRootPrincipal() });
      integration.usage.grantSendUsage(role);
      const e = Template.fromStack(stack);
      expect(statementsOf(e, idOf(e, 'AWS::IAM::Role', /^Producer[0-9A-F]{8}$/)).flatMap(actionsOf)).toContain('sqs:SendMessage');
    });
  });

  describe('grantRedriveUsageDeadLetters', () => {
    it("lets an operator take messages from the usage dead-letter queue and send them to the usage queue, and nothing else", () => {
      const { stack, integration } = embedded();
      const role = new iam.Role(stack, 'Operator', { assumedBy: new iam.AccountRootPrincipal() });
      integration.grantRedriveUsageDeadLetters(role);
      const e = Template.fromStack(stack);
      const queueId = idOf(e, QUEUE, /^MarketplaceUsageQueue[0-9A-F]{8}$/);
      const deadLetterId = idOf(e, QUEUE, /^MarketplaceUsageDeadLetterQueue[0-9A-F]{8}$/);
      const statements = statementsOf(e, idOf(e, 'AWS::IAM::Role', /^Operator[0-9A-F]{8}$/));
      const onQueue = (id: string) => statements.filter((s) => JSON.stringify(s.Resource) === JSON.stringify(getAtt(id))).flatMap(actionsOf).sort();
      expect(onQueue(queueId)).toEqual(['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage']);
      expect(onQueue(deadLetterId)).toEqual(['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage']);
      expect(statements.every((s) => [getAtt(queueId), getAtt(deadLetterId)].some((r) => JSON.stringify(r) === JSON.stringify(s.Resource)))).toBe(true);
    });
  });
});
