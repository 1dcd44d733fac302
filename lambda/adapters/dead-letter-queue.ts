import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';

/**
 * Sends dead letters (a JSON body and a `reason` attribute each) to an SQS queue, ten per call,
 * resending what SQS reports as failed. Throws if some still fail: the caller must not drop them.
 */
export class DeadLetterQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(letters: readonly { reason: string; body: unknown }[]): Promise<void> {
    for (let i = 0; i < letters.length; i += 10) {
      let batch = letters.slice(i, i + 10).map((letter, j) => ({
        Id: String(j),
        MessageBody: JSON.stringify(letter.body),
        MessageAttributes: { reason: { DataType: 'String', StringValue: letter.reason } },
      }));
      for (let attempt = 0; batch.length > 0; attempt++) {
        if (attempt === 3) throw new Error(`${batch.length} dead letters could not be sent to ${this.queueUrl}`);
        const result = await this.client.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: batch }));
        const failed = new Set((result.Failed ?? []).map((f) => f.Id));
        batch = batch.filter((entry) => failed.has(entry.Id));
      }
    }
  }
}
