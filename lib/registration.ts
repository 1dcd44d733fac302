import { CfnOutput, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { checkedProducts, ProductConfig } from './config';
import { CustomersTable } from './customers-table';
import { handlerFunction } from './handler-function';

export interface RegistrationEndpointProps {
  /** Where registered customers are stored. */
  readonly customers: CustomersTable;
  /** The products this endpoint registers buyers for; a token for any other product gets a 403 page. */
  readonly products: readonly ProductConfig[];
  /** Where `Marketplace Customer Registered` and `... Details Submitted` events go. @default the account's default event bus */
  readonly eventBus?: events.IEventBus;
  /** A topic told about each new customer (an admin e-mail subscription, say). @default no notification */
  readonly adminTopic?: sns.ITopic;
  /** Steady-state requests per second the stage accepts. @default 20 */
  readonly throttlingRateLimit?: number;
  /** Burst of requests the stage accepts. @default 50 */
  readonly throttlingBurstLimit?: number;
  /** Request bodies above this many bytes get a 413 page. @default 16384 */
  readonly maxBodyBytes?: number;
  /** How long API access logs and function logs are kept. @default logs.RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The fulfillment endpoint: a REST API (`POST /register` from AWS Marketplace, `GET /register`,
 * `POST /register/details`) in front of the registration function.
 */
export class RegistrationEndpoint extends Construct {
  public readonly api: apigateway.RestApi;
  public readonly handler: NodejsFunction;
  /** The HMAC key that signs registration references; give it to the seller's app to verify them. */
  public readonly referenceSecret: secretsmanager.Secret;
  /** The URL to enter as the product's fulfillment URL in the AWS Marketplace Management Portal. */
  public readonly registrationUrl: string;

  /** Registration requests answered with a server error (5xx): each is a buyer who could not register. */
  public metricServerErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metricServerError(props);
  }

  constructor(scope: Construct, id: string, props: RegistrationEndpointProps) {
    super(scope, id);
    const products = checkedProducts(props.products);
    const retention = props.logRetention ?? logs.RetentionDays.ONE_YEAR;
    const eventBus = props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');

    this.referenceSecret = new secretsmanager.Secret(this, 'ReferenceSecret', {
      description: 'Signs the registration references handed to buyers and to the onboarding URL',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    Validations.of(this.referenceSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'An HMAC key, not a credential: rotating it only invalidates references issued in the last hour; rotate by hand when needed.',
    });

    this.handler = handlerFunction(this, 'Handler', {
      handlerFolder: 'registration',
      description: 'AWS Marketplace buyer registration (fulfillment URL)',
      timeout: Duration.seconds(20),
      logRetention: retention,
      environment: {
        PRODUCTS: JSON.stringify(products),
        CUSTOMERS_TABLE: props.customers.table.tableName,
        EVENT_BUS_NAME: eventBus.eventBusName,
        REFERENCE_SECRET_ARN: this.referenceSecret.secretArn,
        ...(props.adminTopic ? { ADMIN_TOPIC_ARN: props.adminTopic.topicArn } : {}),
        MAX_BODY_BYTES: String(props.maxBodyBytes ?? 16384),
        POWERTOOLS_SERVICE_NAME: 'marketplace-registration',
      },
    });
    this.handler.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['aws-marketplace:ResolveCustomer'], resources: ['*'] }),
    );
    props.customers.grantRegistrationWrite(this.handler);
    if (products.some((p) => p.contract)) {
      // Contract products: the customer's entitlements are read when it registers.
      this.handler.addToRolePolicy(new iam.PolicyStatement({ actions: ['aws-marketplace:GetEntitlements'], resources: ['*'] }));
    }
    eventBus.grantPutEventsTo(this.handler);
    props.adminTopic?.grantPublish(this.handler);
    this.referenceSecret.grantRead(this.handler);

    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention, removalPolicy: RemovalPolicy.RETAIN });
    this.api = new apigateway.RestApi(this, 'Api', {
      // Its own name: API Gateway's metrics (the server-error alarm) are by API name.
      restApiName: `${Stack.of(this).stackName}-marketplace-registration`,
      description: 'AWS Marketplace fulfillment URL and buyer registration',
      endpointTypes: [apigateway.EndpointType.REGIONAL],
      cloudWatchRole: true,
      deployOptions: {
        stageName: 'prod',
        throttlingRateLimit: props.throttlingRateLimit ?? 20,
        throttlingBurstLimit: props.throttlingBurstLimit ?? 50,
        accessLogDestination: new apigateway.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigateway.AccessLogFormat.jsonWithStandardFields(),
        tracingEnabled: true,
        loggingLevel: apigateway.MethodLoggingLevel.ERROR,
        // Request bodies carry the registration token and contact details: never log them.
        dataTraceEnabled: false,
        metricsEnabled: true,
      },
    });
    const integration = new apigateway.LambdaIntegration(this.handler);
    const register = this.api.root.addResource('register');
    register.addMethod('GET', integration);
    register.addMethod('POST', integration);
    register.addResource('details').addMethod('POST', integration);
    this.registrationUrl = this.api.urlForPath('/register');
    new CfnOutput(this, 'RegistrationUrl', {
      value: this.registrationUrl,
      description: 'Enter this as the fulfillment URL of the product in the AWS Marketplace Management Portal',
    });
    new CfnOutput(this, 'ReferenceSecretArn', {
      value: this.referenceSecret.secretArn,
      description: 'The key your onboarding page verifies registration references with (Secrets Manager)',
    });

    this.acknowledgeFindings();
  }

  private acknowledgeFindings(): void {
    const api = Validations.of(this.api);
    api.acknowledge({
      id: 'AwsSolutions-APIG4',
      reason: 'The fulfillment URL is public by design: AWS Marketplace sends anonymous buyers to it; the registration token is the credential.',
    });
    api.acknowledge({ id: 'AwsSolutions-COG4', reason: 'Public fulfillment URL: buyers have no Cognito identity, see APIG4.' });
    api.acknowledge({
      id: 'AwsSolutions-APIG2',
      reason: 'Bodies are form-encoded; the function validates every field with a schema and answers 4xx with a message.',
    });
    api.acknowledge({
      id: 'AwsSolutions-APIG3',
      reason: 'Stage throttling limits abuse; sellers who need a WAF associate their web ACL with the stage.',
    });
    api.acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason: 'API Gateway account role: the AWS managed AmazonAPIGatewayPushToCloudWatchLogs policy is the documented way to let API Gateway write logs.',
    });
  }
}
