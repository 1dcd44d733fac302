import { SendMessageBatchCommand, SendMessageBatchRequestEntry, SQSClient } from '@aws-sdk/client-sqs';
import { backoffDelayMs } from '../core/metering/pacing';

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

/** A message to send: its entry (the Id is given here) and its size as SQS counts it (body and attributes). */
export interface OutgoingMessage {
  readonly entry: Omit<SendMessageBatchRequestEntry, 'Id'>;
  readonly bytes: number;
}

/** Why a message was not sent: SQS's code for it (or the error's name when the call failed) and message. */
export interface SendFailure {
  readonly code: string;
  readonly message: string;
  /** SQS refused it as the sender's fault: no resend would get it through. */
  readonly senderFault: boolean;
}

/** A SendFailure as one line: `Code (sender fault): message`. */
export function sendFailureText(failure: SendFailure): string {
  return `${failure.code}${failure.senderFault ? ' (sender fault)' : ''}: ${failure.message}`;
}

/**
 * Sends messages to a queue in SendMessageBatch calls (sendMessageBatches), resending what SQS
 * reports as failed, or a call that failed as a whole, with a short backoff; never a message already
 * accepted. Returns the messages that were not sent (by index), each with its last failure: those SQS
 * refused as the sender's fault, and those still failing after `maxAttempts`.
 */
export async function sendMessagesWithRetries(
  client: SQSClient,
  queueUrl: string,
  messages: readonly OutgoingMessage[],
  options: { readonly maxCallBytes: number; readonly maxAttempts: number },
): Promise<Map<number, SendFailure>> {
  type Entry = { readonly entry: SendMessageBatchRequestEntry; readonly bytes: number; readonly index: number };
  const errors = new Map<number, SendFailure>();
  const refused: Entry[] = [];

  /** One SendMessageBatch: the entries to send again; those refused for good go to `refused`. */
  const sendCall = async (call: readonly Entry[]): Promise<Entry[]> => {
    try {
      const result = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: call.map((e) => e.entry) }));
      const failures = new Map((result.Failed ?? []).map((f) => [f.Id, f]));
      const again: Entry[] = [];
      for (const e of call) {
        const failure = failures.get(e.entry.Id);
        if (!failure) continue;
        errors.set(e.index, { code: failure.Code ?? 'Failed', message: failure.Message ?? '', senderFault: failure.SenderFault === true });
        if (failure.SenderFault) refused.push(e);
        else again.push(e);
      }
      return again;
    } catch (error) {
      const failure = error instanceof Error ? { code: error.name, message: error.message, senderFault: false } : { code: 'Error', message: String(error), senderFault: false };
      for (const e of call) errors.set(e.index, failure);
      if (error instanceof Error && error.name === 'BatchRequestTooLong') {
        if (call.length === 1) {
          refused.push(call[0]);
          return [];
        }
        // Packing keeps calls under the limit; should SQS count otherwise, the same call would be
        // refused again: send its messages one to a call instead.
        const again: Entry[] = [];
        for (const e of call) again.push(...(await sendCall([e])));
        return again;
      }
      return [...call];
    }
  };

  let pending: Entry[] = messages.map((m, index) => ({ entry: { ...m.entry, Id: String(index) }, bytes: m.bytes, index }));
  for (let attempt = 0; attempt < options.maxAttempts && pending.length > 0; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, backoffDelayMs(attempt - 1)));
    const again: Entry[] = [];
    for (const call of sendMessageBatches(pending, options.maxCallBytes)) again.push(...(await sendCall(call)));
    pending = again;
  }
  const unsent = new Map<number, SendFailure>();
  for (const e of [...refused, ...pending]) unsent.set(e.index, errors.get(e.index) ?? { code: 'NotSent', message: 'not sent', senderFault: false });
  return unsent;
}
