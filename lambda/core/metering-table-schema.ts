/**
 * The Metering ledger table's keys, shared by the CDK construct, the adapter and the local runner.
 * Hour buckets (`bucket#…`) and de-duplication markers (`event#…`, expiring through TTL) share it,
 * so a bucket update and its marker are written in one transaction.
 */
export const MeteringTableSchema = {
  partitionKey: 'pk',
  /** Epoch seconds after which DynamoDB deletes a de-duplication marker. */
  ttlAttribute: 'expiresAt',
  /**
   * Sparse index of the buckets that still need work: `meteringState` is `open#N` or `sealed#N`
   * (N a shard, so one hot partition does not cap ingestion) and is removed once a bucket is metered
   * or failed. Sorted by hour.
   */
  workIndex: { name: 'byMeteringState', partitionKey: 'meteringState', sortKey: 'hourStart' },
  workShards: 8,
  /** How long a de-duplication marker is kept: longer than any redelivery or billing window. */
  markerLifetimeSeconds: 7 * 24 * 3600,
} as const;
