/**
 * The Usage journal table's keys, shared by the CDK construct, the adapter and the local runner.
 * Items, by partition key:
 * - `entry#<hour>#<shard>` / entry id: a message's events that count in that hour (usage-journal.ts);
 *   a late message's entry also leaves an empty placeholder under its own hour.
 * - `seal#<hour>` / shard: the hour is sealed; ingestion's write checks its shard's seal.
 * - `flush#<hour>` / `<customer>#<part>`: a customer's hour metered early, with the entries counted.
 * - `folded` / `through`: the last hour folded.
 * Everything expires through TTL once no redelivery, late event or audit can need it.
 */
export const UsageJournalSchema = {
  partitionKey: 'pk',
  sortKey: 'sk',
  ttlAttribute: 'expiresAt',
  /** Partitions per hour: each takes a share of ingestion's writes and has its own seal. */
  shards: 8,
  /**
   * How long journal items are kept: longer than any redelivery, late event or billing window (a
   * late event's fold reads the entries of the hours before it, to drop repeated eventIds).
   */
  lifetimeSeconds: 7 * 24 * 3600,
} as const;
