import { CreateTableCommand, DynamoDBClient, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import { CustomersTableSchema } from '../lambda/core/customers-table-schema';
import { MeteringTableSchema } from '../lambda/core/metering-table-schema';
import { UsageJournalSchema } from '../lambda/core/usage-journal-schema';

/**
 * The stack's tables in DynamoDB Local, from the same key schemas the CDK constructs use
 * (lib/customers-table.ts, lib/metering-ledger-table.ts).
 */

interface TableShape {
  readonly partitionKey: string;
  readonly sortKey?: string;
  readonly index?: { readonly name: string; readonly partitionKey: string; readonly sortKey: string };
}

async function createTable(client: DynamoDBClient, tableName: string, shape: TableShape): Promise<void> {
  const { partitionKey, sortKey, index } = shape;
  const attributes = [...new Set([partitionKey, ...(sortKey ? [sortKey] : []), ...(index ? [index.partitionKey, index.sortKey] : [])])];
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: attributes.map((name) => ({ AttributeName: name, AttributeType: 'S' })),
        KeySchema: [{ AttributeName: partitionKey, KeyType: 'HASH' }, ...(sortKey ? [{ AttributeName: sortKey, KeyType: 'RANGE' as const }] : [])],
        GlobalSecondaryIndexes: index && [
          {
            IndexName: index.name,
            KeySchema: [
              { AttributeName: index.partitionKey, KeyType: 'HASH' },
              { AttributeName: index.sortKey, KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      }),
    );
  } catch (error) {
    // Kept data from an earlier run (PERSIST_DATA=true): the table is already there.
    if (!(error instanceof ResourceInUseException)) throw error;
  }
}

export function createCustomersTable(client: DynamoDBClient, tableName: string): Promise<void> {
  return createTable(client, tableName, {
    partitionKey: CustomersTableSchema.partitionKey,
    index: CustomersTableSchema.accountIndex,
  });
}

export function createMeteringTable(client: DynamoDBClient, tableName: string): Promise<void> {
  return createTable(client, tableName, {
    partitionKey: MeteringTableSchema.partitionKey,
    index: MeteringTableSchema.workIndex,
  });
}

export function createUsageJournalTable(client: DynamoDBClient, tableName: string): Promise<void> {
  return createTable(client, tableName, { partitionKey: UsageJournalSchema.partitionKey, sortKey: UsageJournalSchema.sortKey });
}
