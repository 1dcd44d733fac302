import {
  CreateQueueCommand,
  Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageBatchCommandInput,
} from '@aws-sdk/client-sqs';
import { UsageProducer } from '../../../lambda/adapters/usage-producer';
import { parseUsageMessage, UsageEvent } from '../../../lambda/core/usage/usage-event';
import { useLocalSqs } from '../../support/local-services';
import { acceptedAll, spyingClient } from '../../support/sqs-batch-spy';

const LICENSE_ARN = 'arn:aws:license-manager::111122223333:license:l-0123456789abcdef0123';
const usage = (i: number): UsageEvent => ({ licenseArn: LICENSE_ARN, dimension: 'requests', quantity: i, timestamp: '2026-11-02T10:15:00Z' });

/** Events of a received message body, each checked by the same parser the ingest function uses. */
function eventsIn(message: Message): UsageEvent[] {
  const parsed = parseUsageMessage(message.Body ?? '');
  if (!Array.isArray(parsed)) throw new Error(`unparseable message: ${parsed.reason}`);
  return parsed.map((p) => {
    if (!p.ok) throw new Error(`invalid event in a sent message: ${p.rejection.message}`);
    return p.event;
  });
}

const allSucceed = (input: SendMessageBatchCommandInput) => Promise.resolve(acceptedAll(input.Entries));

describe('UsageProducer against a real SQS endpoint (fauxqs)', () => {
  const sqs = useLocalSqs();
  let queueNumber = 0;

  async function newQueue(): Promise<string> {
    const { QueueUrl } = await sqs.client.send(new CreateQueueCommand({ QueueName: `usage-producer-${process.pid}-${++queueNumber}` }));
    return QueueUrl!;
  }

  async function receiveAll(queueUrl: string, expectedMessages: number): Promise<Message[]> {
    const received: Message[] = [];
    const until = Date.now() + 10_000;
    while (received.length < expectedMessages && Date.now() < until) {
      const { Messages } = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60 }));
      received.push(...(Messages ?? []));
    }
    // Nothing more than expected is waiting.
    const { Messages: extra } = await sqs.client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    return [...received, ...(extra ?? [])];
  }

  it('sends 35 events as messages of at most 25 events, each event with an eventId; invalid events come back unsent', async () => {
    const queueUrl = await newQueue();
    const spy = spyingClient((input) => sqs.client.send(new SendMessageBatchCommand(input)));
    const producer = new UsageProducer({ queueUrl, client: spy.client });

    const valid = Array.from({ length: 35 }, (_, i) => usage(i + 1));
    valid[7] = { ...valid[7], eventId: 'my-own-id' };
    const invalid = [
      { ...usage(1), quantity: -5 },
      { dimension: 'requests', quantity: 1, timestamp: '2026-11-02T10:15:00Z' },
    ];
    const result = await producer.send([...valid.slice(0, 10), invalid[0], ...valid.slice(10), invalid[1]]);

    expect(result.sent).toBe(35);
    expect(result.failed).toHaveLength(2);
    expect(result.failed.map((f) => f.event)).toEqual(invalid);
    expect(result.failed.every((f) => f.reason === 'invalid-event' && f.message.length > 0)).toBe(true);
    expect(spy.inputs).toHaveLength(1);

    const messages = await receiveAll(queueUrl, 2);
    const perMessage = messages.map(eventsIn);
    expect(perMessage.map((m) => m.length).sort((a, b) => a - b)).toEqual([10, 25]);
    const events = perMessage.flat();
    expect(events).toHaveLength(35);
    const ids = events.map((e) => e.eventId);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(35);
    expect(events.find((e) => e.quantity === 8)?.eventId).toBe('my-own-id');
    // What arrived is what was given, plus the eventId.
    const withoutIds = events.map(({ eventId: _id, ...rest }) => rest).sort((a, b) => a.quantity - b.quantity);
    expect(withoutIds).toEqual(valid.map(({ eventId: _id, ...rest }) => rest));
    // Nothing invalid went out.
    expect(events.some((e) => e.quantity < 0)).toBe(false);
  });

  it('sends at most 10 messages per SendMessageBatch call', async () => {
    const queueUrl = await newQueue();
    const spy = spyingClient((input) => sqs.client.send(new SendMessageBatchCommand(input)));
    const producer = new UsageProducer({ queueUrl, client: spy.client, eventsPerMessage: 2 });

    const result = await producer.send(Array.from({ length: 45 }, (_, i) => usage(i)));

    expect(result).toEqual({ sent: 45, failed: [] });
    expect(spy.inputs.map((i) => i.Entries!.length)).toEqual([10, 10, 3]);
    const messages = await receiveAll(queueUrl, 23);
    expect(messages).toHaveLength(23);
    expect(messages.map((m) => eventsIn(m).length).sort((a, b) => b - a)[0]).toBe(2);
    expect(messages.flatMap(eventsIn).map((e) => e.quantity).sort((a, b) => a - b)).toEqual(Array.from({ length: 45 }, (_, i) => i));
  });
});

describe('UsageProducer retries', () => {
  const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/111122223333/usage';

  it('resends, unchanged, only the entries SQS reported as failed', async () => {
    const spy = spyingClient(async (input, call) => {
      if (call > 1) return allSucceed(input);
      const [first, second, ...rest] = input.Entries!;
      return {
        Successful: [first, ...rest].map((e) => ({ Id: e.Id!, MessageId: 'm', MD5OfMessageBody: '' })),
        Failed: [{ Id: second.Id!, Code: 'InternalError', SenderFault: false, Message: 'try again' }],
      };
    });
    const producer = new UsageProducer({ queueUrl: QUEUE_URL, client: spy.client, eventsPerMessage: 1 });

    const result = await producer.send([usage(1), usage(2), usage(3)]);

    expect(result).toEqual({ sent: 3, failed: [] });
    expect(spy.inputs).toHaveLength(2);
    expect(spy.inputs[0].Entries).toHaveLength(3);
    expect(spy.inputs[1].Entries).toEqual([spy.inputs[0].Entries![1]]);
    expect(spy.inputs[1].QueueUrl).toBe(QUEUE_URL);
  });

  it('returns the events of a message SQS keeps refusing, after the configured attempts', async () => {
    const spy = spyingClient(async (input) => {
      const refused = input.Entries!.filter((e) => JSON.parse(e.MessageBody!)[0].quantity === 2);
      return {
        Successful: input.Entries!.filter((e) => !refused.includes(e)).map((e) => ({ Id: e.Id!, MessageId: 'm', MD5OfMessageBody: '' })),
        Failed: refused.map((e) => ({ Id: e.Id!, Code: 'ServiceUnavailable', SenderFault: false, Message: 'busy' })),
      };
    });
    const producer = new UsageProducer({ queueUrl: QUEUE_URL, client: spy.client, eventsPerMessage: 1, maxAttempts: 3 });

    const result = await producer.send([usage(1), usage(2), usage(3)]);

    expect(result.sent).toBe(2);
    expect(result.failed).toHaveLength(1);
    expect(result.failed[0]).toMatchObject({ reason: 'send-failed', message: expect.stringContaining('ServiceUnavailable') });
    expect(result.failed[0].event).toMatchObject(usage(2));
    expect(spy.inputs.map((i) => i.Entries!.length)).toEqual([3, 1, 1]);
  });

  it('does not resend an entry refused as the sender\'s fault', async () => {
    const spy = spyingClient(async (input) => ({
      Successful: [],
      Failed: input.Entries!.map((e) => ({ Id: e.Id!, Code: 'InvalidMessageContents', SenderFault: true })),
    }));
    const producer = new UsageProducer({ queueUrl: QUEUE_URL, client: spy.client });

    const result = await producer.send([usage(1), usage(2)]);

    expect(spy.inputs).toHaveLength(1);
    expect(result.sent).toBe(0);
    expect(result.failed.map((f) => [f.reason, f.message])).toEqual([
      ['send-failed', 'InvalidMessageContents:'],
      ['send-failed', 'InvalidMessageContents:'],
    ]);
  });

  it('resends the whole batch when the call itself fails', async () => {
    const spy = spyingClient(async (input, call) => {
      if (call === 1) throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
      return allSucceed(input);
    });
    const producer = new UsageProducer({ queueUrl: QUEUE_URL, client: spy.client });

    expect(await producer.send([usage(1), usage(2)])).toEqual({ sent: 2, failed: [] });
    expect(spy.inputs).toHaveLength(2);
    expect(spy.inputs[1]).toEqual(spy.inputs[0]);
  });
});
