import { randomUUID } from 'node:crypto';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { MAX_EVENTS_PER_MESSAGE, UsageEvent, usageEventSchema } from '../core/usage/usage-event';
import { backoffDelayMs } from '../core/metering/pacing';

/**
 * The client the seller's services use to report usage: validates each event before it leaves,
 * gives it an eventId (so a resend is never counted twice), packs events into messages, sends ten
 * messages per SendMessageBatch call, resends what SQS reports as failed, and returns what could not
 * be sent.
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
  /** Events per message (1..100). @default 25 */
  readonly eventsPerMessage?: number;
  /** Attempts per message before it is returned as failed. @default 4 */
  readonly maxAttempts?: number;
}

export interface UnsentUsage {
  readonly event: unknown;
  readonly reason: 'invalid-event' | 'send-failed';
  readonly message: string;
}

export interface SendUsageResult {
  /** Events accepted by SQS. */
  readonly sent: number;
  /** Events not sent: invalid ones, and those SQS still refused after retries. */
  readonly failed: readonly UnsentUsage[];
}

/** SQS accepts at most 256 KiB for a whole SendMessageBatch call. */
const MAX_BATCH_BYTES = 256 * 1024 - 1024;

export class UsageProducer {
  private readonly client: SQSClient;
  private readonly eventsPerMessage: number;
  private readonly maxAttempts: number;

  constructor(private readonly options: UsageProducerOptions) {
    this.client = options.client ?? new SQSClient({});
    this.eventsPerMessage = Math.min(Math.max(options.eventsPerMessage ?? 25, 1), MAX_EVENTS_PER_MESSAGE);
    this.maxAttempts = options.maxAttempts ?? 4;
  }

  async send(events: readonly unknown[]): Promise<SendUsageResult> {
    const failed: UnsentUsage[] = [];
    const valid: UsageEvent[] = [];
    for (const event of events) {
      const parsed = usageEventSchema.safeParse(event);
      if (parsed.success) valid.push({ ...parsed.data, eventId: parsed.data.eventId ?? randomUUID() });
      else failed.push({ event, reason: 'invalid-event', message: z.prettifyError(parsed.error) });
    }
    const messages: UsageEvent[][] = [];
    for (let i = 0; i < valid.length; i += this.eventsPerMessage) messages.push(valid.slice(i, i + this.eventsPerMessage));

    let sent = 0;
    for (const batch of batches(messages)) {
      const unsent = await this.sendBatch(batch);
      for (const message of batch) {
        if (unsent.has(message)) failed.push(...message.map((event) => ({ event, reason: 'send-failed' as const, message: unsent.get(message)! })));
        else sent += message.length;
      }
    }
    return { sent, failed };
  }

  /** One SendMessageBatch, resending failed entries; returns the messages that never got through. */
  private async sendBatch(batch: UsageEvent[][]): Promise<Map<UsageEvent[], string>> {
    let pending = batch.map((events, i) => ({ id: String(i), events }));
    const lastError = new Map<UsageEvent[], string>();
    for (let attempt = 0; attempt < this.maxAttempts && pending.length > 0; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, backoffDelayMs(attempt - 1)));
      try {
        const result = await this.client.send(
          new SendMessageBatchCommand({
            QueueUrl: this.options.queueUrl,
            Entries: pending.map((p) => ({ Id: p.id, MessageBody: JSON.stringify(p.events) })),
          }),
        );
        const failures = new Map((result.Failed ?? []).map((f) => [f.Id, f]));
        for (const p of pending) {
          const failure = failures.get(p.id);
          if (failure) lastError.set(p.events, `${failure.Code}: ${failure.Message ?? ''}`.trim());
          else lastError.delete(p.events);
        }
        // A sender fault (a malformed entry) will not get better by resending.
        pending = pending.filter((p) => failures.has(p.id) && !failures.get(p.id)!.SenderFault);
      } catch (error) {
        for (const p of pending) lastError.set(p.events, error instanceof Error ? `${error.name}: ${error.message}` : String(error));
      }
    }
    return lastError;
  }
}

/** Groups messages ten to a batch, under SQS's size limit for a whole batch. */
function batches(messages: UsageEvent[][]): UsageEvent[][][] {
  const result: UsageEvent[][][] = [];
  let current: UsageEvent[][] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = Buffer.byteLength(JSON.stringify(message));
    if (current.length > 0 && (current.length === 10 || bytes + size > MAX_BATCH_BYTES)) {
      result.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) result.push(current);
  return result;
}
