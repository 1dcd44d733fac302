import { SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import { MAX_MESSAGE_BYTES, UsageProducer } from '../../../lambda/adapters/usage-producer';
import { UsageEvent } from '../../../lambda/core/usage/usage-event';
import { acceptedAll, spyingClient } from '../../support/sqs-batch-spy';

/**
 * UsageProducer and SQS's size limits (1 MiB a message, and 1 MiB for a whole SendMessageBatch
 * call), against a client that answers as told. The same against the real SQS emulator, with the
 * events ingested: test/integration/usage-size-limits.test.ts.
 */

const QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/111122223333/usage';
const LICENSE_ARN = 'arn:aws:license-manager::111122223333:license:l-0123456789abcdef0123';
const SQS_MAX_MESSAGE_BYTES = 1_048_576;

const usage = (i: number): UsageEvent => ({ licenseArn: LICENSE_ARN, dimension: 'requests', quantity: i, timestamp: '2026-11-02T10:15:00Z' });

/** A schema-valid event of about 50 KB: 100 allocations of 5 tags each. */
const largeUsage = (i: number): UsageEvent => ({
  ...usage(100),
  eventId: `large-${i}`,
  allocations: Array.from({ length: 100 }, (_, a) => ({
    quantity: 1,
    tags: Object.fromEntries(Array.from({ length: 5 }, (_, t) => [`tag-${t}`, `${a}-${t}-${'v'.repeat(80)}`])),
  })),
});

const ok = acceptedAll;
const tooLong = () => Object.assign(new Error('Batch requests cannot be longer than 1048576 bytes.'), { name: 'BatchRequestTooLong' });
const bodyBytes = (input: SendMessageBatchCommandInput) => input.Entries!.map((e) => Buffer.byteLength(e.MessageBody!));
const eventIdsIn = (input: SendMessageBatchCommandInput) => input.Entries!.flatMap((e) => (JSON.parse(e.MessageBody!) as UsageEvent[]).map((u) => u.eventId));

describe('UsageProducer packs by bytes as well as by count', () => {
  it('25 events of about 50 KB: several messages and calls, each under 1 MiB, every event once and in order', async () => {
    const spy = spyingClient(async (input) => ok(input.Entries));
    const events = Array.from({ length: 25 }, (_, i) => largeUsage(i));
    expect(Buffer.byteLength(JSON.stringify(events[0]))).toBeGreaterThan(50_000);

    const result = await new UsageProducer({ queueUrl: QUEUE_URL, client: spy.client }).send(events);

    expect(result).toEqual({ sent: 25, failed: [] });
    const messageBytes = spy.inputs.flatMap(bodyBytes);
    expect(messageBytes.length).toBeGreaterThan(1);
    for (const bytes of messageBytes) expect(bytes).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    for (const input of spy.inputs) expect(bodyBytes(input).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    expect(MAX_MESSAGE_BYTES).toBeLessThan(SQS_MAX_MESSAGE_BYTES);
    // Full messages: as many events as fit (about 20), not one each.
    expect(Math.max(...spy.inputs.flatMap((i) => i.Entries!.map((e) => JSON.parse(e.MessageBody!).length)))).toBeGreaterThan(15);
    expect(spy.inputs.flatMap(eventIdsIn)).toEqual(events.map((e) => e.eventId));
  });

  it('an event too big for a message on its own comes back as invalid, is never sent, and the others are', async () => {
    const spy = spyingClient(async (input) => ok(input.Entries));
    // Schema-valid: the schema does not bound a timestamp's fraction of a second.
    const huge = { ...usage(2), timestamp: `2026-11-02T10:15:00.${'1'.repeat(1_100_000)}Z` };

    const result = await new UsageProducer({ queueUrl: QUEUE_URL, client: spy.client }).send([usage(1), huge, usage(3)]);

    expect(result.sent).toBe(2);
    expect(result.failed).toEqual([{ event: huge, reason: 'invalid-event', message: expect.stringMatching(/^The event is 1100\d{3} bytes as JSON: more than a usage message holds/) }]);
    expect(spy.inputs).toHaveLength(1);
    expect(spy.inputs[0].Entries!.map((e) => JSON.parse(e.MessageBody!).map((u: UsageEvent) => u.quantity))).toEqual([[1, 3]]);
  });
});

describe('UsageProducer and a queue with smaller messages (maxMessageBytes)', () => {
  const QUEUE_MAX = 262_144;

  it('packs 25 events of about 50 KB into messages and calls under the queue\'s size, every event once', async () => {
    const spy = spyingClient(async (input) => ok(input.Entries));
    const events = Array.from({ length: 25 }, (_, i) => largeUsage(i));

    const result = await new UsageProducer({ queueUrl: QUEUE_URL, client: spy.client, maxMessageBytes: QUEUE_MAX }).send(events);

    expect(result).toEqual({ sent: 25, failed: [] });
    for (const input of spy.inputs) {
      for (const bytes of bodyBytes(input)) expect(bytes).toBeLessThan(QUEUE_MAX);
      expect(bodyBytes(input).reduce((a, b) => a + b, 0)).toBeLessThan(QUEUE_MAX);
    }
    // About 50 KB each: 4 to a message, not 20.
    expect(Math.max(...spy.inputs.flatMap((i) => i.Entries!.map((e) => JSON.parse(e.MessageBody!).length)))).toBe(4);
    expect(spy.inputs.flatMap(eventIdsIn)).toEqual(events.map((e) => e.eventId));
  });

  it('returns an event too big for the queue as invalid', async () => {
    const spy = spyingClient(async (input) => ok(input.Entries));
    const huge = { ...usage(2), timestamp: `2026-11-02T10:15:00.${'1'.repeat(300_000)}Z` };

    const result = await new UsageProducer({ queueUrl: QUEUE_URL, client: spy.client, maxMessageBytes: QUEUE_MAX }).send([huge, usage(1)]);

    expect(result).toMatchObject({ sent: 1, failed: [{ event: huge, reason: 'invalid-event' }] });
  });

  it.each([0, 1023, 1_048_577, 1.5e5 + 0.5])('refuses maxMessageBytes %s', (maxMessageBytes) => {
    expect(() => new UsageProducer({ queueUrl: QUEUE_URL, maxMessageBytes })).toThrow(/maxMessageBytes is the queue's MaximumMessageSize/);
  });
});

describe('UsageProducer options from configuration', () => {
  // `Number(process.env.X)` of an unset variable is NaN; "no retries" may be written as 0.
  it.each([0, -1, 1.5, Number.NaN, 21])('refuses maxAttempts %p (it would report usage sent that never left)', (maxAttempts) => {
    expect(() => new UsageProducer({ queueUrl: QUEUE_URL, maxAttempts })).toThrow(`maxAttempts is an integer from 1 to 20, not ${maxAttempts}`);
  });

  it.each([0, 2.5, Number.NaN, 101])('refuses eventsPerMessage %p (messages of more than 100 events are refused whole at ingestion)', (eventsPerMessage) => {
    expect(() => new UsageProducer({ queueUrl: QUEUE_URL, eventsPerMessage })).toThrow(`eventsPerMessage is an integer from 1 to 100, not ${eventsPerMessage}`);
  });

  it('takes the bounds: one attempt sends once; 100 events a message', async () => {
    const spy = spyingClient(async (input) => ok(input.Entries));
    const producer = new UsageProducer({ queueUrl: QUEUE_URL, client: spy.client, maxAttempts: 1, eventsPerMessage: 100 });
    expect(await producer.send(Array.from({ length: 150 }, (_, i) => usage(i)))).toEqual({ sent: 150, failed: [] });
    expect(spy.inputs.map((i) => i.Entries!.map((e) => (JSON.parse(e.MessageBody!) as unknown[]).length))).toEqual([[100, 50]]);
    expect(() => new UsageProducer({ queueUrl: QUEUE_URL, maxAttempts: 20, eventsPerMessage: 1 })).not.toThrow();
  });
});

describe('UsageProducer and a call SQS finds too long', () => {
  it('does not send the same call again: its messages go one to a call', async () => {
    const spy = spyingClient(async (input) => {
      if (input.Entries!.length > 1) throw tooLong();
      return ok(input.Entries);
    });
    const producer = new UsageProducer({ queueUrl: QUEUE_URL, client: spy.client, eventsPerMessage: 1 });

    expect(await producer.send([usage(1), usage(2), usage(3)])).toEqual({ sent: 3, failed: [] });

    expect(spy.inputs.map((i) => i.Entries!.length)).toEqual([3, 1, 1, 1]);
    // The same messages, eventIds included.
    expect(spy.inputs.slice(1).flatMap(eventIdsIn)).toEqual(eventIdsIn(spy.inputs[0]));
  });

  it('returns a message refused as too long on its own, without trying it again', async () => {
    const spy = spyingClient(async () => {
      throw tooLong();
    });
    const producer = new UsageProducer({ queueUrl: QUEUE_URL, client: spy.client, maxAttempts: 4 });

    const result = await producer.send([usage(1), usage(2)]);

    expect(spy.inputs).toHaveLength(1);
    expect(result.sent).toBe(0);
    expect(result.failed.map((f) => [f.reason, f.message])).toEqual([
      ['send-failed', 'BatchRequestTooLong: Batch requests cannot be longer than 1048576 bytes.'],
      ['send-failed', 'BatchRequestTooLong: Batch requests cannot be longer than 1048576 bytes.'],
    ]);
  });
});
