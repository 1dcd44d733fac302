import { Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { StackConfig } from './config';
import { MarketplaceSaasIntegration } from './marketplace-saas-integration';

export interface MarketplaceSaasStackProps extends StackProps {
  /** The products this stack serves, and the seller's settings. */
  readonly config: StackConfig;
}

/**
 * The deployable stack: configuration in, constructs wired. Registration, the usage pipeline,
 * metering and the subscription lifecycle are added here as they are built.
 */
export class MarketplaceSaasStack extends Stack {
  /** The validated configuration the stack was built from. */
  public readonly config: StackConfig;
  public readonly integration: MarketplaceSaasIntegration;

  constructor(scope: Construct, id: string, props: MarketplaceSaasStackProps) {
    super(scope, id, props);
    this.config = props.config;
    this.templateOptions.description = `AWS Marketplace SaaS integration for ${props.config.products
      .map((p) => p.productCode)
      .join(', ')}`;
    this.integration = new MarketplaceSaasIntegration(this, 'Marketplace', {
      products: props.config.products,
      adminEmail: props.config.adminEmail,
    });
  }
}
