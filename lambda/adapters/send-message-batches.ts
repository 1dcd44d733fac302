/**
 * The usage and dead-letter queues' maximum message size: SQS's default (the stack does not set
 * one), 1 MiB, counting the body and the attributes. SQS allows as much for the sum of a
 * SendMessageBatch call's messages.
 */
export const SQS_MAX_MESSAGE_BYTES = 1_048_576;

/** SendMessageBatch: entries per call. */
const MAX_ENTRIES_PER_CALL = 10;

/**
 * Groups SQS messages into SendMessageBatch calls: at most ten each, and at most `maxCallBytes` of
 * their sizes in all (SQS limits a call's total as it limits one message).
 */
export function sendMessageBatches<T extends { readonly bytes: number }>(items: readonly T[], maxCallBytes: number): T[][] {
  const result: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    if (current.length > 0 && (current.length === MAX_ENTRIES_PER_CALL || bytes + item.bytes > maxCallBytes)) {
      result.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += item.bytes;
  }
  if (current.length > 0) result.push(current);
  return result;
}
