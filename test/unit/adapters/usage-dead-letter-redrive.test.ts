import { Message, SQSClient } from '@aws-sdk/client-sqs';
import { UsageDeadLetterRedrive } from '../../../lambda/adapters/usage-dead-letter-redrive';
import { redriveOptionsOf } from '../../../bin/redrive-usage-dead-letters';

/**
 * The redrive's error branches, which the local queue does not produce on demand: a message is
 * deleted from the dead-letter queue only once what it holds was accepted, and what stays is made
 * visible again, even when the run fails. (The whole flow runs on real components in
 * test/integration/usage-dead-letter-redrive.test.ts.)
 */

const DLQ = 'https://sqs.local/000000000000/usage-dead-letters';
const USAGE = 'https://sqs.local/000000000000/usage';
const EVENT = { licenseArn: 'arn:aws:license-manager::123456789012:license:l-0123456789abcdef', dimension: 'requests', quantity: 1, timestamp: '2026-12-02T10:00:00Z' };

const original = (id: string): Message => ({ MessageId: id, ReceiptHandle: `handle-${id}`, Body: JSON.stringify(EVENT) });
const letter = (id: string, position: number, reason = 'unknown-customer'): Message => ({
  MessageId: id,
  ReceiptHandle: `handle-${id}`,
  Body: JSON.stringify({ reason, message: 'm', messageId: '0b9c7a52-5d1e-4f36-9d0b-4a0a6b1c2d3e', position, event: EVENT }),
  MessageAttributes: { reason: { DataType: 'String', StringValue: reason } },
});

interface Call {
  readonly name: string;
  readonly input: any;
}

/** An SQS client whose receives return `pages` in turn (then nothing) and whose other answers `answer` gives. */
function stubSqs(pages: Message[][], answer: (call: Call) => unknown = () => ({})) {
  const calls: Call[] = [];
  let page = 0;
  const client = {
    send: async (command: { constructor: { name: string }; input: unknown }) => {
      const call = { name: command.constructor.name, input: command.input as any };
      calls.push(call);
      if (call.name === 'ReceiveMessageCommand') return { Messages: pages[page++] ?? [] };
      const result = answer(call);
      if (result instanceof Error) throw result;
      return result;
    },
  } as unknown as SQSClient;
  return { client, calls, named: (name: string) => calls.filter((c) => c.name === name) };
}

const run = (client: SQSClient, options: { dryRun?: boolean } = {}) =>
  new UsageDeadLetterRedrive({ deadLetterQueueUrl: DLQ, usageQueueUrl: USAGE, client, waitSeconds: 0, ...options }).run();

describe('UsageDeadLetterRedrive', () => {
  test('an original SQS refuses to take back is neither deleted nor lost: reported, and visible again', async () => {
    const sqs = stubSqs([[original('a'), original('b')]], (call) =>
      call.name === 'SendMessageBatchCommand'
        ? { Successful: [{ Id: '1' }], Failed: [{ Id: '0', Code: 'InvalidParameterValue', SenderFault: true, Message: 'too long' }] }
        : {},
    );
    const report = await run(sqs.client);
    expect(report).toMatchObject({ received: 2, resentMessages: 1, failed: [{ messageId: 'a', error: expect.stringContaining('InvalidParameterValue') }] });
    // Each original went with the attribute naming its own first message id.
    expect(sqs.named('SendMessageBatchCommand')[0].input.Entries.map((e: any) => e.MessageAttributes.originalMessageId.StringValue)).toEqual(['a', 'b']);
    expect(sqs.named('DeleteMessageBatchCommand').map((c) => c.input.Entries.map((e: any) => e.ReceiptHandle))).toEqual([['handle-b']]);
    expect(sqs.named('ChangeMessageVisibilityBatchCommand').map((c) => c.input.Entries)).toEqual([[{ Id: '0', ReceiptHandle: 'handle-a', VisibilityTimeout: 0 }]]);
  });

  test('a delete that fails is reported; a message received again in the same run is not sent twice but deleted then', async () => {
    let deletes = 0;
    const sqs = stubSqs([[letter('x', 0)], [letter('x', 0)]], (call) => {
      if (call.name === 'DeleteMessageBatchCommand') return deletes++ === 0 ? new Error('connection reset') : {};
      return {};
    });
    const report = await run(sqs.client);
    expect(report).toMatchObject({ received: 1, resentEvents: { 'unknown-customer': 1 }, failed: [{ messageId: 'x', error: 'not deleted: Error: connection reset' }] });
    expect(sqs.named('SendMessageBatchCommand')).toHaveLength(1);
    expect(sqs.named('DeleteMessageBatchCommand')).toHaveLength(2);
  });

  test('a run that fails part-way still makes what it kept visible again, and deletes nothing unsent', async () => {
    const sqs = stubSqs([[letter('k', 0, 'timestamp-in-future'), letter('s', 1)]], (call) =>
      call.name === 'SendMessageBatchCommand' ? new Error('AccessDenied') : {},
    );
    const report = await run(sqs.client);
    expect(report.failed.map((f) => f.messageId)).toEqual(['s']);
    expect(report.kept).toEqual({ 'reason-not-selected:timestamp-in-future': 1 });
    expect(sqs.named('DeleteMessageBatchCommand')).toEqual([]);
    expect(sqs.named('ChangeMessageVisibilityBatchCommand')[0].input.Entries.map((e: any) => e.ReceiptHandle).sort()).toEqual(['handle-k', 'handle-s']);

    const failing = stubSqs([[letter('k', 0, 'timestamp-in-future')]], () => ({}));
    const send = failing.client.send.bind(failing.client);
    let receives = 0;
    (failing.client as any).send = (command: any) =>
      command.constructor.name === 'ReceiveMessageCommand' && receives++ > 0 ? Promise.reject(new Error('throttled')) : send(command);
    await expect(run(failing.client)).rejects.toThrow('throttled');
    expect(failing.named('ChangeMessageVisibilityBatchCommand')[0].input.Entries).toEqual([{ Id: '0', ReceiptHandle: 'handle-k', VisibilityTimeout: 0 }]);
  });

  test('a dry run sends and deletes nothing, and makes everything it received visible again', async () => {
    const sqs = stubSqs([[original('a'), letter('x', 0), letter('y', 0)]]);
    expect(await run(sqs.client, { dryRun: true })).toEqual({
      received: 3,
      resentMessages: 1,
      resentEvents: { 'unknown-customer': 1 },
      duplicateLetters: 1,
      kept: {},
      failed: [],
    });
    expect(sqs.named('SendMessageBatchCommand')).toEqual([]);
    expect(sqs.named('DeleteMessageBatchCommand')).toEqual([]);
    expect(sqs.named('ChangeMessageVisibilityBatchCommand')[0].input.Entries).toHaveLength(3);
  });
});

describe('npm run redrive-usage: arguments', () => {
  test('the queue URLs are required, with what they are', () => {
    expect(() => redriveOptionsOf(['--usage-queue-url', USAGE])).toThrow(/UsageDeadLetterQueueUrl/);
  });

  test('reasons, originals, dry run, a message bound and a local endpoint', () => {
    expect(
      redriveOptionsOf(['--dead-letter-queue-url', DLQ, '--usage-queue-url', USAGE, '--reasons', 'unknown-customer, identity-mismatch', '--skip-originals', '--dry-run', '--max-messages', '50', '--endpoint', 'http://127.0.0.1:1']),
    ).toEqual({
      deadLetterQueueUrl: DLQ,
      usageQueueUrl: USAGE,
      reasons: ['unknown-customer', 'identity-mismatch'],
      originals: false,
      dryRun: true,
      maxMessages: 50,
      endpoint: 'http://127.0.0.1:1',
    });
    expect(redriveOptionsOf(['--dead-letter-queue-url', DLQ, '--usage-queue-url', USAGE])).toEqual({ deadLetterQueueUrl: DLQ, usageQueueUrl: USAGE, originals: true, dryRun: false });
  });

  test.each([[['--max-messages', '0']], [['--max-messages', 'ten']], [['--reasons', ' , ']]])('%p is refused', (extra) => {
    expect(() => redriveOptionsOf(['--dead-letter-queue-url', DLQ, '--usage-queue-url', USAGE, ...extra])).toThrow();
  });
});
