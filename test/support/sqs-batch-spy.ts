import { SendMessageBatchCommand, SendMessageBatchCommandInput, SendMessageBatchCommandOutput, SQSClient } from '@aws-sdk/client-sqs';

/**
 * An SQS client for unit tests of error branches that takes SendMessageBatch only: it records each
 * call's input and answers as the test says (or throws what the test throws).
 */

export type BatchAnswer = (input: SendMessageBatchCommandInput, call: number) => Promise<Partial<SendMessageBatchCommandOutput>>;

export function spyingClient(answer: BatchAnswer): { client: SQSClient; inputs: SendMessageBatchCommandInput[] } {
  const inputs: SendMessageBatchCommandInput[] = [];
  const client = {
    async send(command: unknown) {
      if (!(command instanceof SendMessageBatchCommand)) throw new Error(`unexpected command ${String(command)}`);
      inputs.push(command.input);
      return answer(command.input, inputs.length);
    },
  } as unknown as SQSClient;
  return { client, inputs };
}

/** SQS's answer when every entry was accepted. */
export const acceptedAll = (entries: SendMessageBatchCommandInput['Entries']) => ({
  Successful: entries!.map((e) => ({ Id: e.Id!, MessageId: `m-${e.Id}`, MD5OfMessageBody: '' })),
  Failed: [],
});
