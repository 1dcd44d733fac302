/**
 * The Metering ledger table's keys, shared by the CDK construct, the adapter and the local runner.
 * It holds the hour buckets (`bucket#…`, the billing record and its audit trail) and the marks of
 * hours given zero records (`zero-fill#…`). The usage events themselves are in the Usage journal
 * (usage-journal-schema.ts).
 */
export const MeteringTableSchema = {
  partitionKey: 'pk',
  /** Epoch seconds after which DynamoDB deletes an item that sets it (buckets never do). */
  ttlAttribute: 'expiresAt',
  /**
   * Sparse index of the buckets that still need work: `meteringState` is `sealed#N` (N a shard, so
   * one partition does not hold them all) and is removed once a bucket is metered or failed.
   * Sorted by hour.
   */
  workIndex: { name: 'byMeteringState', partitionKey: 'meteringState', sortKey: 'hourStart' },
  workShards: 8,
} as const;
