/**
 * Usage and dead letters at SQS's size limits, on real components (fauxqs with its default 1 MiB
 * maximum message size, as the stack's queues have it; DynamoDB Local; our ingest handler behind
 * the local poller): large events are packed into messages and calls that SQS accepts, and a large
 * rejected message or event still reaches the usage dead-letter queue with its reason, once.
 */
import { createHash } from 'node:crypto';
import { SendMessageBatchCommand, SendMessageBatchCommandInput, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { DeadLetterQueue } from '../../lambda/adapters/dead-letter-queue';
import { UsageProducer } from '../../lambda/adapters/usage-producer';
import { ProductConfig } from '../../lambda/core/product-config';
import { createIngestHandler } from '../../lambda/ingest/ingest-batch';
import { FakeCustomerDirectory, FakeUsageJournal, NOW, PRODUCTS } from '../unit/usage/fake-usage-ports';
import { DeadLetter, inUsageHour, useMeteringEnvironment, USAGE_HOUR } from '../support/metering-environment';

const PRODUCT: ProductConfig = { productCode: 'size-product', identityMode: 'license', dimensions: ['requests'] };
const STRANGER = 'arn:aws:license-manager::123456789012:license:l-0000000000000000';
const SQS_MAX_MESSAGE_BYTES = 1_048_576;

const env = useMeteringEnvironment({
  stackProducts: [PRODUCT],
  simulatorProducts: [{ productCode: PRODUCT.productCode, identityMode: 'license', dimensions: ['requests'] }],
});

/** The 100 tag sets every large event allocates to (one hour's bucket takes at most 2,500). */
const ALLOCATIONS = Array.from({ length: 100 }, (_, a) => ({
  quantity: 1,
  tags: Object.fromEntries(Array.from({ length: 5 }, (_, t) => [`tag-${t}`, `${a}-${t}-${'v'.repeat(80)}`])),
}));

/** A schema-valid event of about 50 KB: 100 allocations of 5 tags each. */
const largeEvent = (licenseArn: string, eventId: string) => ({
  eventId,
  licenseArn,
  dimension: 'requests',
  quantity: 100,
  timestamp: inUsageHour(30),
  allocations: ALLOCATIONS,
});

/** A client that sends through `sqs` and keeps each SendMessageBatch input and whether it was refused. */
function recording(sqs: SQSClient) {
  const calls: { input: SendMessageBatchCommandInput; error?: string }[] = [];
  const client = {
    async send(command: unknown) {
      if (!(command instanceof SendMessageBatchCommand)) throw new Error(`unexpected command ${String(command)}`);
      const call: (typeof calls)[number] = { input: command.input };
      calls.push(call);
      try {
        return await sqs.send(command);
      } catch (error) {
        call.error = String(error);
        throw error;
      }
    },
  } as unknown as SQSClient;
  return { client, calls };
}

const bytesOf = (text: string) => Buffer.byteLength(text);
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const byReason = (letters: DeadLetter[]) => letters.map((l) => l.reason).sort();

describe('the producer and large events', () => {
  test('25 events of about 50 KB each: all sent, in several messages each under 1 MiB, and all counted', async () => {
    const customer = await env.newCustomer(PRODUCT.productCode);
    const events = Array.from({ length: 25 }, (_, i) => largeEvent(customer.licenseArn, `large-${i}`));
    expect(bytesOf(JSON.stringify(events[0]))).toBeGreaterThan(50_000);
    // Together, 1.26 MB: more than one message (or one call) may hold.
    expect(bytesOf(JSON.stringify(events))).toBeGreaterThan(1_250_000);
    const sqs = recording(env.usage.sqs);

    const result = await new UsageProducer({ queueUrl: env.usage.usageQueueUrl, client: sqs.client }).send(events);

    expect(result).toEqual({ sent: 25, failed: [] });
    expect(sqs.calls.filter((c) => c.error !== undefined)).toEqual([]);
    const bodies = sqs.calls.flatMap((c) => c.input.Entries!.map((e) => e.MessageBody!));
    expect(bodies.length).toBeGreaterThan(1);
    for (const body of bodies) expect(bytesOf(body)).toBeLessThan(SQS_MAX_MESSAGE_BYTES);
    for (const call of sqs.calls) expect(call.input.Entries!.reduce((n, e) => n + bytesOf(e.MessageBody!), 0)).toBeLessThan(SQS_MAX_MESSAGE_BYTES);

    // Ingested: every event once, with its 100 allocations; nothing dead-lettered or left behind.
    // (The local poller also receives in the background: drain waits for it too.)
    await env.drain();
    expect(env.ingested()).toEqual({ messages: bodies.length, counted: 25, duplicates: 0, rolledOver: 0, rejected: 0 });
    const journaled = await env.journalEvents(USAGE_HOUR);
    expect(journaled.map((e) => e.eventId).sort()).toEqual(events.map((e) => e.eventId).sort());
    for (const event of journaled) {
      expect(event).toMatchObject({ customerKey: customer.customerKey, quantity: 100 });
      expect(Object.values(event.allocations ?? {})).toEqual(Array(100).fill(1));
    }
    expect(await env.usageDeadLetters()).toEqual([]);
    expect(await env.queueDepth(env.usage.usageQueueUrl)).toEqual({ visible: 0, inFlight: 0 });
  });
});

describe('large rejected messages and events reach the usage dead-letter queue', () => {
  /** Not JSON, about 1 MB, a quarter of it quotes: echoed in a JSON letter it would be 1.3 MB. */
  const invalidJson = `{"events": ${'"a",'.repeat(255_000)}`;
  /** 101 events (one more than a message may hold), about 1 MB. */
  const tooManyEvents = JSON.stringify(Array.from({ length: 101 }, (_, i) => ({ eventId: `e${i}`, note: '"q"'.repeat(2_000) })));
  /** One event that is not valid (an unknown field), its message 60 bytes under 1 MiB: less than a letter adds. */
  const hugeInvalidEvent = (licenseArn: string) => {
    const event = { licenseArn, dimension: 'requests', quantity: 1, timestamp: inUsageHour(30), note: '' };
    return JSON.stringify({ ...event, note: 'n'.repeat(SQS_MAX_MESSAGE_BYTES - 60 - bytesOf(JSON.stringify(event))) });
  };
  /**
   * Ten events of about 100 KB that cannot be billed (unknown customer, unknown dimension, not
   * valid), the message just under 1 MiB: their letters, with what each adds, come to more.
   */
  const largeRejectedEvents = (licenseArn: string) => {
    const events: Record<string, unknown>[] = Array.from({ length: 10 }, (_, i) => ({
      ...largeEvent(i < 4 ? STRANGER : licenseArn, `rejected-${i}`),
      ...(i >= 4 && i < 7 ? { dimension: 'bogus' } : {}),
      ...(i >= 7 ? { note: '' } : {}),
      allocations: ALLOCATIONS.map((a) => ({ ...a, tags: { ...a.tags, 'tag-4': `${a.tags['tag-4']}${'w'.repeat(100)}` } })),
    }));
    const room = SQS_MAX_MESSAGE_BYTES - 600 - bytesOf(JSON.stringify(events));
    events[9] = { ...events[9], note: 'n'.repeat(room) };
    return { events, body: JSON.stringify(events) };
  };

  test('each with its reason, cut short (and saying so) when it would not fit; the messages are not retried', async () => {
    const customer = await env.newCustomer(PRODUCT.productCode);
    const rejected = largeRejectedEvents(customer.licenseArn);
    const huge = hugeInvalidEvent(customer.licenseArn);
    for (const body of [invalidJson, tooManyEvents, huge, rejected.body]) {
      expect(bytesOf(body)).toBeGreaterThan(1_000_000);
      expect(bytesOf(body)).toBeLessThanOrEqual(SQS_MAX_MESSAGE_BYTES);
    }
    const ids = {
      invalidJson: await env.sendRaw(invalidJson),
      tooManyEvents: await env.sendRaw(tooManyEvents),
      huge: await env.sendRaw(huge),
      rejected: await env.sendRaw(rejected.body),
    };

    await env.drain();

    // Handled (deleted), not failed and left for redelivery; no poll failed.
    expect(await env.queueDepth(env.usage.usageQueueUrl)).toEqual({ visible: 0, inFlight: 0 });
    expect(env.logLines.filter((l) => l.level === 'error')).toEqual([]);
    const letters = await env.usageDeadLetters();
    expect(byReason(letters)).toEqual(
      ['invalid-json', 'too-many-events', 'invalid-event', ...Array(4).fill('unknown-customer'), ...Array(3).fill('unknown-dimension'), ...Array(3).fill('invalid-event')].sort(),
    );
    for (const l of letters) expect(l.body.reason).toBe(l.reason);
    const of = (messageId: string) => letters.filter((l) => l.body.messageId === messageId);

    // Whole messages: the start of the body, its size and hash.
    for (const [messageId, body, reason] of [
      [ids.invalidJson, invalidJson, 'invalid-json'],
      [ids.tooManyEvents, tooManyEvents, 'too-many-events'],
    ] as const) {
      const [letter] = of(messageId);
      expect(letter.body).toEqual({
        reason,
        message: expect.any(String),
        messageId,
        body: expect.any(String),
        bodyTruncated: true,
        bodyBytes: bytesOf(body),
        bodySha256: sha256(body),
      });
      expect(body.startsWith(letter.body.body)).toBe(true);
      expect(letter.body.body.length).toBeGreaterThan(300_000);
    }

    // The one huge event: the start of its JSON.
    const [hugeLetter] = of(ids.huge);
    expect(hugeLetter.body).toEqual({
      reason: 'invalid-event',
      message: expect.stringContaining('note'),
      messageId: ids.huge,
      position: 0,
      event: expect.any(String),
      eventTruncated: true,
      eventBytes: bytesOf(huge),
      bodySha256: sha256(huge),
    });
    expect(huge.startsWith(hugeLetter.body.event)).toBe(true);

    // The ten large events: each letter whole (each fits alone), in more than one call.
    const eventLetters = of(ids.rejected).sort((a, b) => a.body.position - b.body.position);
    expect(eventLetters.map((l) => l.body.position)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    eventLetters.forEach((l, i) => expect(l.body).toEqual({ reason: l.reason, message: expect.any(String), messageId: ids.rejected, position: i, event: rejected.events[i] }));

    // Nothing was counted, and nothing comes back.
    expect(env.ingested()).toMatchObject({ counted: 0 });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await env.drain()).toBe(0);
    expect(await env.usageDeadLetters()).toEqual([]);
  });

  test('the ingest handler reports no batch item failure for them', async () => {
    const rejected = largeRejectedEvents(STRANGER);
    const bodies = [invalidJson, tooManyEvents, hugeInvalidEvent(STRANGER), rejected.body];
    const handler = createIngestHandler({
      ports: { journal: new FakeUsageJournal(), customers: new FakeCustomerDirectory(), products: PRODUCTS, now: () => NOW },
      deadLetters: new DeadLetterQueue(env.usage.sqs, env.usage.usageDeadLetterQueueUrl),
      log: { info: () => undefined, warn: () => undefined },
    });
    const event: SQSEvent = {
      Records: bodies.map((body, i) => ({
        messageId: `message-${i}`,
        receiptHandle: `receipt-${i}`,
        body,
        attributes: {} as SQSEvent['Records'][number]['attributes'],
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:usage',
        awsRegion: 'us-east-1',
      })),
    };

    expect(await handler(event)).toEqual({ batchItemFailures: [] });

    const letters = await env.usageDeadLetters();
    expect(letters.map((l) => l.body.messageId).sort()).toEqual(['message-0', 'message-1', 'message-2', ...Array(10).fill('message-3')]);
    expect(letters.every((l) => typeof l.reason === 'string' && l.reason === l.body.reason)).toBe(true);
  });
});
