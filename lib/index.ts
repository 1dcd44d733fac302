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
// Run time, for the seller's services and onboarding page; also alone, without the CDK: '<package>/runtime'.
export * from './runtime';
