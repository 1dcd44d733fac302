/**
 * Usage ingestion on real components (fauxqs, DynamoDB Local, our ingest handler behind the local
 * poller): what can be counted is written to the usage journal, and becomes an hour bucket when the
 * metering run folds the hour; what cannot be counted goes to the usage dead-letter queue once, with
 * its reason, and is never retried; what fails for an infrastructure reason is retried by SQS until
 * it is counted.
 */
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, DeleteQueueCommand, SetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { utcHourKey } from '../../lambda/core/utc-hour';
import { ProductConfig } from '../../lambda/core/product-config';
import { createUsageJournalTable } from '../../local/local-tables';
import { JournalEntry } from '../../lambda/core/usage/usage-journal';
import { CURRENT_HOUR, HOUR_MS, inUsageHour, METER_USAGE_HOUR, useMeteringEnvironment, USAGE_HOUR } from '../support/metering-environment';

const PRODUCT: ProductConfig = { productCode: 'ingest-product', identityMode: 'license', dimensions: ['requests'] };

const env = useMeteringEnvironment({
  stackProducts: [PRODUCT],
  simulatorProducts: [{ productCode: PRODUCT.productCode, identityMode: 'license', dimensions: ['requests'] }],
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A failed message's visibility timeout in the redelivery tests: short, yet long enough for a slow machine to see it in flight. */
const TEST_VISIBILITY_SECONDS = 3;

describe('usage ingestion into the usage journal', () => {
  test('events that cannot be billed go to the usage dead-letter queue with their reason; the valid ones of the same message are counted; nothing is retried', async () => {
    const customer = await env.newCustomer(PRODUCT.productCode);
    const now = Date.now();
    const events = [
      { eventId: 'valid', licenseArn: customer.licenseArn, dimension: 'requests', quantity: 4, timestamp: inUsageHour(30) },
      // Older than AWS accepts by the time its hour would be metered (24 h less an hour of margin).
      { eventId: 'too-old', licenseArn: customer.licenseArn, dimension: 'requests', quantity: 1, timestamp: new Date(now - 30 * 3_600_000).toISOString() },
      { eventId: 'future', licenseArn: customer.licenseArn, dimension: 'requests', quantity: 1, timestamp: now + 3_600_000 },
      { eventId: 'bogus-dimension', licenseArn: customer.licenseArn, dimension: 'bogus', quantity: 1, timestamp: inUsageHour(30) },
      { eventId: 'stranger', licenseArn: 'arn:aws:license-manager::123456789012:license:l-0000000000000000', dimension: 'requests', quantity: 1, timestamp: inUsageHour(30) },
      { eventId: 'no-quantity', licenseArn: customer.licenseArn, dimension: 'requests', timestamp: inUsageHour(30) },
    ];
    const messageId = await env.sendRaw(JSON.stringify(events));
    await env.drain();

    const letters = await env.usageDeadLetters();
    const byEvent = Object.fromEntries(letters.map((l) => [l.body.event?.eventId, l]));
    expect(Object.keys(byEvent).sort()).toEqual(['bogus-dimension', 'future', 'no-quantity', 'stranger', 'too-old']);
    expect(byEvent['too-old']).toEqual({
      reason: 'timestamp-out-of-window',
      body: { reason: 'timestamp-out-of-window', message: expect.stringContaining('too old'), messageId, position: 1, event: events[1] },
    });
    expect(byEvent['future'].reason).toBe('timestamp-in-future');
    expect(byEvent['bogus-dimension'].reason).toBe('unknown-dimension');
    expect(byEvent['stranger'].reason).toBe('unknown-customer');
    expect(byEvent['no-quantity']).toMatchObject({ reason: 'invalid-event', body: { reason: 'invalid-event', position: 5 } });

    // Only the valid event is journaled, in its hour; the log line counts it and the five refused.
    expect(await env.journalEvents(USAGE_HOUR)).toEqual([
      { messageId, hourStart: USAGE_HOUR.toISOString(), customerKey: customer.customerKey, dimension: 'requests', quantity: 4, position: 0, eventId: 'valid' },
    ]);
    expect(env.ingested()).toEqual({ messages: 1, counted: 1, duplicates: 0, rolledOver: 0, rejected: 5 });
    // The message was handled (deleted), not left for redelivery.
    expect(await env.queueDepth(env.usage.usageQueueUrl)).toEqual({ visible: 0, inFlight: 0 });
    await sleep(1100);
    await env.drain();
    expect(await env.usageDeadLetters()).toEqual([]);
    expect(env.ingested()).toMatchObject({ messages: 1, counted: 1 });

    // Folded when the hour is over: one sealed bucket with that event alone.
    expect(await env.buckets()).toEqual([]);
    const folded = await env.foldAt(METER_USAGE_HOUR);
    expect(folded).toMatchObject({ rejected: [], duplicates: 0 });
    expect(await env.buckets()).toEqual([
      expect.objectContaining({ customerKey: customer.customerKey, hourStart: USAGE_HOUR.toISOString(), quantity: 4, usageEvents: 1, status: 'sealed' }),
    ]);
  });

  test('a message that is not JSON: one dead letter with reason invalid-json carrying the raw body, not retried', async () => {
    const body = '{"dimension": "requests", "quantity": 1, oops';
    const messageId = await env.sendRaw(body);
    expect(await env.drain()).toBe(1);
    expect(await env.usageDeadLetters()).toEqual([
      { reason: 'invalid-json', body: { reason: 'invalid-json', message: expect.any(String), messageId, body } },
    ]);
    expect(await env.queueDepth(env.usage.usageQueueUrl)).toEqual({ visible: 0, inFlight: 0 });
    // Nothing journaled, in the hour it was sent or any other it could name.
    expect(env.ingested().messages).toBe(0);
    for (const hour of [USAGE_HOUR, CURRENT_HOUR, new Date(CURRENT_HOUR.getTime() + HOUR_MS)]) expect(await env.journal(hour)).toEqual([]);
  });

  test('a message redelivered after a failure, which would be judged differently now (the producer\'s clock was ahead): what the first delivery counted stays counted once, what it refused is refused again and dead-lettered once the queue is back', async () => {
    const customer = await env.newCustomer(PRODUCT.productCode);
    const queueUrl = env.usage.usageQueueUrl;
    const deadLetterUrl = env.usage.usageDeadLetterQueueUrl;
    // Redelivered after a few seconds instead of 30; long enough that a slow machine still sees the
    // failed message in flight right after the drain.
    await env.usage.sqs.send(new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: { VisibilityTimeout: String(TEST_VISIBILITY_SECONDS) } }));
    try {
      const now = env.usage.clock.now().getTime();
      const early = new Date(now - 60_000);
      // 6 minutes ahead: refused now (more than 5 minutes in the future), fine 7 minutes later.
      const ahead = new Date(now + 6 * 60_000);
      const events = [
        { eventId: 'a', licenseArn: customer.licenseArn, dimension: 'requests', quantity: 5, timestamp: early.toISOString() },
        { eventId: 'b', licenseArn: customer.licenseArn, dimension: 'requests', quantity: 7, timestamp: ahead.toISOString() },
      ];
      // The refused event's dead letter cannot be sent (its queue is gone), so the message fails
      // after its first event was written.
      await env.usage.sqs.send(new DeleteQueueCommand({ QueueUrl: deadLetterUrl }));
      const messageId = await env.sendRaw(JSON.stringify(events));
      await env.drain();
      expect(await env.queueDepth(queueUrl)).toEqual({ visible: 0, inFlight: 1 });
      expect((await env.journalEvents(utcHourKey(early))).map((e) => e.eventId)).toEqual(['a']);

      // The clock first, then the dead-letter queue: SQS delivers the message again every few
      // seconds, and a delivery between the two would dead-letter 'b' as in the future.
      await env.usage.clock.moveForwardTo(new Date(now + 7 * 60_000));
      const recreated = await env.usage.sqs.send(new CreateQueueCommand({ QueueName: deadLetterUrl.split('/').pop()! }));
      expect(recreated.QueueUrl).toBe(deadLetterUrl);
      for (let waited = 0; waited < 15_000 && env.ingested().messages === 0; waited += 250) {
        await sleep(250);
        await env.drain();
      }
      // 'b' would count at the moved clock, but the first delivery refused it (its dead letter could
      // have been sent): refused again, for the same reason, never both counted and dead-lettered.
      expect(env.ingested()).toEqual({ messages: 1, counted: 0, duplicates: 1, rolledOver: 0, rejected: 1 });
      expect(await env.queueDepth(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
      expect((await env.usageDeadLetters()).map((l: any) => [l.reason, l.body.messageId, l.body.position, l.body.event.eventId])).toEqual([
        ['timestamp-in-future', messageId, 1, 'b'],
      ]);
      const hours = [...new Set([utcHourKey(early), utcHourKey(ahead)])];
      const journaled = (await Promise.all(hours.map((hour) => env.journalEvents(hour)))).flat();
      expect(journaled.map((e) => [e.messageId, e.eventId, e.quantity, e.position]).sort()).toEqual([[messageId, 'a', 5, 0]]);
    } finally {
      await env.usage.sqs.send(new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: { VisibilityTimeout: '30' } }));
    }
  });

  test('an infrastructure failure (the usage journal table gone): the message is a batch item failure, redelivered by SQS, and counted once the table is back', async () => {
    const customer = await env.newCustomer(PRODUCT.productCode);
    const queueUrl = env.usage.usageQueueUrl;
    // Redeliver after a few seconds instead of 30, so the test need not wait for the stack's visibility timeout.
    await env.usage.sqs.send(new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: { VisibilityTimeout: String(TEST_VISIBILITY_SECONDS) } }));
    try {
      await env.dynamoDb.client.send(new DeleteTableCommand({ TableName: env.usage.journalTableName }));
      const messageId = await env.sendRaw(
        JSON.stringify([
          { eventId: 'a', licenseArn: customer.licenseArn, dimension: 'requests', quantity: 2, timestamp: inUsageHour(10) },
          { eventId: 'b', licenseArn: customer.licenseArn, dimension: 'requests', quantity: 3, timestamp: inUsageHour(20) },
        ]),
      );
      await env.drain();
      // Failed, so neither deleted nor dead-lettered: in flight until its visibility timeout ends.
      expect(await env.queueDepth(queueUrl)).toEqual({ visible: 0, inFlight: 1 });
      expect(await env.usageDeadLetters()).toEqual([]);
      expect(env.ingested().messages).toBe(0);

      await createUsageJournalTable(env.dynamoDb.client, env.usage.journalTableName);
      let entries: JournalEntry[] = [];
      for (let waited = 0; waited < 15_000 && entries.length === 0; waited += 250) {
        await sleep(250);
        await env.drain();
        entries = await env.journal(USAGE_HOUR);
      }
      // One entry for the message, with both events.
      expect(entries).toHaveLength(1);
      expect(await env.journalEvents(USAGE_HOUR)).toEqual([
        expect.objectContaining({ messageId, customerKey: customer.customerKey, quantity: 2, position: 0, eventId: 'a' }),
        expect.objectContaining({ messageId, customerKey: customer.customerKey, quantity: 3, position: 1, eventId: 'b' }),
      ]);
      expect(env.ingested()).toEqual({ messages: 1, counted: 2, duplicates: 0, rolledOver: 0, rejected: 0 });
      expect(await env.queueDepth(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
      expect(await env.usageDeadLetters()).toEqual([]);

      // And it is folded and billed as any other usage.
      expect(await env.meterAt(METER_USAGE_HOUR)).toMatchObject({ sealed: 1, metered: 1 });
      expect(await env.bucket(customer, 'requests', USAGE_HOUR)).toMatchObject({ quantity: 5, usageEvents: 2, status: 'metered' });
      expect(await env.billed()).toEqual([expect.objectContaining({ licenseArn: customer.licenseArn, quantity: 5 })]);
    } finally {
      await env.usage.sqs.send(new SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: { VisibilityTimeout: '30' } }));
    }
  });
});
