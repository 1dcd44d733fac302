import { randomUUID } from 'node:crypto';
import { SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { MAX_EVENTS_PER_MESSAGE, UsageEvent, usageEventSchema } from '../core/usage/usage-event';
import { SQS_MAX_MESSAGE_BYTES, sendMessagesWithRetries } from './send-message-batches';
import { sqsMessageJson } from './sqs-message-json';

/**
 * The client the seller's services use to report usage: validates each event before it leaves,
 * gives it an eventId (so a resend is never counted twice), packs events into messages (up to
 * `eventsPerMessage` events and the queue's message size each), sends up to ten messages per
 * SendMessageBatch call (the same size in all), resends what SQS reports as failed, and returns
 * what could not be sent.
 *
 * ```ts
 * const usage = new UsageProducer({ queueUrl: process.env.USAGE_QUEUE_URL! });
 * const { failed } = await usage.send([{ licenseArn, dimension: 'requests', quantity: 3, timestamp: new Date().toISOString() }]);
 * ```
 */

export interface UsageProducerOptions {
  /** The stack's `UsageQueueUrl` output. */
  readonly queueUrl: string;
  /** @default a new SQSClient for the environment's region and credentials */
  readonly client?: SQSClient;
  /** Events per message (1..100); fewer when they would not fit in a message (`maxMessageBytes`). @default 25 */
  readonly eventsPerMessage?: number;
  /** Attempts per message before it is returned as failed (1..20). @default 4 */
  readonly maxAttempts?: number;
  /**
   * The queue's MaximumMessageSize attribute (1,024..1,048,576). The stack's usage queue takes
   * SQS's largest message; a queue created before SQS raised its default (August 2025) may still
   * hold 262,144 bytes, and there larger messages would come back `send-failed`.
   * @default 1,048,576
   */
  readonly maxMessageBytes?: number;
}

export interface UnsentUsage {
  readonly event: unknown;
  readonly reason: 'invalid-event' | 'send-failed';
  readonly message: string;
}

export interface SendUsageResult {
  /** Events accepted by SQS. */
  readonly sent: number;
  /** Events not sent: invalid ones (or too big for a message), and those SQS still refused after retries. */
  readonly failed: readonly UnsentUsage[];
}

/** What the producer puts in one message, and in one call, by default: 1 MiB less a margin for how SQS counts. */
export const MAX_MESSAGE_BYTES = packingLimitOf(SQS_MAX_MESSAGE_BYTES);

/** A queue's message size less a margin (16 KiB, or a sixteenth of a small limit). */
function packingLimitOf(maxMessageBytes: number): number {
  return maxMessageBytes - Math.min(16 * 1024, Math.floor(maxMessageBytes / 16));
}

/** A message: its events and its body (UTF-8 bytes counted once). */
interface Message {
  readonly events: UsageEvent[];
  readonly body: string;
  readonly bytes: number;
}

export class UsageProducer {
  private readonly client: SQSClient;
  private readonly eventsPerMessage: number;
  private readonly maxAttempts: number;
  /** Bytes in one message, and in one call. */
  private readonly packingLimit: number;

  constructor(private readonly options: UsageProducerOptions) {
    this.client = options.client ?? new SQSClient({});
    // Options often come from configuration (`Number(process.env.X)` is NaN when X is unset): a value
    // out of range is refused here, rather than usage reported sent that never left, or packed into
    // messages ingestion refuses.
    this.eventsPerMessage = integerOption('eventsPerMessage', options.eventsPerMessage ?? 25, 1, MAX_EVENTS_PER_MESSAGE);
    this.maxAttempts = integerOption('maxAttempts', options.maxAttempts ?? 4, 1, MAX_ATTEMPTS);
    const maxMessageBytes = options.maxMessageBytes ?? SQS_MAX_MESSAGE_BYTES;
    if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 1024 || maxMessageBytes > SQS_MAX_MESSAGE_BYTES) {
      throw new RangeError(`maxMessageBytes is the queue's MaximumMessageSize: an integer from 1024 to ${SQS_MAX_MESSAGE_BYTES}, not ${maxMessageBytes}`);
    }
    this.packingLimit = packingLimitOf(maxMessageBytes);
  }

  async send(events: readonly unknown[]): Promise<SendUsageResult> {
    const failed: UnsentUsage[] = [];
    const valid: { event: UsageEvent; json: string; bytes: number }[] = [];
    for (const event of events) {
      const parsed = usageEventSchema.safeParse(event);
      if (!parsed.success) {
        failed.push({ event, reason: 'invalid-event', message: z.prettifyError(parsed.error) });
        continue;
      }
      const withId = { ...parsed.data, eventId: parsed.data.eventId ?? randomUUID() };
      const json = sqsMessageJson(withId);
      const bytes = Buffer.byteLength(json);
      // Alone in a message it is `[event]`. SQS would refuse it on every attempt.
      if (bytes + 2 > this.packingLimit) {
        failed.push({
          event,
          reason: 'invalid-event',
          message: `The event is ${bytes} bytes as JSON: more than a usage message holds (${this.packingLimit - 2} bytes for one event)`,
        });
      } else valid.push({ event: withId, json, bytes });
    }

    const packed = messages(valid, this.eventsPerMessage, this.packingLimit);
    const unsent = await sendMessagesWithRetries(
      this.client,
      this.options.queueUrl,
      packed.map((message) => ({ entry: { MessageBody: message.body }, bytes: message.bytes })),
      { maxCallBytes: this.packingLimit, maxAttempts: this.maxAttempts },
    );
    let sent = 0;
    packed.forEach((message, i) => {
      const failure = unsent.get(i);
      if (failure === undefined) sent += message.events.length;
      else failed.push(...message.events.map((event) => ({ event, reason: 'send-failed' as const, message: `${failure.code}: ${failure.message}`.trim() })));
    });
    return { sent, failed };
  }
}

/** Attempts per message at most: beyond it a failing queue holds the caller up for minutes. */
const MAX_ATTEMPTS = 20;

function integerOption(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`${name} is an integer from ${min} to ${max}, not ${value}`);
  return value;
}

/** Packs events into messages, in order: at most `perMessage` events and `maxBytes` each. */
function messages(events: readonly { event: UsageEvent; json: string; bytes: number }[], perMessage: number, maxBytes: number): Message[] {
  const result: Message[] = [];
  let current: typeof events[number][] = [];
  // `[` and `]`, and a comma between two events.
  let bytes = 2;
  const close = () => {
    if (current.length === 0) return;
    result.push({ events: current.map((e) => e.event), body: `[${current.map((e) => e.json).join(',')}]`, bytes });
    current = [];
    bytes = 2;
  };
  for (const event of events) {
    const added = event.bytes + (current.length > 0 ? 1 : 0);
    if (current.length === perMessage || bytes + added > maxBytes) close();
    bytes += event.bytes + (current.length > 0 ? 1 : 0);
    current.push(event);
  }
  close();
  return result;
}

