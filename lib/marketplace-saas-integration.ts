import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { ProductConfig } from './config';
import { CustomersTable, CustomersTableProps } from './customers-table';
import { SubscriptionLifecycle, SubscriptionLifecycleProps } from './lifecycle';
import { Monitoring } from './monitoring';
import { MeteringEngine, MeteringEngineProps } from './metering';
import { MeteringLedgerTable, MeteringLedgerTableProps } from './metering-ledger-table';
import { RegistrationEndpoint, RegistrationEndpointProps } from './registration';
import { UsagePipeline, UsagePipelineProps } from './usage-pipeline';

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
  /** Settings of the Metering ledger and Usage journal tables. @default MeteringLedgerTableProps defaults (retained, PITR, encrypted) */
  readonly meteringLedger?: MeteringLedgerTableProps;
  /** Settings of the usage queue and ingestion. @default UsagePipelineProps defaults */
  readonly usage?: Pick<UsagePipelineProps, 'maxReceiveCount' | 'batchSize' | 'maxBatchingWindow' | 'logRetention'>;
  /** Settings of the metering schedule. @default MeteringEngineProps defaults (every 5 minutes, 10 minutes' grace) */
  readonly metering?: Pick<MeteringEngineProps, 'schedule' | 'gracePeriod' | 'timeout' | 'memorySize' | 'logRetention' | 'sendZeroUsageRecords'>;
  /** Settings of the subscription lifecycle. @default SubscriptionLifecycleProps defaults (final usage 5 minutes after the end) */
  readonly lifecycle?: Pick<SubscriptionLifecycleProps, 'finalUsageDelay' | 'logRetention' | 'marketplaceEventsForwarded'>;
}

/**
 * The AWS Marketplace SaaS integration as one construct, to embed in the seller's own CDK app:
 * `new MarketplaceSaasIntegration(this, 'Marketplace', { products })`.
 */
export class MarketplaceSaasIntegration extends Construct {
  public readonly customers: CustomersTable;
  public readonly registration: RegistrationEndpoint;
  /** The Metering ledger (hour buckets) and the Usage journal (what ingestion writes). */
  public readonly meteringLedger: MeteringLedgerTable;
  public readonly usage: UsagePipeline;
  public readonly metering: MeteringEngine;
  public readonly lifecycle: SubscriptionLifecycle;
  /** Alarms, sent to the admin e-mail when one is given. */
  public readonly monitoring: Monitoring;
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
    this.meteringLedger = new MeteringLedgerTable(this, 'MeteringLedger', props.meteringLedger);
    this.usage = new UsagePipeline(this, 'Usage', {
      ...props.usage,
      products: props.products,
      customers: this.customers,
      ledger: this.meteringLedger,
    });
    this.metering = new MeteringEngine(this, 'Metering', {
      ...props.metering,
      products: props.products,
      ledger: this.meteringLedger,
      customers: this.customers,
    });
    this.lifecycle = new SubscriptionLifecycle(this, 'Lifecycle', {
      ...props.lifecycle,
      products: props.products,
      customers: this.customers,
      ledger: this.meteringLedger,
      metering: this.metering,
      eventBus: props.eventBus,
    });
    this.monitoring = new Monitoring(this, 'Monitoring', {
      registration: this.registration,
      usage: this.usage,
      metering: this.metering,
      lifecycle: this.lifecycle,
      alarmTopic: this.adminTopic,
    });
  }

  /** Lets the seller's services (their roles) send usage events to the usage queue. */
  public grantSendUsage(grantee: iam.IGrantable): iam.Grant {
    return this.usage.grantSendUsage(grantee);
  }

  /** Lets an operator send the usage dead-letter queue's messages again (UsagePipeline.grantRedriveDeadLetters). */
  public grantRedriveUsageDeadLetters(grantee: iam.IGrantable): iam.Grant {
    return this.usage.grantRedriveDeadLetters(grantee);
  }
}
