/**
 * The Customers table's keys, shared by the CDK construct that creates it, the adapter that reads
 * and writes it, and the local runner that creates it in DynamoDB Local.
 */
export const CustomersTableSchema = {
  partitionKey: 'customerKey',
  /** Global secondary index: every customer (licence) of one AWS account. */
  accountIndex: { name: 'byCustomerAWSAccountId', partitionKey: 'customerAWSAccountId', sortKey: 'customerKey' },
  /** Epoch seconds after which DynamoDB deletes an item; only set on kept agreement events, never on customers. */
  ttlAttribute: 'expiresAt',
  /** Agreement events no licence event ever matched (another seller's product, say) are dropped after this. */
  keptAgreementLifetimeSeconds: 30 * 24 * 3600,
} as const;
