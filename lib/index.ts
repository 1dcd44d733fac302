/**
 * The package's public surface: the constructs to embed in a seller's CDK app, and the helpers the
 * seller's own application uses at run time.
 */
export { MarketplaceSaasIntegration, type MarketplaceSaasIntegrationProps } from './marketplace-saas-integration';
export { MarketplaceSaasStack, type MarketplaceSaasStackProps } from './marketplace-saas-stack';
export { CustomersTable, type CustomersTableProps } from './customers-table';
export { RegistrationEndpoint, type RegistrationEndpointProps } from './registration';
export { UsagePipeline, type UsagePipelineProps } from './usage-pipeline';
export { MeteringEngine, type MeteringEngineProps } from './metering';
export { Monitoring, type MonitoringProps } from './monitoring';
export { SubscriptionLifecycle, type SubscriptionLifecycleProps } from './lifecycle';
export { MeteringLedgerTable, type MeteringLedgerTableProps } from './metering-ledger-table';
export { parseStackConfig, ConfigError, type StackConfig, type ProductConfig } from './config';
// Run time, for the seller's onboarding page: check the `reference` query parameter it receives.
export {
  verifyRegistrationReference,
  type RegistrationReference,
  type ReferenceCheck,
} from '../lambda/core/registration/registration-reference';
// Run time, for the seller's services: report usage to the usage queue.
export { UsageProducer, type UsageProducerOptions, type SendUsageResult, type UnsentUsage } from '../lambda/adapters/usage-producer';
export { usageEventSchema, type UsageEvent, MAX_EVENTS_PER_MESSAGE } from '../lambda/core/usage/usage-event';
