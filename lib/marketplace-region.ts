import { Aws, CfnRule, Fn, Stack, Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';

/** AWS Marketplace metering, entitlement and lifecycle events live in us-east-1. */
export const MARKETPLACE_REGION = 'us-east-1';

/**
 * AWS Marketplace publishes its agreement and licence events on the default event bus of us-east-1
 * only: a lifecycle rule in another region's stack would never fire, and customers' unsubscribes and
 * final usage would go unnoticed, silently. So the stack's region must be us-east-1, unless the
 * seller forwards those events to that region's default bus (`forwarded`). A region known at
 * synthesis is checked at once (an Error, like any bad prop); an environment-agnostic stack gets a
 * template rule that makes CloudFormation refuse the deployment in another region.
 */
export function requireMarketplaceRegion(scope: Construct, forwarded: boolean): void {
  if (forwarded) return;
  const { region } = Stack.of(scope);
  const refusal = `AWS Marketplace sends its EventBridge events in ${MARKETPLACE_REGION} only: deploy this stack there, or forward them to this region's default bus and set marketplaceEventsForwarded`;
  if (!Token.isUnresolved(region)) {
    if (region !== MARKETPLACE_REGION) throw new Error(`The stack is in ${region}. ${refusal}`);
    return;
  }
  new CfnRule(scope, 'MarketplaceRegion', {
    assertions: [{ assert: Fn.conditionEquals(Aws.REGION, MARKETPLACE_REGION), assertDescription: refusal }],
  });
}
