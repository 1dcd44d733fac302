import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseStackConfig } from './config';
import { MARKETPLACE_REGION } from './marketplace-region';
import { MarketplaceSaasStack } from './marketplace-saas-stack';

export { MARKETPLACE_REGION };

/**
 * Builds the deployable app from CDK context: `products` (JSON array of product settings),
 * `adminEmail` (optional) and `stackName` (default `MarketplaceSaas`). cdk-nag's AwsSolutions pack
 * checks every construct; an unacknowledged finding fails synthesis.
 */
export function buildApp(app: App): MarketplaceSaasStack {
  const config = parseStackConfig({
    products: app.node.tryGetContext('products'),
    adminEmail: app.node.tryGetContext('adminEmail'),
  });
  const stack = new MarketplaceSaasStack(app, app.node.tryGetContext('stackName') ?? 'MarketplaceSaas', {
    config,
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: MARKETPLACE_REGION },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
