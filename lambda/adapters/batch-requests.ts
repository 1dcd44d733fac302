import { BatchGetCommand, BatchGetCommandOutput, BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { backoffDelayMs } from '../core/metering/pacing';

/** DynamoDB's batch operations, with what they leave unprocessed sent again after a pause. */

/** BatchWriteItem: puts per call. */
const PUTS_PER_CALL = 25;
/** BatchGetItem: keys per call. */
const KEYS_PER_CALL = 100;
const ATTEMPTS = 8;

/**
 * Puts items with BatchWriteItem, 25 a call, the calls at once; what DynamoDB leaves unprocessed
 * (throttling, or a transaction in flight on the item) is sent again after a pause.
 */
export async function batchWrite(client: DynamoDBDocumentClient, tableName: string, items: readonly Record<string, unknown>[]): Promise<void> {
  const calls: { PutRequest: { Item: Record<string, unknown> } }[][] = [];
  for (let i = 0; i < items.length; i += PUTS_PER_CALL) calls.push(items.slice(i, i + PUTS_PER_CALL).map((Item) => ({ PutRequest: { Item } })));
  await Promise.all(
    calls.map(async (call) => {
      let unprocessed = call;
      for (let attempt = 0; unprocessed.length > 0; attempt++) {
        if (attempt === ATTEMPTS) throw new Error(`BatchWriteItem on ${tableName} kept leaving ${unprocessed.length} items unprocessed`);
        if (attempt > 0) await new Promise((r) => setTimeout(r, backoffDelayMs(attempt - 1, { baseMs: 20, capMs: 1000 })));
        try {
          const result = await client.send(new BatchWriteCommand({ RequestItems: { [tableName]: unprocessed } }));
          unprocessed = (result.UnprocessedItems?.[tableName] ?? []) as typeof call;
        } catch (error) {
          // The whole call refused because an item is in a transaction: try it again.
          if ((error as Error).name !== 'TransactionConflictException') throw error;
        }
      }
    }),
  );
}

export interface BatchGetOptions {
  readonly ConsistentRead?: boolean;
  readonly ProjectionExpression?: string;
  readonly ExpressionAttributeNames?: Record<string, string>;
}

/** Gets items by key with BatchGetItem, 100 keys a call, one call after the other; missing items are absent. */
export async function batchGet(
  client: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly Record<string, unknown>[],
  options: BatchGetOptions = {},
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < keys.length; i += KEYS_PER_CALL) {
    let pending: Record<string, unknown>[] | undefined = keys.slice(i, i + KEYS_PER_CALL);
    for (let attempt = 0; pending && pending.length > 0; attempt++) {
      if (attempt === ATTEMPTS) throw new Error(`BatchGetItem on ${tableName} kept returning unprocessed keys`);
      if (attempt > 0) await new Promise((r) => setTimeout(r, backoffDelayMs(attempt - 1, { baseMs: 20, capMs: 1000 })));
      const result: BatchGetCommandOutput = await client.send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: pending, ...options } } }));
      items.push(...(result.Responses?.[tableName] ?? []));
      pending = result.UnprocessedKeys?.[tableName]?.Keys;
    }
  }
  return items;
}
