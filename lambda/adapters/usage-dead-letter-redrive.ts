import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { KeepWhy, ORIGINAL_MESSAGE_ID_ATTRIBUTE, planRedrive, RedrivePlan, RedriveSelection } from '../core/usage/dead-letter-redrive';
import { OutgoingMessage, SQS_MAX_MESSAGE_BYTES, sendMessagesWithRetries } from './send-message-batches';
import { UsageProducer } from './usage-producer';

/**
 * Sends the usage dead-letter queue's messages back to the usage queue once their cause is mended,
 * without counting anything twice (the rules are in core/usage/dead-letter-redrive.ts): original
 * usage messages as they were, as one more delivery of their first message id; letters' events with
 * an eventId. What is not sent again stays in the dead-letter queue, visible again when the run ends.
 * A message is deleted from the dead-letter queue only after what it holds was accepted by the usage
 * queue: a run cut short sends some of it again next time, and that counts once.
 *
 * ```ts
 * const report = await new UsageDeadLetterRedrive({ deadLetterQueueUrl, usageQueueUrl }).run();
 * ```
 */

export interface UsageDeadLetterRedriveOptions extends RedriveSelection {
  /** The stack's `UsageDeadLetterQueueUrl` output. */
  readonly deadLetterQueueUrl: string;
  /** The stack's `UsageQueueUrl` output. */
  readonly usageQueueUrl: string;
  /** @default a new SQSClient for the environment's region and credentials */
  readonly client?: SQSClient;
  /** Only count what would be done: nothing is sent or deleted. @default false */
  readonly dryRun?: boolean;
  /** Messages to take from the dead-letter queue in this run, at most. @default 100,000 */
  readonly maxMessages?: number;
  /**
   * How long a received message stays hidden from other receivers while the run handles it; those
   * left in the queue are made visible again at the end. Longer than the run, or a message may be
   * received twice (it is then counted once, and sent again at most once more). @default 900
   */
  readonly visibilityTimeoutSeconds?: number;
  /** Long-poll wait per receive: an empty answer ends the run. @default 2 */
  readonly waitSeconds?: number;
}

export interface UsageDeadLetterRedriveReport {
  /** Messages taken from the dead-letter queue. */
  readonly received: number;
  /** Original usage messages sent again (dry run: that would be). */
  readonly resentMessages: number;
  /** Letters whose event was sent again (dry run: that would be), by reason. */
  readonly resentEvents: Readonly<Record<string, number>>;
  /** Letters for an event another letter of this run already sent again: deleted, not sent. */
  readonly duplicateLetters: number;
  /** Messages left in the dead-letter queue, by why (KeepWhy) and, for letters, reason: `reason-not-selected:timestamp-out-of-window`. */
  readonly kept: Readonly<Record<string, number>>;
  /** Messages whose sending or deleting failed: left in (or back in) the queue, with the error. */
  readonly failed: readonly { readonly messageId: string; readonly error: string }[];
}

const MAX_ATTEMPTS = 4;

export class UsageDeadLetterRedrive {
  private readonly client: SQSClient;
  private readonly producer: UsageProducer;

  constructor(private readonly options: UsageDeadLetterRedriveOptions) {
    this.client = options.client ?? new SQSClient({});
    this.producer = new UsageProducer({ queueUrl: options.usageQueueUrl, client: this.client });
  }

  async run(): Promise<UsageDeadLetterRedriveReport> {
    const maxMessages = this.options.maxMessages ?? 100_000;
    const report = { received: 0, resentMessages: 0, resentEvents: {} as Record<string, number>, duplicateLetters: 0, kept: {} as Record<string, number>, failed: [] as { messageId: string; error: string }[] };
    /** Messages this run has handled, by message id: one received again (its visibility ran out) is not handled twice. */
    const handled = new Map<string, 'sent' | 'kept'>();
    /** Receipt handles of the messages left in the queue, to make them visible again at the end. */
    const keptHandles = new Map<string, string>();
    /** The events sent again in this run (message id and position): a second letter for one is a duplicate. */
    const sentLetters = new Set<string>();
    try {
      while (report.received < maxMessages) {
        const page = await this.receive(Math.min(10, maxMessages - report.received));
        if (page.length === 0) break;
        const toDelete: Message[] = [];
        const originals: { message: Message; plan: Extract<RedrivePlan, { action: 'resend-message' }> }[] = [];
        const letters: { message: Message; plan: Extract<RedrivePlan, { action: 'resend-event' }> }[] = [];
        for (const message of page) {
          const id = message.MessageId!;
          const before = handled.get(id);
          if (before === 'kept' || (before === 'sent' && this.options.dryRun)) keptHandles.set(id, message.ReceiptHandle!);
          // Sent, but its delete failed or came late: delete it now.
          else if (before === 'sent') toDelete.push(message);
          if (before !== undefined) continue;
          report.received++;
          const plan = planRedrive(
            {
              messageId: id,
              body: message.Body ?? '',
              reason: message.MessageAttributes?.reason?.StringValue,
              originalMessageId: message.MessageAttributes?.[ORIGINAL_MESSAGE_ID_ATTRIBUTE]?.StringValue,
            },
            this.options,
          );
          if (plan.action === 'keep') {
            count(report.kept, keptKey(plan.why, plan.reason));
            handled.set(id, 'kept');
            keptHandles.set(id, message.ReceiptHandle!);
          } else if (plan.action === 'resend-message') originals.push({ message, plan });
          else letters.push({ message, plan });
        }
        const keep = (message: Message, error: string) => {
          report.failed.push({ messageId: message.MessageId!, error });
          handled.set(message.MessageId!, 'kept');
          keptHandles.set(message.MessageId!, message.ReceiptHandle!);
        };
        const sent = (message: Message) => {
          handled.set(message.MessageId!, 'sent');
          // A dry run deletes nothing: what it would send is made visible again too.
          if (this.options.dryRun) keptHandles.set(message.MessageId!, message.ReceiptHandle!);
          else toDelete.push(message);
        };

        const unsentOriginals = this.options.dryRun ? new Map<number, string>() : await this.sendOriginals(originals.map((o) => o.plan));
        originals.forEach(({ message }, i) => {
          const error = unsentOriginals.get(i);
          if (error !== undefined) return keep(message, error);
          report.resentMessages++;
          sent(message);
        });

        // One send per event: a further letter for it (this page's, or one sent on an earlier page)
        // is a duplicate, once the first one is sent.
        const firsts = new Map<string, (typeof letters)[number]>();
        const seconds: (typeof letters)[number][] = [];
        for (const letter of letters) {
          if (firsts.has(letter.plan.letterKey) || sentLetters.has(letter.plan.letterKey)) seconds.push(letter);
          else firsts.set(letter.plan.letterKey, letter);
        }
        const toSend = [...firsts.values()];
        const unsentEvents = this.options.dryRun ? new Map<number, string>() : await this.sendEvents(toSend.map((l) => l.plan.event));
        toSend.forEach(({ message, plan }, i) => {
          const error = unsentEvents.get(i);
          if (error !== undefined) return keep(message, error);
          sentLetters.add(plan.letterKey);
          count(report.resentEvents, plan.reason);
          sent(message);
        });
        for (const { message, plan } of seconds) {
          if (!sentLetters.has(plan.letterKey)) {
            keep(message, 'another letter for the same event was not sent');
            continue;
          }
          report.duplicateLetters++;
          sent(message);
        }

        for (const { message, error } of await this.delete(toDelete)) report.failed.push({ messageId: message.MessageId!, error: `not deleted: ${error}` });
      }
    } finally {
      // Left in the queue: visible again now, not when the visibility timeout runs out.
      await this.release([...keptHandles.values()]);
    }
    return report;
  }

  private async receive(max: number): Promise<Message[]> {
    const { Messages = [] } = await this.client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.options.deadLetterQueueUrl,
        MaxNumberOfMessages: max,
        WaitTimeSeconds: this.options.waitSeconds ?? 2,
        VisibilityTimeout: this.options.visibilityTimeoutSeconds ?? 900,
        MessageAttributeNames: ['All'],
      }),
    );
    return Messages;
  }

  /** Original usage messages, with the attribute naming their first message id. Returns the unsent, by index. */
  private sendOriginals(plans: readonly Extract<RedrivePlan, { action: 'resend-message' }>[]): Promise<Map<number, string>> {
    const messages = plans.map(
      (plan): OutgoingMessage => ({
        entry: { MessageBody: plan.body, MessageAttributes: { [ORIGINAL_MESSAGE_ID_ATTRIBUTE]: { DataType: 'String', StringValue: plan.originalMessageId } } },
        bytes: Buffer.byteLength(plan.body) + ORIGINAL_MESSAGE_ID_ATTRIBUTE.length + 'String'.length + plan.originalMessageId.length,
      }),
    );
    return sendMessagesWithRetries(this.client, this.options.usageQueueUrl, messages, { maxCallBytes: SQS_MAX_MESSAGE_BYTES, maxAttempts: MAX_ATTEMPTS });
  }

  /** Letters' events, with the producer client (each has its eventId already). Returns the unsent, by index. */
  private async sendEvents(events: readonly Readonly<Record<string, unknown>>[]): Promise<Map<number, string>> {
    if (events.length === 0) return new Map();
    const { failed } = await this.producer.send(events);
    // The producer returns a failed event as it was given, or with its eventId (always set here).
    const errorByEventId = new Map(failed.map((f) => [(f.event as { eventId?: unknown }).eventId, `${f.reason}: ${f.message}`]));
    const unsent = new Map<number, string>();
    events.forEach((event, i) => {
      const error = errorByEventId.get(event.eventId);
      if (error !== undefined) unsent.set(i, error);
    });
    return unsent;
  }

  /** Deletes messages from the dead-letter queue; returns those that were not. */
  private async delete(messages: readonly Message[]): Promise<{ message: Message; error: string }[]> {
    const failed: { message: Message; error: string }[] = [];
    for (let i = 0; i < messages.length; i += 10) {
      const batch = messages.slice(i, i + 10);
      try {
        const { Failed = [] } = await this.client.send(
          new DeleteMessageBatchCommand({ QueueUrl: this.options.deadLetterQueueUrl, Entries: batch.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle! })) }),
        );
        for (const f of Failed) failed.push({ message: batch[Number(f.Id)], error: `${f.Code}: ${f.Message ?? ''}` });
      } catch (error) {
        for (const message of batch) failed.push({ message, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
      }
    }
    return failed;
  }

  /** Makes messages visible again (best effort: otherwise they reappear when their visibility runs out). */
  private async release(receiptHandles: readonly string[]): Promise<void> {
    for (let i = 0; i < receiptHandles.length; i += 10) {
      const batch = receiptHandles.slice(i, i + 10);
      await this.client
        .send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.options.deadLetterQueueUrl,
            Entries: batch.map((handle, j) => ({ Id: String(j), ReceiptHandle: handle, VisibilityTimeout: 0 })),
          }),
        )
        .catch(() => undefined);
    }
  }
}

function keptKey(why: KeepWhy, reason: string | undefined): string {
  return reason === undefined ? why : `${why}:${reason}`;
}

function count(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}
