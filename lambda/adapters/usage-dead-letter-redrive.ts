import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { KeepWhy, ORIGINAL_MESSAGE_ID_ATTRIBUTE, planRedrive, RedrivePlan, RedriveSelection } from '../core/usage/dead-letter-redrive';
import { OutgoingMessage, SQS_MAX_MESSAGE_BYTES, sendFailureText, sendMessagesWithRetries } from './send-message-batches';
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
    const run = new RedriveRun(this.options.dryRun === true);
    try {
      while (run.report.received < maxMessages) {
        const page = await this.receive(Math.min(10, maxMessages - run.report.received));
        if (page.length === 0) break;
        const { originals, letters } = this.sortPage(page, run);
        await this.resendOriginals(originals, run);
        await this.resendLetters(letters, run);
        for (const { message, error } of await this.delete(run.takeDeletes())) run.report.failed.push({ messageId: message.MessageId!, error: `not deleted: ${error}` });
      }
    } finally {
      // Left in the queue: visible again now, not when the visibility timeout runs out.
      await this.release(run.keptReceiptHandles());
    }
    return run.report;
  }

  /** A page's messages by what to do with them; those kept, or handled before in this run, are settled here. */
  private sortPage(page: readonly Message[], run: RedriveRun): { originals: Planned<'resend-message'>[]; letters: Planned<'resend-event'>[] } {
    const originals: Planned<'resend-message'>[] = [];
    const letters: Planned<'resend-event'>[] = [];
    for (const message of page) {
      // Received again (its visibility ran out): settled as before, with its new receipt handle.
      if (run.settleAgain(message)) continue;
      run.report.received++;
      const plan = planRedrive(
        {
          messageId: message.MessageId!,
          body: message.Body ?? '',
          reason: message.MessageAttributes?.reason?.StringValue,
          originalMessageId: message.MessageAttributes?.[ORIGINAL_MESSAGE_ID_ATTRIBUTE]?.StringValue,
        },
        this.options,
      );
      if (plan.action === 'keep') run.keep(message, keptKey(plan.why, plan.reason));
      else if (plan.action === 'resend-message') originals.push({ message, plan });
      else letters.push({ message, plan });
    }
    return { originals, letters };
  }

  private async resendOriginals(originals: readonly Planned<'resend-message'>[], run: RedriveRun): Promise<void> {
    const unsent = run.dryRun ? new Map<number, string>() : await this.sendOriginals(originals.map((o) => o.plan));
    originals.forEach(({ message }, i) => {
      const error = unsent.get(i);
      if (error !== undefined) return run.fail(message, error);
      run.report.resentMessages++;
      run.sent(message);
    });
  }

  /**
   * One send per event: a further letter for it (this page's, or one sent on an earlier page) is a
   * duplicate, deleted once the first one is sent.
   */
  private async resendLetters(letters: readonly Planned<'resend-event'>[], run: RedriveRun): Promise<void> {
    const firsts = new Map<string, Planned<'resend-event'>>();
    const further: Planned<'resend-event'>[] = [];
    for (const letter of letters) {
      if (firsts.has(letter.plan.letterKey) || run.sentLetters.has(letter.plan.letterKey)) further.push(letter);
      else firsts.set(letter.plan.letterKey, letter);
    }
    const toSend = [...firsts.values()];
    const unsent = run.dryRun ? new Map<number, string>() : await this.sendEvents(toSend.map((l) => l.plan.event));
    toSend.forEach(({ message, plan }, i) => {
      const error = unsent.get(i);
      if (error !== undefined) return run.fail(message, error);
      run.sentLetters.add(plan.letterKey);
      count(run.report.resentEvents, plan.reason);
      run.sent(message);
    });
    for (const { message, plan } of further) {
      if (!run.sentLetters.has(plan.letterKey)) {
        run.fail(message, 'another letter for the same event was not sent');
        continue;
      }
      run.report.duplicateLetters++;
      run.sent(message);
    }
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
  private async sendOriginals(plans: readonly Extract<RedrivePlan, { action: 'resend-message' }>[]): Promise<Map<number, string>> {
    const messages = plans.map(
      (plan): OutgoingMessage => ({
        entry: { MessageBody: plan.body, MessageAttributes: { [ORIGINAL_MESSAGE_ID_ATTRIBUTE]: { DataType: 'String', StringValue: plan.originalMessageId } } },
        bytes: Buffer.byteLength(plan.body) + ORIGINAL_MESSAGE_ID_ATTRIBUTE.length + 'String'.length + plan.originalMessageId.length,
      }),
    );
    const unsent = await sendMessagesWithRetries(this.client, this.options.usageQueueUrl, messages, { maxCallBytes: SQS_MAX_MESSAGE_BYTES, maxAttempts: MAX_ATTEMPTS });
    return new Map([...unsent].map(([i, failure]) => [i, sendFailureText(failure)]));
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

type Planned<A extends RedrivePlan['action']> = { readonly message: Message; readonly plan: Extract<RedrivePlan, { action: A }> };

/** What one run has done so far: its report, and each message it received, settled as sent or kept. */
class RedriveRun {
  readonly report = {
    received: 0,
    resentMessages: 0,
    resentEvents: {} as Record<string, number>,
    duplicateLetters: 0,
    kept: {} as Record<string, number>,
    failed: [] as { messageId: string; error: string }[],
  };
  /** The events sent again (message id and position): a further letter for one is a duplicate. */
  readonly sentLetters = new Set<string>();
  /** Messages settled in this run, by message id. */
  private readonly settled = new Map<string, 'sent' | 'kept'>();
  /** Receipt handles of the messages left in the queue (a dry run's all), to make them visible again at the end. */
  private readonly keptHandles = new Map<string, string>();
  private deletes: Message[] = [];

  constructor(readonly dryRun: boolean) {}

  /** Left in the queue, and why. */
  keep(message: Message, why: string): void {
    count(this.report.kept, why);
    this.settle(message, 'kept');
  }

  /** Left in the queue because sending it failed. */
  fail(message: Message, error: string): void {
    this.report.failed.push({ messageId: message.MessageId!, error });
    this.settle(message, 'kept');
  }

  /** Sent again (a dry run: would be): to be deleted. */
  sent(message: Message): void {
    this.settle(message, 'sent');
  }

  /** A message settled before in this run and received again: settled the same way. */
  settleAgain(message: Message): boolean {
    const before = this.settled.get(message.MessageId!);
    if (before !== undefined) this.settle(message, before);
    return before !== undefined;
  }

  /** The messages to delete now (sent since the last call). */
  takeDeletes(): Message[] {
    const deletes = this.deletes;
    this.deletes = [];
    return deletes;
  }

  keptReceiptHandles(): string[] {
    return [...this.keptHandles.values()];
  }

  private settle(message: Message, how: 'sent' | 'kept'): void {
    this.settled.set(message.MessageId!, how);
    // A dry run deletes nothing: what it would send is made visible again too.
    if (how === 'kept' || this.dryRun) this.keptHandles.set(message.MessageId!, message.ReceiptHandle!);
    else this.deletes.push(message);
  }
}

function keptKey(why: KeepWhy, reason: string | undefined): string {
  return reason === undefined ? why : `${why}:${reason}`;
}

function count(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}
