/**
 * The Customers table's keys, shared by the CDK construct that creates it, the adapter that reads
 * and writes it, and the local runner that creates it in DynamoDB Local.
 */
export const CustomersTableSchema = {
  partitionKey: 'customerKey',
  /** Global secondary index: every customer (licence) of one AWS account. */
  accountIndex: { name: 'byCustomerAWSAccountId', partitionKey: 'customerAWSAccountId', sortKey: 'customerKey' },
} as const;
