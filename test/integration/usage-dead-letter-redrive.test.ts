/**
 * Sending the usage dead-letter queue's messages again (UsageDeadLetterRedrive), on real components
 * (fauxqs, DynamoDB Local, our ingest handler behind the local poller, the simulator): once the
 * cause is mended, what was refused is counted, and nothing is counted twice, however often a letter
 * or a redrive repeats; an original message that SQS moved after failed deliveries is one more
 * delivery of itself, so what a failed delivery counted is not counted again.
 */
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import { UsageDeadLetterRedrive, UsageDeadLetterRedriveOptions } from '../../lambda/adapters/usage-dead-letter-redrive';
import { ProductConfig } from '../../lambda/core/product-config';
import { inUsageHour, METER_USAGE_HOUR, useMeteringEnvironment, USAGE_HOUR } from '../support/metering-environment';

const PRODUCT: ProductConfig = { productCode: 'redrive-product', identityMode: 'license', dimensions: ['requests'] };

const env = useMeteringEnvironment({
  stackProducts: [PRODUCT],
  simulatorProducts: [{ productCode: PRODUCT.productCode, identityMode: 'license', dimensions: ['requests'] }],
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The redrive tool on the test's queues (short waits: the local queue answers at once). */
const redrive = (options: Partial<UsageDeadLetterRedriveOptions> = {}) =>
  new UsageDeadLetterRedrive({
    deadLetterQueueUrl: env.usage.usageDeadLetterQueueUrl,
    usageQueueUrl: env.usage.usageQueueUrl,
    client: env.usage.sqs,
    waitSeconds: 0,
    ...options,
  }).run();

/** The dead-letter queue's messages, received (hidden for a second) but not deleted: reason and body. */
async function peek(queueUrl: string): Promise<{ reason?: string; body: string }[]> {
  const seen: { reason?: string; body: string }[] = [];
  for (;;) {
    const { Messages = [] } = await env.usage.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 1, MessageAttributeNames: ['All'] }),
    );
    if (Messages.length === 0) break;
    seen.push(...Messages.map((m) => ({ reason: m.MessageAttributes?.reason?.StringValue, body: m.Body ?? '' })));
  }
  await sleep(1100);
  return seen;
}

/** Sends a copy of a letter to the dead-letter queue, as a retried delivery or a delete that never happened leaves one. */
async function sendLetterAgain(letter: { reason?: string; body: string }): Promise<void> {
  await env.usage.sqs.send(
    new SendMessageCommand({
      QueueUrl: env.usage.usageDeadLetterQueueUrl,
      MessageBody: letter.body,
      MessageAttributes: { reason: { DataType: 'String', StringValue: letter.reason! } },
    }),
  );
}

describe('sending usage dead letters again', () => {
  test('letters for a buyer who registered later: their events are counted and billed once, with every letter twice and the redrive repeated; letters of other reasons stay, visible', async () => {
    const buyer = await env.subscribe(PRODUCT.productCode);
    const other = await env.newCustomer(PRODUCT.productCode);
    // A producer in another language: no eventIds (the journal knows them by message id and position).
    const events = [2, 3, 4].map((quantity, i) => ({ licenseArn: buyer.licenseArn, dimension: 'requests', quantity, timestamp: inUsageHour(10 + i) }));
    const ahead = { licenseArn: other.licenseArn, dimension: 'requests', quantity: 50, timestamp: Date.now() + 3_600_000 };
    const messageId = await env.sendRaw(JSON.stringify([...events, ahead]));
    await env.drain();
    const letters = await peek(env.usage.usageDeadLetterQueueUrl);
    expect(letters.map((l) => l.reason).sort()).toEqual(['timestamp-in-future', 'unknown-customer', 'unknown-customer', 'unknown-customer']);
    // A letter can come twice.
    await sendLetterAgain(letters.find((l) => l.reason === 'unknown-customer')!);

    // Three events to send again (one of them with two letters); the letter of another reason stays.
    const expected = {
      received: 5,
      resentMessages: 0,
      resentEvents: { 'unknown-customer': 3 },
      duplicateLetters: 1,
      kept: { 'reason-not-selected:timestamp-in-future': 1 },
      failed: [],
    };
    // Before the buyer registers, a dry run counts and sends nothing.
    expect(await redrive({ dryRun: true })).toEqual(expected);
    // Everything is still there, and visible again at once.
    expect(await env.queueDepth(env.usage.usageDeadLetterQueueUrl)).toEqual({ visible: 5, inFlight: 0 });

    const customer = await env.register(buyer);
    expect(await redrive()).toEqual(expected);
    // The letter of another reason stays, visible at once for the next look.
    expect(await env.queueDepth(env.usage.usageDeadLetterQueueUrl)).toEqual({ visible: 1, inFlight: 0 });
    await env.drain();
    expect(env.ingested()).toMatchObject({ counted: 3, rejected: 4 });

    // A redrive whose deletes never happened (a crash after sending) sends the same letters again.
    for (const letter of letters.filter((l) => l.reason === 'unknown-customer')) await sendLetterAgain(letter);
    expect(await redrive()).toMatchObject({ received: 4, resentEvents: { 'unknown-customer': 3 }, duplicateLetters: 0, failed: [] });
    await env.drain();

    // Folded and billed: each event once (the eventIds the redrive gave them are the same each time).
    const report = await env.meterAt(METER_USAGE_HOUR);
    expect(report).toMatchObject({ sealed: 1, metered: 1 });
    expect(await env.bucket(customer, 'requests', USAGE_HOUR)).toMatchObject({ quantity: 9, usageEvents: 3, status: 'metered' });
    expect((await env.billed()).map((r) => r.quantity)).toEqual([9]);
    expect((await env.journalEvents(USAGE_HOUR)).map((e) => e.eventId).sort()).toEqual(
      [0, 1, 2, 0, 1, 2].map((position) => `redrive:${messageId}:${position}`).sort(),
    );
  });

  test('an original message moved after its deliveries failed, one event counted and one refused: sent again, nothing is counted twice; the refused event comes back as a letter and is counted once sent again', async () => {
    const customer = await env.newCustomer(PRODUCT.productCode);
    const buyer = await env.subscribe(PRODUCT.productCode);
    const queueUrl = env.usage.usageQueueUrl;
    const lettersUrl = env.usage.usageDeadLetterQueueUrl;
    // Where SQS moves the message after two failed deliveries (a queue apart from the letters', which
    // is gone while the deliveries fail); redelivered after a second.
    const movedUrl = (await env.usage.sqs.send(new CreateQueueCommand({ QueueName: 'usage-moved' }))).QueueUrl!;
    const movedArn = (await env.usage.sqs.send(new GetQueueAttributesCommand({ QueueUrl: movedUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn;
    const { Attributes: before = {} } = await env.usage.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['RedrivePolicy', 'VisibilityTimeout'] }));
    await env.usage.sqs.send(
      new SetQueueAttributesCommand({
        QueueUrl: queueUrl,
        Attributes: { VisibilityTimeout: '1', RedrivePolicy: JSON.stringify({ deadLetterTargetArn: movedArn, maxReceiveCount: 2 }) },
      }),
    );
    try {
      // Event 0 is counted; event 1 (a buyer not registered yet) is refused, and its letter cannot be
      // sent (the letters' queue is gone): every delivery fails after counting event 0.
      await env.usage.sqs.send(new DeleteQueueCommand({ QueueUrl: lettersUrl }));
      const messageId = await env.sendRaw(
        JSON.stringify([
          { licenseArn: customer.licenseArn, dimension: 'requests', quantity: 5, timestamp: inUsageHour(20) },
          { licenseArn: buyer.licenseArn, dimension: 'requests', quantity: 7, timestamp: inUsageHour(21) },
        ]),
      );
      let moved = { visible: 0, inFlight: 0 };
      for (let waited = 0; waited < 20_000 && moved.visible === 0; waited += 250) {
        await sleep(250);
        await env.drain();
        moved = await env.queueDepth(movedUrl);
      }
      expect(moved).toEqual({ visible: 1, inFlight: 0 });
      expect((await env.journalEvents(USAGE_HOUR)).map((e) => [e.messageId, e.position, e.quantity])).toEqual([[messageId, 0, 5]]);

      // The buyer registers and the letters' queue is back; the moved message is sent again.
      const registered = await env.register(buyer);
      expect((await env.usage.sqs.send(new CreateQueueCommand({ QueueName: lettersUrl.split('/').pop()! }))).QueueUrl).toBe(lettersUrl);
      await env.usage.sqs.send(new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: before }));
      expect(await redrive({ deadLetterQueueUrl: movedUrl })).toEqual({
        received: 1,
        resentMessages: 1,
        resentEvents: {},
        duplicateLetters: 0,
        kept: {},
        failed: [],
      });
      await env.drain();
      // One more delivery of the same message: event 0 is a duplicate; event 1 is refused again for
      // the reason the failed deliveries gave (never both counted and dead-lettered).
      expect(env.ingested()).toEqual({ messages: 1, counted: 0, duplicates: 1, rolledOver: 0, rejected: 1 });
      expect(env.logLines.find((l) => l.message === 'usage message ingested')?.attributes).toMatchObject({ messageId, redrivenAs: expect.any(String) });

      // Its letter names the first message id; sent again, the event is counted.
      expect(await redrive()).toMatchObject({ received: 1, resentEvents: { 'unknown-customer': 1 }, failed: [] });
      await env.drain();
      expect(await env.meterAt(METER_USAGE_HOUR)).toMatchObject({ sealed: 2, metered: 2 });
      expect(await env.bucket(customer, 'requests', USAGE_HOUR)).toMatchObject({ quantity: 5, usageEvents: 1, status: 'metered' });
      expect(await env.bucket(registered, 'requests', USAGE_HOUR)).toMatchObject({ quantity: 7, usageEvents: 1, status: 'metered' });
      expect((await env.billed()).map((r) => r.quantity).sort()).toEqual([5, 7]);
    } finally {
      await env.usage.sqs.send(new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: before }));
      await env.usage.sqs.send(new CreateQueueCommand({ QueueName: lettersUrl.split('/').pop()! }));
      await env.usage.sqs.send(new DeleteQueueCommand({ QueueUrl: movedUrl }));
    }
  });

  test('a message with an originalMessageId attribute that is not a message id is refused whole, with a letter', async () => {
    await env.usage.sqs.send(
      new SendMessageCommand({
        QueueUrl: env.usage.usageQueueUrl,
        MessageBody: JSON.stringify({ licenseArn: 'arn:aws:license-manager::123456789012:license:l-0', dimension: 'requests', quantity: 1, timestamp: inUsageHour(1) }),
        MessageAttributes: { originalMessageId: { DataType: 'String', StringValue: 'x#hour' } },
      }),
    );
    await env.drain();
    expect(await env.usageDeadLetters()).toEqual([
      { reason: 'invalid-event', body: expect.objectContaining({ reason: 'invalid-event', message: expect.stringContaining('originalMessageId') }) },
    ]);
    expect(env.ingested().messages).toBe(0);
  });
});
