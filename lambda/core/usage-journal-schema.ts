/**
 * The Usage journal table's keys, shared by the CDK construct, the adapter and the local runner.
 * Items, by partition key:
 * - `entry#<hour>#<shard>` / entry id: a message's events that count in that hour (usage-journal.ts);
 *   a late message's entry also leaves an empty placeholder under its own hour.
 * - `seal#<hour>` / n: the hour is sealed (one item per seal shard, all written before the hour is
 *   read); each ingestion transaction checks one of them, picked at random.
 * - `flush#<hour>` / `<customer>#<part>`: a customer's hour metered early, with the entries counted.
 * - `refused#<message id>` / its positions: the events of a message a delivery refused (and
 *   dead-lettered), so a redelivery refuses them again rather than counting them.
 * - `folded` / `through`: the last hour folded.
 * - `final-usage` / `<due time>#<customer>`: a customer whose access ended, its final usage to be
 *   sealed and metered by the first metering run after the due time.
 * Everything expires through TTL once no redelivery, late event or audit can need it.
 */
export const UsageJournalSchema = {
  partitionKey: 'pk',
  sortKey: 'sk',
  ttlAttribute: 'expiresAt',
  /** Entry partitions per hour: each takes a share of ingestion's writes. */
  shards: 8,
  /**
   * Seal items per hour. DynamoDB cancels concurrent transactions that touch one item, even to
   * check it: each ingestion transaction checks one seal picked at random, so concurrent ingestion
   * rarely meets on one. Sealing writes them all.
   */
  sealShards: 64,
  /**
   * How long journal items are kept: longer than any redelivery, late event or billing window (a
   * late event's fold reads the entries of the hours before it, to drop repeated eventIds). SQS
   * keeps a usage message up to 14 days: a message redelivered on its last day must still find what
   * its first delivery counted, or its events would be judged again (too old by then, and
   * dead-lettered although billed).
   */
  lifetimeSeconds: 15 * 24 * 3600,
} as const;
