import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { MarketplaceSaasIntegration } from '../../lib/marketplace-saas-integration';

/**
 * Review: CustomersTableProps.removalPolicy / MeteringLedgerTableProps.removalPolicy are documented
 * as "What happens to the table(s) when the stack is deleted". With RemovalPolicy.DESTROY the tables
 * get DeletionPolicy: Delete, but DeletionProtectionEnabled stays true (hard-coded), and DynamoDB
 * refuses to delete a deletion-protected table: `cdk destroy` ends in DELETE_FAILED instead of
 * deleting the tables the seller asked to be deleted.
 */

test('a table the seller asked to be destroyed with the stack is not deletion-protected', () => {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'DevStack');
  new MarketplaceSaasIntegration(stack, 'Marketplace', {
    products: [{ productCode: 'p', identityMode: 'license', dimensions: ['d'] }],
    customersTable: { removalPolicy: RemovalPolicy.DESTROY },
    meteringLedger: { removalPolicy: RemovalPolicy.DESTROY },
  });
  const tables = Template.fromStack(stack).findResources('AWS::DynamoDB::Table');
  const contradictory = Object.entries(tables)
    .filter(([, r]) => r.DeletionPolicy === 'Delete' && r.Properties.DeletionProtectionEnabled === true)
    .map(([id]) => id);
  expect(contradictory).toEqual([]);
});
