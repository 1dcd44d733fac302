import * as events from 'aws-cdk-lib/aws-events';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { ProductConfig } from './config';
import { CustomersTable, CustomersTableProps } from './customers-table';
import { RegistrationEndpoint, RegistrationEndpointProps } from './registration';

export interface MarketplaceSaasIntegrationProps {
  /** The products this integration sells: product code, identity mode, dimensions, onboarding URL. */
  readonly products: readonly ProductConfig[];
  /** Told about new registrations (and, later, alarms) by e-mail. @default no e-mail */
  readonly adminEmail?: string;
  /** Where provisioning events go. @default the account's default event bus */
  readonly eventBus?: events.IEventBus;
  /** Settings of the Customers table. @default CustomersTableProps defaults (retained, PITR, encrypted) */
  readonly customersTable?: CustomersTableProps;
  /** Settings of the registration endpoint (throttling, body limit, log retention). @default RegistrationEndpointProps defaults */
  readonly registration?: Pick<
    RegistrationEndpointProps,
    'throttlingRateLimit' | 'throttlingBurstLimit' | 'maxBodyBytes' | 'logRetention'
  >;
}

/**
 * The AWS Marketplace SaaS integration as one construct, to embed in the seller's own CDK app:
 * `new MarketplaceSaasIntegration(this, 'Marketplace', { products })`.
 */
export class MarketplaceSaasIntegration extends Construct {
  public readonly customers: CustomersTable;
  public readonly registration: RegistrationEndpoint;
  /** The topic the admin e-mail is subscribed to, when `adminEmail` is given. */
  public readonly adminTopic?: sns.Topic;

  constructor(scope: Construct, id: string, props: MarketplaceSaasIntegrationProps) {
    super(scope, id);
    this.customers = new CustomersTable(this, 'Customers', props.customersTable);
    if (props.adminEmail) {
      this.adminTopic = new sns.Topic(this, 'AdminTopic', { displayName: 'AWS Marketplace SaaS integration', enforceSSL: true });
      this.adminTopic.addSubscription(new subscriptions.EmailSubscription(props.adminEmail));
    }
    this.registration = new RegistrationEndpoint(this, 'Registration', {
      ...props.registration,
      customers: this.customers,
      products: props.products,
      eventBus: props.eventBus,
      adminTopic: this.adminTopic,
    });
  }
}
