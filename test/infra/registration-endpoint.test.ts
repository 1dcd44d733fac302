import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../lib/app-builder';
import { MarketplaceSaasIntegration } from '../../lib/marketplace-saas-integration';

/**
 * The registration endpoint and the Customers table as CloudFormation sees them: routes, stage
 * protection, least-privilege IAM, and a table that keeps billing-relevant data.
 */

const products = [
  { productCode: 'prod-license', identityMode: 'license', dimensions: ['requests'] },
  { productCode: 'prod-legacy', identityMode: 'legacy', dimensions: ['seats'], onboardingUrl: 'https://app.example.com/welcome' },
];

function template(context: Record<string, unknown> = {}): Template {
  const app = new App({ context: { products, 'aws:cdk:bundling-stacks': [], ...context } });
  return Template.fromStack(buildApp(app));
}

/** Every IAM policy statement attached to the registration function's role. */
function handlerStatements(t: Template): { Action: string | string[]; Resource: unknown }[] {
  const policies = t.findResources('AWS::IAM::Policy', {
    Properties: { Roles: [{ Ref: Match.stringLikeRegexp('RegistrationHandlerServiceRole') }] },
  });
  return Object.values(policies).flatMap((p) => p.Properties.PolicyDocument.Statement);
}

const actionsOf = (s: { Action: string | string[] }) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

describe('registration endpoint', () => {
  const t = template();

  it('routes GET and POST /register and POST /register/details to the function', () => {
    const resources = t.findResources('AWS::ApiGateway::Resource');
    const paths = Object.values(resources).map((r) => r.Properties.PathPart);
    expect(paths.sort()).toEqual(['details', 'register']);
    const methods = Object.values(t.findResources('AWS::ApiGateway::Method')).map((m) => m.Properties.HttpMethod);
    expect(methods.sort()).toEqual(['GET', 'POST', 'POST']);
    for (const method of Object.values(t.findResources('AWS::ApiGateway::Method'))) {
      expect(method.Properties.Integration.Type).toBe('AWS_PROXY');
      expect(method.Properties.AuthorizationType).toBe('NONE');
    }
  });

  it('throttles the stage, logs access without bodies, and traces', () => {
    t.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'prod',
      TracingEnabled: true,
      AccessLogSetting: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
      MethodSettings: [
        Match.objectLike({ ThrottlingRateLimit: 20, ThrottlingBurstLimit: 50, DataTraceEnabled: false, LoggingLevel: 'ERROR' }),
      ],
    });
  });

  it('takes its throttling from props', () => {
    // The construct embedded in a seller's own stack, with its own limits.
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Embedded');
    new MarketplaceSaasIntegration(stack, 'Marketplace', {
      products: [{ productCode: 'p', identityMode: 'license', dimensions: ['d'] }],
      registration: { throttlingRateLimit: 5, throttlingBurstLimit: 7 },
    });
    Template.fromStack(stack).hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 5, ThrottlingBurstLimit: 7 })],
    });
  });

  it('runs the function on Node.js 22, arm64, traced, with the products in its environment', () => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      TracingConfig: { Mode: 'Active' },
      Environment: {
        Variables: Match.objectLike({
          PRODUCTS: Match.serializedJson(Match.arrayWith([Match.objectLike({ productCode: 'prod-legacy', identityMode: 'legacy' })])),
          CUSTOMERS_TABLE: Match.anyValue(),
          REFERENCE_SECRET_ARN: Match.anyValue(),
          EVENT_BUS_NAME: 'default',
        }),
      },
    });
  });

  it('grants ResolveCustomer on * and nothing else from AWS Marketplace', () => {
    const marketplace = handlerStatements(t).filter((s) => actionsOf(s).some((a) => a.startsWith('aws-marketplace:')));
    expect(marketplace).toEqual([expect.objectContaining({ Action: 'aws-marketplace:ResolveCustomer', Resource: '*' })]);
  });

  it('may only update items of the Customers table (no scan, delete or table-wide rights)', () => {
    const dynamo = handlerStatements(t).filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
    expect(dynamo).toHaveLength(1);
    expect(actionsOf(dynamo[0])).toEqual(['dynamodb:UpdateItem']);
    expect(dynamo[0].Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^MarketplaceCustomersTable/), 'Arn'] });
  });

  it('may put events, read its signing secret, and nothing with a wildcard action', () => {
    const actions = handlerStatements(t).flatMap(actionsOf);
    expect(actions).toContain('events:PutEvents');
    expect(actions).toEqual(expect.arrayContaining(['secretsmanager:GetSecretValue']));
    expect(actions.filter((a) => a.endsWith(':*') || a === '*')).toEqual([]);
  });

  it('outputs the registration URL', () => {
    const outputs = Object.entries(t.findOutputs('*'));
    const registration = outputs.find(([name]) => name.includes('RegistrationUrl'));
    expect(registration).toBeDefined();
    expect(JSON.stringify(registration![1].Value)).toContain('/register');
  });

  it('outputs the reference signing secret, which the seller\'s onboarding page reads', () => {
    const secretId = Object.keys(t.findResources('AWS::SecretsManager::Secret')).find((id) => /ReferenceSecret/.test(id))!;
    const naming = Object.entries(t.findOutputs('*')).filter(([, o]) => JSON.stringify(o.Value).includes(secretId));
    expect(naming.map(([name]) => name)).toEqual([expect.stringMatching(/ReferenceSecretArn/)]);
  });

  it('subscribes the admin e-mail to a topic the function may publish to, only when given', () => {
    expect(Object.keys(t.findResources('AWS::SNS::Topic'))).toHaveLength(0);
    const withEmail = template({ adminEmail: 'ops@example.com' });
    withEmail.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    const actions = handlerStatements(withEmail).flatMap(actionsOf);
    expect(actions).toContain('sns:Publish');
  });
});

describe('Customers table', () => {
  const t = template();

  it('keeps the data: retained, deletion-protected, point-in-time recovery, encrypted', () => {
    t.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        DeletionProtectionEnabled: true,
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        // SSEEnabled without a key: the AWS managed KMS key (aws/dynamodb), not the owned default.
        SSESpecification: { SSEEnabled: true },
      }),
    });
  });

  it('is keyed by customer key, with an index by AWS account', () => {
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'customerKey', KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: 'byCustomerAWSAccountId',
          KeySchema: [
            { AttributeName: 'customerAWSAccountId', KeyType: 'HASH' },
            { AttributeName: 'customerKey', KeyType: 'RANGE' },
          ],
        }),
      ],
    });
  });
});

describe('Customers table expiry', () => {
  it('expires only items that carry expiresAt (kept agreement events)', () => {
    template().hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'customerKey', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
  });
});
