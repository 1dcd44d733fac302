/**
 * The package's public surface: the constructs to embed in a seller's CDK app, and the helpers the
 * seller's own application uses at run time.
 */
export { MarketplaceSaasIntegration, type MarketplaceSaasIntegrationProps } from './marketplace-saas-integration';
export { MarketplaceSaasStack, type MarketplaceSaasStackProps } from './marketplace-saas-stack';
export { CustomersTable, type CustomersTableProps } from './customers-table';
export { RegistrationEndpoint, type RegistrationEndpointProps } from './registration';
export { parseStackConfig, ConfigError, type StackConfig, type ProductConfig } from './config';
// Run time, for the seller's onboarding page: check the `reference` query parameter it receives.
export {
  verifyRegistrationReference,
  type RegistrationReference,
  type ReferenceCheck,
} from '../lambda/core/registration/registration-reference';
