import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { MarketplaceSaasIntegration } from '../../lib/marketplace-saas-integration';

/**
 * The tables' removal policy: kept and deletion-protected by default; a stack that asks for DESTROY
 * (a test stack) gets tables `cdk destroy` can delete (DynamoDB refuses to delete a protected table,
 * which would leave the stack in DELETE_FAILED).
 */

function tables(removalPolicy?: RemovalPolicy) {
  const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'DevStack');
  new MarketplaceSaasIntegration(stack, 'Marketplace', {
    products: [{ productCode: 'p', identityMode: 'license', dimensions: ['d'] }],
    ...(removalPolicy ? { customersTable: { removalPolicy }, meteringLedger: { removalPolicy } } : {}),
  });
  return Object.values(Template.fromStack(stack).findResources('AWS::DynamoDB::Table')).map((r) => [r.DeletionPolicy, r.Properties.DeletionProtectionEnabled]);
}

test('by default all three tables are kept and deletion-protected', () => {
  expect(tables()).toEqual([
    ['Retain', true],
    ['Retain', true],
    ['Retain', true],
  ]);
});

test('DESTROY asked for: deleted with the stack, so not deletion-protected', () => {
  expect(tables(RemovalPolicy.DESTROY)).toEqual([
    ['Delete', false],
    ['Delete', false],
    ['Delete', false],
  ]);
});
